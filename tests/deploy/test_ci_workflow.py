"""The GitHub Actions workflow: valid for GitHub (check-jsonschema's vendored workflow schema),
and it runs the README's test command against the servers the tests need."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
WORKFLOW = REPO / ".github" / "workflows" / "ci.yml"


def _check(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(Path(sys.executable).with_name("check-jsonschema")),
            "--builtin-schema",
            "vendor.github-workflows",
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )


def _workflow() -> dict[Any, Any]:
    document: dict[Any, Any] = yaml.safe_load(WORKFLOW.read_text())
    return document


def test_the_workflow_matches_githubs_schema() -> None:
    checked = _check(WORKFLOW)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_schema_check_catches_a_broken_workflow(tmp_path: Path) -> None:
    broken = _workflow()
    del broken["jobs"]["test"]["runs-on"]
    path = tmp_path / "broken.yml"
    path.write_text(yaml.safe_dump(broken))
    assert _check(path).returncode != 0


def test_pushes_and_pull_requests_run_make_test_beside_postgres_redis_and_nats() -> None:
    workflow = _workflow()
    triggers = workflow[True]  # YAML 1.1 reads the key `on` as true
    assert {"push", "pull_request"} <= set(triggers)
    job = workflow["jobs"]["test"]
    assert {"postgres", "redis"} <= set(job["services"])
    assert job["services"]["postgres"]["ports"] == ["5432:5432"]
    assert job["services"]["redis"]["ports"] == ["6379:6379"]
    runs = [step.get("run", "") for step in job["steps"]]
    assert any("nats" in run and "-js" in run and "4222:4222" in run for run in runs)
    assert "make test" in runs
    assert (REPO / ".ci" / "run").read_text().strip().endswith("make test")


def test_a_version_tag_builds_and_pushes_the_image_once_tested() -> None:
    workflow = _workflow()
    assert "v*" in workflow[True]["push"]["tags"]
    image = workflow["jobs"]["image"]
    assert image["needs"] == "test"
    assert "refs/tags/v" in image["if"]
    build = next(step for step in image["steps"] if "build-push-action" in step.get("uses", ""))
    assert build["with"]["file"] == "deploy/Dockerfile"
    assert (REPO / build["with"]["file"]).exists()
    assert build["with"]["push"] is True
