"""The repository's own docs stand alone: every link in README.md and docs/ leads somewhere in
the repository (a clone has nothing beside it)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCUMENTS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
_LINK = re.compile(r"\]\(([^)\s]+)\)")


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: path.name)
def test_every_relative_link_leads_to_a_file_in_the_repository(document: Path) -> None:
    for target in _LINK.findall(document.read_text()):
        if re.match(r"[a-z]+://", target) or target.startswith("#"):
            continue
        path = (document.parent / target.split("#", 1)[0]).resolve()
        assert path.is_relative_to(REPO), f"{document.name} points outside the repository: {target}"
        assert path.exists(), f"{document.name} links to a missing {target}"


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: path.name)
def test_no_document_points_at_files_beside_the_repository(document: Path) -> None:
    assert "../shared" not in document.read_text()


def test_the_readme_leads_to_the_design_and_the_api() -> None:
    readme = (REPO / "README.md").read_text()
    for page in ("docs/architecture.md", "docs/http-api.md", "docs/operations.md"):
        assert f"]({page}" in readme
