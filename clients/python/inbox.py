"""The invitee's mailbox: the RFC 5322 .eml files the local run's directory sender writes
(API_MAIL_DIRECTORY), read with the standard library's e-mail parser, and an invitation's token taken
from its link as the frontend's accept page takes it: the link's `token` query parameter."""

from __future__ import annotations

import re
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from urllib.parse import parse_qs, urlsplit


def newest_to(folder: Path, address: str) -> EmailMessage:
    """The newest message to `address` (compared case-insensitively); file names sort in the order written."""
    for path in sorted(folder.glob("*.eml"), reverse=True):
        message = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
        assert isinstance(message, EmailMessage)
        if str(message["To"]).lower() == address.lower():
            return message
    raise AssertionError(f"no message to {address} in {folder}")


def invitation_token(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    text = str(body.get_content()) if body is not None else ""
    link = re.search(r"https?://\S+", text)
    tokens = parse_qs(urlsplit(link.group(0)).query).get("token", []) if link else []
    if not tokens:
        raise AssertionError(f"no invitation link in:\n{text}")
    return tokens[0]
