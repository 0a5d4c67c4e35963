"""Write each service's OpenAPI document to web/openapi/<service>.json (the web app's API types).

The documents are the public ones, as the gateway serves them (`/<service>/openapi.json`):
internal routes, metrics and probes left out by the gateway's one filter.

Builds every service's FastAPI app in-process and asks it for its schema: no server starts, no
lifespan runs, so no migration or database connection happens. Building an app only creates the
(empty) data directory, which points at a temporary one here. Run it through `make api-types`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT_DIR = ROOT / "web" / "openapi"
SERVICES = ("auth", "users", "tenants", "agents", "chat", "knowledge", "billing")


def _isolate_environment(data_dir: Path) -> None:
    """Drop every KIBITZ_ setting of the caller so the documents do not depend on the shell."""
    for key in [key for key in os.environ if key.startswith("KIBITZ_")]:
        del os.environ[key]
    os.environ["KIBITZ_DATA_DIR"] = str(data_dir)


def openapi_documents(services: tuple[str, ...] = SERVICES) -> dict[str, dict[str, Any]]:
    """The OpenAPI document of every named service, built in-process from a default platform."""
    from kibitz.gateway.docs import public_document
    from kibitz.kit.platform import Platform
    from kibitz.runtime.registry import available_modules

    modules = available_modules(list(services))
    missing = [name for name in services if name not in modules]
    if missing:
        raise SystemExit(f"not in this build: {', '.join(missing)}")
    platform = Platform()
    return {
        name: public_document(modules[name].create_app(platform).openapi()) for name in services
    }


def render(document: dict[str, Any]) -> str:
    """The document as stable text: sorted keys, two-space indent, one trailing newline."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Export the documents into --out-dir (web/openapi by default)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", type=Path, default=DEFAULT_OUT_DIR)
    args = parser.parse_args(argv)
    out_dir: Path = args.out_dir
    with tempfile.TemporaryDirectory(prefix="kibitz-openapi-") as data_dir:
        _isolate_environment(Path(data_dir))
        documents = openapi_documents()
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, document in documents.items():
        (out_dir / f"{name}.json").write_text(render(document), encoding="utf-8")
        print(f"wrote {out_dir / f'{name}.json'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
