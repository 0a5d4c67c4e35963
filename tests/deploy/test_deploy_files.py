"""The deploy/ files are checked by tools that run here (no Docker engine on this machine)."""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from pydantic_settings import BaseSettings

from kibitz.kit.settings import PlatformSettings
from kibitz.runtime.registry import MODULE_PATHS, SERVICE_NAMES

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
REPO = DEPLOY.parent


def _compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return document


def _kubernetes_documents() -> list[tuple[str, dict[str, Any]]]:
    documents = []
    for path in sorted((DEPLOY / "kubernetes").glob("*.yaml")):
        documents += [(path.name, doc) for doc in yaml.safe_load_all(path.read_text()) if doc]
    return documents


def _known_variables() -> set[str]:
    """Every KIBITZ_ variable a settings class of this build reads."""
    known = {f"KIBITZ_{name.upper()}" for name in PlatformSettings.model_fields}
    known |= {f"KIBITZ_{name.upper()}_URL" for name in SERVICE_NAMES}
    for module_name, module_path in MODULE_PATHS.items():
        package = module_path.rsplit(".", 1)[0]
        try:
            config = importlib.import_module(f"{package}.config")
        except ModuleNotFoundError:
            continue
        for _, cls in inspect.getmembers(config, inspect.isclass):
            if issubclass(cls, BaseSettings) and cls.__module__ == config.__name__:
                prefix = str(cls.model_config.get("env_prefix", "")).upper()
                known |= {f"{prefix}{field.upper()}" for field in cls.model_fields}
        known.add(f"KIBITZ_{module_name.upper()}_DATABASE_URL")
    return known


@pytest.mark.parametrize(("name", "document"), _kubernetes_documents())
def test_kubernetes_manifests_match_the_api_schema(name: str, document: dict[str, Any]) -> None:
    kubernetes_validate.validate(document, "1.30.0", strict=True)


def test_every_compose_process_runs_a_real_target() -> None:
    services = _compose()["services"]
    commands = [svc["command"] for svc in services.values() if svc.get("image") == "kibitz:latest"]
    served = {command[1] for command in commands if command[0] == "serve"}
    assert served == set(MODULE_PATHS)
    assert ["migrate"] in commands


def test_compose_points_every_service_url_at_a_compose_service() -> None:
    compose = _compose()
    environment = compose["x-kibitz"]["environment"]
    for name in SERVICE_NAMES:
        url = environment[f"KIBITZ_{name.upper()}_URL"]
        host = re.match(r"http://([^:/]+)", url)
        assert host and host.group(1) in compose["services"]


def test_deploy_files_only_set_variables_kibitz_reads() -> None:
    compose = _compose()
    compose_vars = set(compose["x-kibitz"]["environment"])
    compose_vars |= set(compose["services"]["gateway"]["environment"])
    kube_vars: set[str] = set()
    for _, document in _kubernetes_documents():
        kube_vars |= set(document.get("data", {})) | set(document.get("stringData", {}))
    unknown = {v for v in compose_vars | kube_vars if v.startswith("KIBITZ_")} - _known_variables()
    assert not unknown, f"deploy files set variables no settings class reads: {sorted(unknown)}"


def test_dockerfile_copies_files_that_exist() -> None:
    for line in (DEPLOY / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY") and "--from" not in line:
            for source in line.split()[1:-1]:
                assert (REPO / source).exists(), source


def test_prometheus_scrapes_every_module() -> None:
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    names = [
        name
        for job in config["scrape_configs"]
        for discovery in job["dns_sd_configs"]
        for name in discovery["names"]
    ]
    assert sorted(names) == sorted(MODULE_PATHS)
