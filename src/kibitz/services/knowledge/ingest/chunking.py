"""Chunks that follow the document's structure: a chunk never spans two sections (Markdown
headings), paragraphs stay whole where they fit, longer ones are cut at sentence or word
borders; consecutive chunks of a section overlap, and each chunk carries its heading path."""

from __future__ import annotations

import re
from dataclasses import dataclass

_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


@dataclass(frozen=True)
class Section:
    """Paragraphs under one heading path."""

    headings: tuple[str, ...]
    paragraphs: list[str]


def sections_of(text: str) -> list[Section]:
    """The text as sections (Markdown headings) of paragraphs (blank-line separated; a fenced
    code block is one paragraph)."""
    sections: list[Section] = []
    path: list[tuple[int, str]] = []
    current = Section((), [])
    lines: list[str] = []
    fenced = False

    def end_paragraph() -> None:
        paragraph = "\n".join(lines).strip()
        if paragraph:
            current.paragraphs.append(paragraph)
        lines.clear()

    for line in text.split("\n"):
        if line.lstrip().startswith("```"):
            fenced = not fenced
            lines.append(line)
            continue
        heading = None if fenced else _HEADING.match(line)
        if heading:
            end_paragraph()
            if current.paragraphs:
                sections.append(current)
            level, title = len(heading.group(1)), heading.group(2).strip()
            path = [(lvl, name) for lvl, name in path if lvl < level] + [(level, title)]
            current = Section(tuple(name for _, name in path), [])
        elif not line.strip() and not fenced:
            end_paragraph()
        else:
            lines.append(line)
    end_paragraph()
    if current.paragraphs:
        sections.append(current)
    return sections


def _pieces(paragraph: str, limit: int) -> list[str]:
    """A paragraph cut into pieces of at most `limit` characters, at sentences, then words."""
    if len(paragraph) <= limit:
        return [paragraph]
    pieces: list[str] = []
    current = ""
    for sentence in _SENTENCE_END.split(paragraph):
        words = [sentence] if len(sentence) <= limit else sentence.split()
        for word in words:
            while len(word) > limit:  # one unbroken run (a URL, a hash): cut it hard
                if current:
                    pieces.append(current)
                    current = ""
                pieces.append(word[:limit])
                word = word[limit:]
            joined = f"{current} {word}" if current else word
            if len(joined) <= limit:
                current = joined
            else:
                pieces.append(current)
                current = word
    if current:
        pieces.append(current)
    return pieces


def _tail(text: str, size: int) -> str:
    """About the last `size` characters of text, starting at a word."""
    if size <= 0 or len(text) <= size:
        return text if size > 0 else ""
    tail = text[-size:]
    space = tail.find(" ")
    return tail[space + 1 :] if 0 <= space < len(tail) - 1 else tail


def chunk_text(text: str, *, max_chars: int, overlap_chars: int) -> list[str]:
    """The document's chunks, each at most about `max_chars` characters plus its heading path."""
    overlap = max(0, min(overlap_chars, max_chars // 2))
    chunks: list[str] = []
    for section in sections_of(text):
        header = " > ".join(section.headings)
        room = max(100, max_chars - len(header) - 1) if header else max_chars
        body = ""
        for paragraph in section.paragraphs:
            # Pieces leave room for the overlap carried into the next chunk.
            for piece in _pieces(paragraph, room - overlap):
                joined = f"{body}\n\n{piece}" if body else piece
                if len(joined) <= room:
                    body = joined
                    continue
                chunks.append(f"{header}\n{body}" if header else body)
                carried = _tail(body, overlap)
                fits = carried and len(carried) + len(piece) + 2 <= room
                body = f"{carried}\n\n{piece}" if fits else piece
        if body:
            chunks.append(f"{header}\n{body}" if header else body)
    return chunks
