"""Fixtures shared by the auth tests (the general ones live in tests/conftest.py)."""
from tests.support import access_log, reconfigure  # noqa: F401 - fixtures
