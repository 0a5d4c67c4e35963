"""The build files a newcomer runs: `make run` installs only what kibitz needs to run, on the port
they ask for; the two lock files pin exactly the runtime tree and the tooling's."""

from __future__ import annotations

import subprocess
import tomllib
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]


def _make_dry_run(*arguments: str) -> str:
    """What make would run (-n), every target considered out of date (-B)."""
    return subprocess.run(
        ["make", "-n", "-B", "--no-print-directory", *arguments],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout


def test_make_run_serves_on_the_port_asked_for() -> None:
    assert "kibitz up --host 127.0.0.1 --port 8000" in _make_dry_run("run")
    assert "kibitz up --host 127.0.0.1 --port 8080" in _make_dry_run("run", "PORT=8080")


def test_make_run_installs_only_the_runtime_dependencies() -> None:
    commands = _make_dry_run("run")
    assert "-r requirements.lock" in commands
    assert "requirements-dev.lock" not in commands


def test_make_test_installs_the_tooling_too() -> None:
    assert "-r requirements-dev.lock" in _make_dry_run("install")
    lock = (REPO / "requirements-dev.lock").read_text().splitlines()
    assert "-r requirements.lock" in lock


def _closure(requirements: list[str]) -> set[str]:
    """Every distribution the requirements pull in, as installed here."""
    found: set[str] = set()
    pending = [Requirement(text) for text in requirements]
    while pending:
        requirement = pending.pop()
        name = canonicalize_name(requirement.name)
        key = f"{name}[{','.join(sorted(requirement.extras))}]"
        if key in found:
            continue
        found |= {key, name}
        try:
            requires = distribution(requirement.name).requires or []
        except PackageNotFoundError as error:
            raise AssertionError(f"{requirement.name} is not installed") from error
        extras = [{"extra": extra} for extra in requirement.extras or {""}]
        pending += [
            sub
            for sub in map(Requirement, requires)
            if sub.marker is None or any(sub.marker.evaluate(env) for env in extras)
        ]
    return {name for name in found if "[" not in name}


def _pins(path: Path) -> dict[str, str]:
    lines = [line for line in path.read_text().splitlines() if "==" in line]
    return {canonicalize_name(line.split("==")[0]): line.split("==")[1] for line in lines}


def test_the_locks_pin_the_runtime_tree_and_the_tooling_apart() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    runtime = _closure(project["dependencies"])
    tooling = _closure(project["optional-dependencies"]["dev"]) - runtime
    runtime_pins = _pins(REPO / "requirements.lock")
    dev_pins = _pins(REPO / "requirements-dev.lock")
    assert set(runtime_pins) == runtime, "requirements.lock must pin the runtime tree, no more"
    assert set(dev_pins) == tooling, "requirements-dev.lock must pin the rest of the dev tree"
    for requirement in map(Requirement, project["dependencies"]):
        assert f"=={runtime_pins[canonicalize_name(requirement.name)]}" == str(
            requirement.specifier
        )


def test_the_locks_are_sorted() -> None:
    for name in ("requirements.lock", "requirements-dev.lock"):
        pins = [line for line in (REPO / name).read_text().splitlines() if "==" in line]
        assert pins == sorted(pins, key=lambda line: line.split("==")[0].lower()), name
