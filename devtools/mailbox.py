"""The local run's mailbox: invitations the API sent while it ran (MAIL_DELIVERY=directory:...,
RFC 5322 `.eml` files) printed on the console with their accept link and the request that accepts
them without a frontend — so a user of the local run can complete an invitation from its console
alone. Local only: a deployed API sends through SES and logs no token."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from email import policy
from email.parser import BytesParser
from pathlib import Path


def token_pattern(invite_url: str) -> re.Pattern[str]:
    """The accept link INVITE_URL makes, with the token as its one group."""
    before, _, after = invite_url.partition("{token}")
    return re.compile(re.escape(before) + r"([A-Za-z0-9_-]+)" + re.escape(after))


def describe(path: Path, *, invite_url: str, api: str) -> str:
    """What the console shows for one message."""
    message = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
    body = message.get_body(("plain",))
    text = str(body.get_content()) if body is not None else ""
    found = token_pattern(invite_url).search(text)
    lines = [f'Mail to {message["To"]}: "{message["Subject"]}" ({path})']
    if found:
        token = found.group(1)
        accept = json.dumps({"token": token, "username": "CHOOSE-ONE", "password": "CHOOSE A PASSWORD"})
        lines += [
            f"  accept link: {found.group(0)}",
            f"  what it is for:  curl -s -X POST {api}/auth/invitations/preview "
            f"-H 'Content-Type: application/json' -d '{json.dumps({'token': token})}'",
            f"  accept it:       curl -s -X POST {api}/auth/invitations/accept "
            f"-H 'Content-Type: application/json' -d '{accept}'",
            '  (an address that has an account already accepts with {"token", "password"}: that '
            "account's password)",
        ]
    return "\n".join(lines)


class Watcher:
    """Prints each new message of `folder` once (those already there when it was made are skipped)."""

    def __init__(
        self, folder: Path, *, invite_url: str, api: str, out: Callable[[str], None] = print
    ) -> None:
        self.folder, self.invite_url, self.api, self.out = folder, invite_url, api, out
        self.seen = set(self._names())
        self._stop = threading.Event()

    def _names(self) -> list[str]:
        return sorted(p.name for p in self.folder.glob("*.eml")) if self.folder.exists() else []

    def poll(self) -> int:
        printed = 0
        for name in self._names():
            if name not in self.seen:
                self.seen.add(name)
                try:
                    self.out(
                        "\n" + describe(self.folder / name, invite_url=self.invite_url, api=self.api) + "\n"
                    )
                except OSError:
                    continue
                printed += 1
        return printed

    def start(self, every: float = 0.5) -> threading.Thread:
        def run() -> None:
            while not self._stop.wait(every):
                self.poll()

        thread = threading.Thread(target=run, name="mailbox", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self._stop.set()
