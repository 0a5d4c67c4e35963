"""Chunks follow the document's structure, stay within their size and overlap inside a section."""

from __future__ import annotations

import itertools

from kibitz.services.knowledge.ingest.chunking import chunk_text, sections_of

GUIDE = """# Guide

Welcome to the guide.

## Install

Run the installer. Then restart.

```
# not a heading inside code
make install
```

## Use

### Daily

Open the app every morning.
"""


def test_sections_follow_the_heading_path_and_keep_code_blocks_whole() -> None:
    sections = sections_of(GUIDE)
    assert [s.headings for s in sections] == [
        ("Guide",),
        ("Guide", "Install"),
        ("Guide", "Use", "Daily"),
    ]
    install = sections[1].paragraphs
    assert install[0] == "Run the installer. Then restart."
    assert install[1].startswith("```") and "# not a heading inside code" in install[1]


def test_a_chunk_never_spans_two_sections_and_carries_its_heading_path() -> None:
    chunks = chunk_text(GUIDE, max_chars=900, overlap_chars=150)
    assert chunks[0] == "Guide\nWelcome to the guide."
    assert chunks[1].startswith("Guide > Install\nRun the installer.")
    assert chunks[2] == "Guide > Use > Daily\nOpen the app every morning."


def test_long_sections_are_cut_at_sentences_within_the_size_and_overlap() -> None:
    sentences = " ".join(f"Sentence number {i} says something." for i in range(80))
    chunks = chunk_text(f"# Long\n\n{sentences}", max_chars=300, overlap_chars=80)
    assert len(chunks) > 5
    assert all(len(chunk) <= 300 for chunk in chunks)
    bodies = [chunk.removeprefix("Long\n") for chunk in chunks]
    for before, after in itertools.pairwise(bodies):
        # The next chunk starts with the end of the previous one.
        assert after.split("\n\n")[0] in before
    assert "Sentence number 79 says something." in chunks[-1]
    joined = " ".join(bodies)
    assert all(f"Sentence number {i} " in joined for i in range(80))


def test_an_unbroken_run_longer_than_a_chunk_is_cut_hard() -> None:
    chunks = chunk_text("x" * 1000, max_chars=300, overlap_chars=0)
    assert "".join(chunks) == "x" * 1000 and all(len(c) <= 300 for c in chunks)


def test_text_without_headings_or_content() -> None:
    assert chunk_text("just one line", max_chars=900, overlap_chars=150) == ["just one line"]
    assert chunk_text("\n\n  \n", max_chars=900, overlap_chars=150) == []
