"""Uploads become text with maintained parsers: HTML keeps its headings as Markdown and drops
scripts, PDFs are read by pypdf, damaged or empty files are refused with a reason."""

from __future__ import annotations

import pytest

from kibitz.services.knowledge.ingest.parsing import (
    UnreadableDocument,
    extract_text,
    looks_like,
    media_type_for,
)
from tests.fixtures.documents import pdf_with_text


def test_the_media_type_comes_from_the_extension_then_the_declared_type() -> None:
    assert media_type_for("Notes.MD", "application/octet-stream") == "text/markdown"
    assert media_type_for("page.htm", None) == "text/html"
    assert media_type_for("blob", "application/pdf") == "application/pdf"
    assert media_type_for("photo.png", "image/png") is None
    assert media_type_for(None, "text/plain; charset=utf-8") == "text/plain"


def test_html_becomes_markdown_without_scripts_styles_or_navigation() -> None:
    html = (
        b"<html><head><title>t</title><style>p{}</style></head><body><nav>Home | About</nav>"
        b"<h1>Title</h1><p>First <b>bold</b> paragraph.</p><script>track()</script>"
        b"<h2>Part</h2><ul><li>one</li><li>two</li></ul></body></html>"
    )
    text = extract_text(html, "text/html")
    assert text.startswith("# Title")
    assert "## Part" in text and "First **bold** paragraph." in text and "one" in text
    assert "track" not in text and "Home | About" not in text and "p{}" not in text


def test_pdf_text_is_read_and_damaged_pdfs_are_refused() -> None:
    assert extract_text(pdf_with_text(["Hello", "World"]), "application/pdf") == "Hello\nWorld"
    with pytest.raises(UnreadableDocument, match="PDF"):
        extract_text(b"%PDF-1.4\n" + b"\x00garbage" * 50, "application/pdf")
    with pytest.raises(UnreadableDocument, match="no text"):
        extract_text(pdf_with_text([]), "application/pdf")


def test_text_is_decoded_and_binary_or_empty_files_are_refused() -> None:
    assert extract_text("café".encode(), "text/plain") == "café"
    assert extract_text("café".encode("cp1252"), "text/plain") == "café"
    assert extract_text(b"\xef\xbb\xbfwith bom", "text/plain") == "with bom"
    with pytest.raises(UnreadableDocument):
        extract_text(b"a\x00b", "text/plain")
    with pytest.raises(UnreadableDocument):
        extract_text(b"  \n ", "text/markdown")
    assert looks_like(b"  %PDF-1.7", "application/pdf") and not looks_like(b"PK", "application/pdf")
