"""Usernames: the rule for new ones, and the one way every layer folds their case.

New usernames, from the API (`NewUsername` in a schema) or the command line (`check_new`), are
3-64 characters of A-Z a-z 0-9 . _ -. Looking a name up folds case by lowercasing ASCII letters
only: `fold()` in Python (lockout keys in Redis included) and `folded()` in SQL, which is
`lower(username COLLATE "C")` — PostgreSQL's C collation lowercases A-Z and nothing else, whatever
the database's locale — and is what the unique index `uq_users_username_folded` holds.

Folding only ASCII is what keeps the layers in step: a locale's idea of case is not Python's
(`'İ'.lower()` is two characters in Python, `lower('İ')` is 'i' under glibc's C.UTF-8; ICU lowers
'ΣΟΣ' to 'σος', glibc to 'σοσ', LC_CTYPE=C leaves it alone), so no non-ASCII folding can mean the
same thing in Python, in PostgreSQL under every locale, and in a Redis key. An account created
before the rule with other characters folds the same way: it still logs in by its exact name
(and by any change of case of its ASCII letters), and never stands for a different name.

It lives in the kit so that every domain can use it: login and the command line, and adding a
member to a site (`NewUsername` for the new account's name, `same_name` to find an existing one).
"""

from __future__ import annotations

import re
import string
from typing import Annotated, Any

from pydantic import AfterValidator, WithJsonSchema
from sqlalchemy import ColumnElement, func

MIN_LENGTH, MAX_LENGTH = 3, 64
PATTERN = r"^[A-Za-z0-9._-]{3,64}$"
RULE = "must be 3-64 characters of A-Z, a-z, 0-9, '.', '_' and '-'"

_NEW = re.compile(r"[A-Za-z0-9._-]{3,64}")
_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def fold(username: str) -> str:
    """The key a username is looked up (and locked out) by: trimmed, A-Z lowercased, every other
    character left as it is. Equal to `folded()` of the stored name for the same account."""
    return username.strip().translate(_ASCII_LOWER)


def folded(column: Any) -> ColumnElement[str]:
    """The same fold in SQL: `lower(<column> COLLATE "C")`, the expression the unique index holds."""
    return func.lower(column.collate("C"))


def same_name(column: Any, username: str) -> ColumnElement[bool]:
    """The condition finding the account a typed name stands for (at most one: the index is unique)."""
    return folded(column) == fold(username)


def check_new(username: str) -> str:
    """A name for a new account, exactly as it will be stored (nothing is trimmed), or ValueError."""
    if not _NEW.fullmatch(username):
        raise ValueError(RULE)
    return username


NewUsername = Annotated[
    str,
    AfterValidator(check_new),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": PATTERN,
            "minLength": MIN_LENGTH,
            "maxLength": MAX_LENGTH,
            "description": "3-64 characters of A-Z a-z 0-9 . _ -, unique case-insensitively",
            "examples": ["jdoe", "ana.lima", "ops_bot-2"],
        }
    ),
]
