"""Which search terms the trigram indexes can narrow, as the database itself says.

A trigram index answers `%term%` only through the trigrams of the term's words, and pg_trgm's word
characters are whatever the database's LC_CTYPE calls alphanumeric: under a UTF-8 one (RDS's
en_US.UTF-8, C.UTF-8 here) the letters and digits of nearly every script, under C (or POSIX) the 62
ASCII ones only. A term with no three word characters in a row gives no trigram, and the index
would hand back the whole site.

So the rule is probed, once per container and database: one statement asks pg_trgm which letters
and digits of a sample of scripts (a few each) are word characters, and a script counts only when
all of its samples are. A term is accepted when it holds three characters in a row that are ASCII
letters or digits, or letters or decimal digits (as Python's `str.isalpha`/`isdecimal` say) of a
script that counts. Characters of scripts outside the sample (symbols, mathematical letters,
superscripts) never count: the rule may refuse a term the index could answer, never the reverse.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from sqlalchemy import text

# Letters (and decimal digits) of the scripts probed: per script a few, upper and lower case where
# the script has them, from its common and its extended blocks.
SAMPLE = (
    "éÉßłŁøÿčŠ"  # Latin beyond ASCII
    "σΣάΊω"  # Greek
    "жЖёЯ"  # Cyrillic
    "աԱ"  # Armenian
    "אשםן"  # Hebrew
    "بكيء"  # Arabic
    "١٣"  # Arabic-Indic digits
    "कह०"  # Devanagari
    "কম"  # Bengali
    "கம"  # Tamil
    "กม"  # Thai
    "აბ"  # Georgian
    "አበ"  # Ethiopic
    "한글"  # Hangul
    "あの"  # Hiragana
    "アカ"  # Katakana
    "東京都"  # CJK ideographs
    "Ａｚ１"  # fullwidth forms
)
# One simple query (no parameters): one round trip, once per container and database.
PROBE = text(
    f"SELECT coalesce(string_agg(c, ''), '') FROM regexp_split_to_table('{SAMPLE}', '') AS c "
    "WHERE cardinality(show_trgm(c)) > 0"
)


def script(char: str) -> str:
    """The script a character belongs to, as its Unicode name begins (LATIN, GREEK, CJK, ...)."""
    return unicodedata.name(char, "").split(" ", 1)[0]


def indexed_scripts(word_characters: str) -> frozenset[str]:
    """The scripts all of whose sample characters are among `word_characters`."""
    found = set(word_characters)
    scripts: dict[str, bool] = {}
    for char in SAMPLE:
        scripts[script(char)] = scripts.get(script(char), True) and char in found
    return frozenset(name for name, indexed in scripts.items() if indexed)


_probed: dict[str, frozenset[str]] = {}


def scripts_of(session: Any) -> frozenset[str]:
    """The scripts whose letters and digits the session's database indexes (probed once per
    database in this container)."""
    url = str(session.get_bind().engine.url)
    if url not in _probed:
        _probed[url] = indexed_scripts(session.execute(PROBE).scalar_one())
    return _probed[url]


def word_character(char: str, scripts: frozenset[str]) -> bool:
    if char.isascii():
        return char.isalnum()
    return (char.isalpha() or char.isdecimal()) and script(char) in scripts


def has_indexable_run(term: str, scripts: frozenset[str], run: int = 3) -> bool:
    """Whether `term` holds `run` word characters in a row (the shortest a trigram index narrows)."""
    length = 0
    for char in term:
        length = length + 1 if word_character(char, scripts) else 0
        if length >= run:
            return True
    return False
