"""What a user typed into the search box, as terms a full-text engine cannot misread.

FTS5 and `to_tsquery` each have an operator syntax (`AND`, `NEAR`, `*`, `:`, `(`, `&`, `!`…);
a search box must never expose it, or a stray quote answers 500. The user's text is cut into
words and "quoted phrases" here, and each reaches the engine only as a quoted string (FTS5) or a
bound parameter of `phraseto_tsquery` (PostgreSQL).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# A query of at most this many terms: enough for any search box, small enough to stay cheap.
MAX_TERMS = 16
# A "phrase" or a bare word; an unclosed quote takes the rest of the text.
_TERM = re.compile(r'"([^"]*)"?|([^\s"]+)')
_WORD = re.compile(r"\w", re.UNICODE)
_PREFIX_WORD = re.compile(r"^\w+$", re.UNICODE)
# Control characters (NUL ends a C string in FTS5's parser; PostgreSQL refuses it in text).
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


@dataclass(frozen=True)
class Term:
    """A word or phrase every hit contains; `prefix` also matches longer words."""

    text: str
    prefix: bool = False


@dataclass(frozen=True)
class SearchQuery:
    """The terms of a search, all of which a hit contains."""

    terms: tuple[Term, ...]

    @property
    def empty(self) -> bool:
        """Whether nothing searchable was typed (only punctuation, say)."""
        return not self.terms

    def fts5(self) -> str:
        """The FTS5 MATCH expression over the `content` column: quoted phrases only."""
        phrases = []
        for term in self.terms:
            quoted = '"' + term.text.replace('"', '""') + '"'
            phrases.append(quoted + "*" if term.prefix else quoted)
        return "content : (" + " AND ".join(phrases) + ")"


def parse_query(text: str) -> SearchQuery:
    """Words and quoted phrases; the last bare word also matches as a prefix (search as you type).

    Terms without a letter or digit are dropped (the engines would find nothing in them).
    """
    terms: list[Term] = []
    matches = list(_TERM.finditer(_CONTROL.sub(" ", text)))
    for position, match in enumerate(matches):
        phrase, word = match.group(1), match.group(2)
        value = " ".join((phrase if phrase is not None else word).split())
        if not _WORD.search(value):
            continue
        is_last = position == len(matches) - 1
        terms.append(
            Term(value, prefix=word is not None and is_last and bool(_PREFIX_WORD.match(value)))
        )
    return SearchQuery(tuple(terms[:MAX_TERMS]))
