"""What text may hold where a person reads it: on a label, a screen, a log line. Pure.

A control character (C0, DEL or C1), a line or paragraph separator or a
bidirectional override in a patient's name or the directions would reach the
printer, or show a name reversed on a screen: none is ever taken.
"""

from __future__ import annotations

import unicodedata

BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e"
                          "\u2066\u2067\u2068\u2069")
"""Marks and overrides that change the order text is shown in."""


def text_problem(text: str) -> str | None:
    """Why ``text`` is not plain text on one line (naming the first bad character), or None."""
    for position, char in enumerate(text, 1):
        category = unicodedata.category(char)
        if category in ("Cc", "Cs", "Zl", "Zp") or char in BIDI_CONTROLS:
            name = unicodedata.name(char, "a control character")
            return (f"holds U+{ord(char):04X} ({name.lower()}) at character {position}; "
                    f"expected plain text on one line, without control characters")
    return None
