"""The tests' mailbox: the .eml files the directory sender wrote (MAIL_DELIVERY=directory:...), read
back as a person's mail client would, and the token an invitation's link carries."""

from __future__ import annotations

import re
import shutil
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

from tests.environment import MAIL_DIRECTORY

LINK = re.compile(r"https://app\.dev\.example\.com/invitations/accept\?token=([A-Za-z0-9_-]+)")


def empty() -> None:
    shutil.rmtree(MAIL_DIRECTORY, ignore_errors=True)


def messages(to: str | None = None) -> list[EmailMessage]:
    """Every message written so far (oldest first), or those to `to` (compared case-insensitively)."""
    folder = Path(MAIL_DIRECTORY)
    found = []
    for path in sorted(folder.glob("*.eml")) if folder.exists() else []:
        message = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
        assert isinstance(message, EmailMessage)
        if to is None or str(message["To"]).lower() == to.lower():
            found.append(message)
    return found


def text(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    return str(body.get_content())


def token_in(message: EmailMessage) -> str:
    match = LINK.search(text(message))
    assert match, text(message)
    return match.group(1)


def token_for(address: str) -> str:
    """The token of the newest message to `address`."""
    found = messages(address)
    assert found, f"no message to {address}"
    return token_in(found[-1])
