"""Markdown to the words a reader sees, for a title: `# **Fix** [the bug](u)` -> `Fix the bug`.

Parsed by markdown-it-py (CommonMark), not by patterns: emphasis, links, images (their alt text),
headings, lists, quotes, code spans and fences all come out as their text, HTML tags not at all.
"""

from __future__ import annotations

import re

from markdown_it import MarkdownIt
from markdown_it.token import Token

# A title uses the first few words; parsing a 32 000-character message for them would not.
_PARSED_CHARS = 600
_parser = MarkdownIt("commonmark")
# What could be Markdown or HTML at all; most first messages have none and skip the parser (a
# parse costs ~90 µs, this check ~1 µs, and a new chat's send waits for it).
_MAYBE_MARKUP = re.compile(r"[\\`*_\[\]#<>!~|&]|^\s*(?:[-+>=]|\d+[.)])", re.MULTILINE)


def _inline_text(token: Token) -> list[str]:
    words: list[str] = []
    for child in token.children or []:
        if child.type in ("text", "code_inline"):
            words.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            words.append(" ")
        elif child.type == "image":
            words.extend(_inline_text(child))
    return words


def plain_text(markdown: str) -> str:
    """The text of the start of a Markdown document, whitespace collapsed to single spaces."""
    start = markdown[:_PARSED_CHARS]
    if not _MAYBE_MARKUP.search(start):
        return " ".join(start.split())
    parts: list[str] = []
    for token in _parser.parse(start):
        if token.type == "inline":
            parts.extend(_inline_text(token))
        elif token.type in ("fence", "code_block"):
            parts.append(token.content)
        parts.append(" ")
    return " ".join("".join(parts).split())
