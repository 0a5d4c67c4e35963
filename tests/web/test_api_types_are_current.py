"""The web app's API types are generated from the services' OpenAPI and must not drift from them."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "web"
COMMITTED_DOCUMENTS = WEB / "openapi"
COMMITTED_TYPES = WEB / "src" / "lib" / "api-schema"
SERVICES = ["agents", "auth", "billing", "chat", "knowledge", "tenants", "users"]
HOW_TO_FIX = "run `make api-types` and commit web/openapi and web/src/lib/api-schema"


def _export(out_dir: Path) -> None:
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "export_openapi.py"), "--out-dir", str(out_dir)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def fresh_documents(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The OpenAPI documents exported from the services as they are now."""
    out_dir = tmp_path_factory.mktemp("openapi")
    _export(out_dir)
    return out_dir


def test_every_service_has_a_committed_openapi_document() -> None:
    committed = sorted(path.stem for path in COMMITTED_DOCUMENTS.glob("*.json"))
    assert committed == SERVICES, HOW_TO_FIX


@pytest.mark.parametrize("service", SERVICES)
def test_the_committed_openapi_document_matches_the_service(
    service: str, fresh_documents: Path
) -> None:
    fresh = (fresh_documents / f"{service}.json").read_text(encoding="utf-8")
    committed = (COMMITTED_DOCUMENTS / f"{service}.json").read_text(encoding="utf-8")
    # Compare the parsed documents (a clear diff in pytest) and the text (the stable rendering).
    stale = f"web/openapi/{service}.json is stale: {HOW_TO_FIX}"
    assert json.loads(committed) == json.loads(fresh), stale
    assert committed == fresh, stale


def test_exporting_twice_gives_the_same_bytes(fresh_documents: Path, tmp_path: Path) -> None:
    _export(tmp_path)
    for service in SERVICES:
        first = (fresh_documents / f"{service}.json").read_bytes()
        assert (tmp_path / f"{service}.json").read_bytes() == first


def test_the_committed_typescript_types_match_the_committed_documents(tmp_path: Path) -> None:
    node = shutil.which("node")
    if node is None or not (WEB / "node_modules" / "openapi-typescript").is_dir():
        pytest.skip("needs node and web/node_modules (npm ci)")
    subprocess.run(
        [node, "scripts/gen-api.mjs", "--out", str(tmp_path)],
        cwd=WEB,
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    for service in SERVICES:
        generated = (tmp_path / f"{service}.d.ts").read_text(encoding="utf-8")
        committed = (COMMITTED_TYPES / f"{service}.d.ts").read_text(encoding="utf-8")
        stale = f"web/src/lib/api-schema/{service}.d.ts is stale: {HOW_TO_FIX}"
        assert committed == generated, stale
