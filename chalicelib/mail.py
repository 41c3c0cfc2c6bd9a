"""Sending mail: one plain-text message at a time, through the sender MAIL_DELIVERY names.

- `ses`: Amazon SES (boto3's `sesv2`, imported on first use), from MAIL_FROM. Deployed.
- `directory:<path>`: each message written to <path> as an RFC 5322 `.eml` file (the local run:
  `.devdata/mail/`; tests). Refused in a Lambda (config.py).

`send` raises `MailNotSent` when the message could not be handed over; the caller keeps it queued.
Nothing here logs a message's text (an invitation's carries its token).
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any

from chalicelib.config import get_settings

LOCAL_SENDER = "Interactions <no-reply@localhost>"


class MailNotSent(Exception):
    """The sender refused or could not be reached; `reason` is short and carries no message text."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason[:255]


@dataclass(frozen=True)
class Message:
    to: str
    subject: str
    text: str


_client: Any = None
_lock = threading.Lock()


def _ses() -> Any:
    global _client
    if _client is None:
        with _lock:
            if _client is None:
                import boto3  # type: ignore[import-untyped]  # boto3 ships no types; lazy: cold start

                _client = boto3.client("sesv2")
    return _client


def reset() -> None:
    """Forget the SES client (tests, a SnapStart restore)."""
    global _client
    _client = None


def send(message: Message) -> None:
    settings = get_settings()
    directory = settings.mail_directory
    if directory is not None:
        _write(Path(directory), message, sender=settings.mail_from or LOCAL_SENDER)
    else:
        _send_ses(message, sender=settings.mail_from or "")


def _send_ses(message: Message, *, sender: str) -> None:
    try:
        _ses().send_email(
            FromEmailAddress=sender,
            Destination={"ToAddresses": [message.to]},
            Content={
                "Simple": {
                    "Subject": {"Data": message.subject, "Charset": "UTF-8"},
                    "Body": {"Text": {"Data": message.text, "Charset": "UTF-8"}},
                }
            },
        )
    except Exception as exc:  # botocore's ClientError, an endpoint or credentials failure
        code = getattr(exc, "response", {}).get("Error", {}).get("Code") if hasattr(exc, "response") else None
        raise MailNotSent(f"SES: {code or type(exc).__name__}") from None


def as_eml(message: Message, *, sender: str) -> bytes:
    """The message in RFC 5322 form (what the directory sender writes)."""
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = message.to
    mail["Subject"] = message.subject
    mail["Date"] = formatdate(usegmt=True)
    mail["Message-ID"] = make_msgid(domain="localhost")
    mail.set_content(message.text)
    return bytes(mail)


def _write(directory: Path, message: Message, *, sender: str) -> None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
        now = time.time_ns()  # names sort in the order the messages were written
        name = f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime(now // 10**9))}.{now % 10**9:09d}Z-{uuid.uuid4().hex[:8]}.eml"
        partial = directory / f".{name}.partial"
        partial.write_bytes(as_eml(message, sender=sender))
        os.chmod(partial, 0o600)  # it holds a credential
        partial.rename(directory / name)  # whole files only: a reader never sees half a message
    except OSError as exc:
        raise MailNotSent(f"directory: {exc.strerror or type(exc).__name__}") from None
