"""Field types every request model shares: text without control characters, strict numbers.

A control character (Unicode category Cc: NUL, the C0 and C1 ranges, DEL) in a name or a message
is never meant: NUL cannot even be stored by PostgreSQL, and the others hide text from whoever
reads it later (an escape sequence in a log, a title that looks empty). Long text keeps the
three that belong to text: newline, carriage return and tab. Format characters (Cf) stay
allowed: the zero-width joiner builds emoji, and right-to-left marks belong to some scripts.

Numbers are strict: `"0.5"` or `true` sent as a temperature is a client's bug to report, not a
value to guess at (pydantic's lax mode would take both).
"""

from __future__ import annotations

import unicodedata
from typing import Annotated

from pydantic import AfterValidator, Strict

# Kept in long text (and only there): line breaks and tabs are part of what people write.
_TEXT_LAYOUT = frozenset("\n\r\t")


def _first_control(value: str, allowed: frozenset[str]) -> str | None:
    # isprintable() first: it runs in C and is true for almost every value.
    if value.isprintable():
        return None
    for character in value:
        if character not in allowed and unicodedata.category(character) == "Cc":
            return character
    return None


def single_line(value: str) -> str:
    """`value`, unless it holds a control character (newline and tab included)."""
    found = _first_control(value, frozenset())
    if found is not None:
        raise ValueError(f"must not contain control characters (found U+{ord(found):04X})")
    return value


def multi_line(value: str) -> str:
    """`value`, unless it holds a control character other than newline, carriage return, tab."""
    found = _first_control(value, _TEXT_LAYOUT)
    if found is not None:
        raise ValueError(
            "must not contain control characters other than newline and tab "
            f"(found U+{ord(found):04X})"
        )
    return value


# Names, titles, labels: one line of printable text (add the length with `Field`).
SingleLineText = Annotated[str, AfterValidator(single_line)]
# Messages, instructions, descriptions: text with line breaks and tabs.
MultiLineText = Annotated[str, AfterValidator(multi_line)]
# A JSON number, never a string or a boolean (an integer is a number too).
StrictFloat = Annotated[float, Strict()]
StrictInt = Annotated[int, Strict()]
