"""The hostile-input catalogue's shared pieces: the payloads, a world to attack, and a fingerprint
of every table to prove that a refused request wrote nothing."""

from __future__ import annotations

import hashlib
import json
import re

import pytest
from sqlalchemy import text

from chalicelib.models import Base
from tests.faults.locks import side_connection
from tests.interactions.helpers import make_world

SQL_INJECTION = [
    "' OR '1'='1",
    "' OR 1=1 --",
    "'; DROP TABLE interactions; --",
    '"; DROP TABLE users; --',
    "1; SELECT pg_sleep(10) --",
    "' UNION SELECT password_hash, NULL FROM users --",
    "') OR ('a'='a",
    "%' OR title LIKE '%",
    "$$; TRUNCATE site_memberships; $$",
    "\\'; COMMIT; DELETE FROM sites; --",
    "1' AND (SELECT 1 FROM pg_sleep(10)) IS NULL --",
    "x' || (SELECT current_user) || '",
    "%_\\",
    "${jndi:ldap://example.invalid/a} {{7*7}} <script>alert(1)</script>",
]


@pytest.fixture
def world():
    return make_world()


# A library's own words in an error body: a Python function to call, an encoding to decode with,
# exception class names, tracebacks, driver or ORM names, SQL.
LIBRARY_WORDS = re.compile(
    r"\b\w+\(\)|\bsys\.|set_int_max_str_digits|utf-8-sig|decode using|codec|Traceback|File \"|"
    r"\b[A-Z]\w*(?:Error|Exception)\b|pydantic|sqlalchemy|pg8000|psycopg|\bSELECT\b|\bFROM\b|"
    r"https?://"
)


class _RecordingHttp:
    """The test client's HTTP side, keeping every response it hands out."""

    def __init__(self, http):
        self._http, self.responses = http, []

    def __getattr__(self, name):
        attribute = getattr(self._http, name)
        if not callable(attribute):
            return attribute

        def call(*args, **kwargs):
            response = attribute(*args, **kwargs)
            self.responses.append(response)
            return response

        return call


def error_messages(response) -> list[str]:
    """The message and every detail's message of an error answer."""
    error = json.loads(response.body)["error"]
    return [error["message"], *(detail["message"] for detail in error.get("details") or [])]


@pytest.fixture
def client(client):
    """The root test client, and after each hostile test a check of every error it answered: our
    own words only (API.md: no library's advice, such as a function to call or an encoding)."""
    recorder = _RecordingHttp(client.http)
    client._http_client = recorder
    yield client
    for response in recorder.responses:
        if response.status_code >= 400:
            for message in error_messages(response):
                assert not LIBRARY_WORDS.search(message), (response.status_code, message)


def fingerprint() -> dict[str, str]:
    """A digest of every row of every table (compared before and after a refused request)."""
    digests = {}
    with side_connection() as conn:
        for table in Base.metadata.sorted_tables:
            rows = conn.execute(
                text(f"SELECT md5(string_agg(t::text, '|' ORDER BY t::text)) FROM \"{table.name}\" t")
            ).scalar()
            digests[table.name] = rows or ""
    return digests


def digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:12]
