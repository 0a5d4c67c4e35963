"""Text out of uploads: plain text and Markdown as they are, HTML to Markdown (markdownify on a
BeautifulSoup tree, so headings survive for chunking), PDF through pypdf."""

from __future__ import annotations

import io
import logging
from pathlib import PurePosixPath

MEDIA_TYPES = {
    ".txt": "text/plain",
    ".text": "text/plain",
    ".md": "text/markdown",
    ".markdown": "text/markdown",
    ".html": "text/html",
    ".htm": "text/html",
    ".pdf": "application/pdf",
}
_DECLARED = {
    "text/plain": "text/plain",
    "text/markdown": "text/markdown",
    "text/x-markdown": "text/markdown",
    "text/html": "text/html",
    "application/xhtml+xml": "text/html",
    "application/pdf": "application/pdf",
}
# Elements whose text is not the document's content.
_NOT_CONTENT = ["script", "style", "noscript", "template", "svg", "nav", "iframe", "form"]


class UnreadableDocument(Exception):
    """The upload is not a document of its type (corrupt, encrypted, no text)."""


def media_type_for(filename: str | None, declared: str | None) -> str | None:
    """The supported media type of an upload, by file extension first, then its declared type."""
    if filename:
        by_extension = MEDIA_TYPES.get(PurePosixPath(filename).suffix.lower())
        if by_extension:
            return by_extension
    if declared:
        return _DECLARED.get(declared.split(";")[0].strip().lower())
    return None


def looks_like(content: bytes, media_type: str) -> bool:
    """A cheap check at upload: a PDF starts with `%PDF-`, text has no NUL bytes."""
    if media_type == "application/pdf":
        return content.lstrip()[:5] == b"%PDF-"
    return b"\x00" not in content[:65536]


def extract_text(content: bytes, media_type: str) -> str:
    """The document's text (Markdown-ish for HTML), or UnreadableDocument."""
    if media_type == "application/pdf":
        text = _pdf_text(content)
    elif media_type == "text/html":
        text = _html_text(_decode(content))
    else:
        text = _decode(content)
    text = text.replace("\r\n", "\n").replace("\r", "\n").strip()
    if not text:
        raise UnreadableDocument("The document contains no text.")
    return text


def _decode(content: bytes) -> str:
    if b"\x00" in content:
        raise UnreadableDocument("The file is binary, not text.")
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError:
        # Most non-UTF-8 text files are Windows-1252; a few odd bytes beat refusing the file.
        return content.decode("cp1252", errors="replace")


def _html_text(html: str) -> str:
    from bs4 import BeautifulSoup
    from markdownify import MarkdownConverter

    soup = BeautifulSoup(html, "html.parser")
    for element in soup(_NOT_CONTENT):
        element.decompose()
    body = soup.body or soup
    markdown: str = MarkdownConverter(heading_style="ATX", strip=["img", "a"]).convert_soup(body)
    return markdown


def _pdf_text(content: bytes) -> str:
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    # pypdf logs every repaired flaw of a damaged file; the outcome is what matters here.
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        reader = PdfReader(io.BytesIO(content))
        if reader.is_encrypted and not reader.decrypt(""):
            raise UnreadableDocument("The PDF is encrypted.")
        pages = [page.extract_text() or "" for page in reader.pages]
    except UnreadableDocument:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, OSError) as exc:
        raise UnreadableDocument("The PDF cannot be read (damaged or not a PDF).") from exc
    text = "\n\n".join(page.strip() for page in pages if page.strip())
    if not text:
        raise UnreadableDocument("The PDF has no text layer (a scan?).")
    return text
