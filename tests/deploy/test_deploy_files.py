"""The deploy/ files are checked by tools that run here (no Docker engine on this machine)."""

from __future__ import annotations

import importlib
import inspect
import re
import shutil
import subprocess
from functools import cache
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
KUBERNETES = DEPLOY / "kubernetes"
OVERLAYS = ("small", "production")
# The services that carry every message: they scale with CPU in production.
AUTOSCALED = {"gateway", "chat", "agents"}


def _compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return document


@cache
def _rendered(overlay: str) -> tuple[dict[str, Any], ...]:
    """An overlay rendered by kustomize: kubectl's built-in one (v5 on this kind of machine;
    Debian's kubernetes-client 1.20 bundles kustomize 2, which cannot read the overlays'
    `patches`)."""
    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl (with kustomize 4 or later built in) renders the overlays"
    rendered = subprocess.run(
        [kubectl, "kustomize", str(KUBERNETES / "overlays" / overlay)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    return tuple(doc for doc in yaml.safe_load_all(rendered) if doc)


def _kubernetes_documents() -> list[tuple[str, dict[str, Any]]]:
    documents = [
        (f"{overlay}:{doc['kind']}/{doc['metadata']['name']}", doc)
        for overlay in OVERLAYS
        for doc in _rendered(overlay)
    ]
    example = KUBERNETES / "secret.example.yaml"
    documents += [(example.name, doc) for doc in yaml.safe_load_all(example.read_text()) if doc]
    return documents


def _of_kind(overlay: str, kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in _rendered(overlay) if doc["kind"] == kind}


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


def test_the_base_lists_every_file_in_it() -> None:
    kustomization = yaml.safe_load((KUBERNETES / "base" / "kustomization.yaml").read_text())
    files = {path.name for path in (KUBERNETES / "base").glob("*.yaml")}
    assert set(kustomization["resources"]) == files - {"kustomization.yaml"}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_overlay_deploys_every_module_with_the_migration_job_and_bus(overlay: str) -> None:
    deployments = _of_kind(overlay, "Deployment")
    for name in MODULE_PATHS:
        container = deployments[name]["spec"]["template"]["spec"]["containers"][0]
        assert container["args"][:2] == ["serve", name]
    assert _of_kind(overlay, "Job")["kibitz-migrate"]["spec"]["template"]["spec"]["containers"][0][
        "args"
    ] == ["migrate"]
    assert "nats" in _of_kind(overlay, "StatefulSet")
    assert all(
        doc["metadata"]["namespace"] == "kibitz"
        for doc in _rendered(overlay)
        if doc["kind"] != "Namespace"
    )


def test_the_small_overlay_runs_one_replica_of_each() -> None:
    deployments = _of_kind("small", "Deployment")
    assert {name: doc["spec"]["replicas"] for name, doc in deployments.items()} == dict.fromkeys(
        deployments, 1
    )
    assert not _of_kind("small", "HorizontalPodAutoscaler")


def test_production_autoscales_the_message_path_on_cpu_and_leaves_it_the_replica_count() -> None:
    deployments = _of_kind("production", "Deployment")
    autoscalers = _of_kind("production", "HorizontalPodAutoscaler")
    assert {hpa["spec"]["scaleTargetRef"]["name"] for hpa in autoscalers.values()} == AUTOSCALED
    for hpa in autoscalers.values():
        assert hpa["spec"]["minReplicas"] >= 2
        assert [metric["resource"]["name"] for metric in hpa["spec"]["metrics"]] == ["cpu"]
    for name in AUTOSCALED:
        assert "replicas" not in deployments[name]["spec"]
        requests = deployments[name]["spec"]["template"]["spec"]["containers"][0]["resources"]
        assert requests["requests"]["cpu"], "CPU utilisation is measured against the request"


def test_production_spreads_budgets_and_sizes_every_module() -> None:
    deployments = _of_kind("production", "Deployment")
    budgets = _of_kind("production", "PodDisruptionBudget")
    for name in MODULE_PATHS:
        pod = deployments[name]["spec"]["template"]["spec"]
        assert (
            budgets[name]["spec"]["selector"]["matchLabels"]
            == (deployments[name]["spec"]["selector"]["matchLabels"])
        )
        topology_keys = {c["topologyKey"] for c in pod["topologySpreadConstraints"]}
        assert topology_keys == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}
        resources = pod["containers"][0]["resources"]
        assert resources["requests"]["cpu"] and resources["limits"]["memory"]
        replicas = deployments[name]["spec"].get("replicas")
        assert replicas is None or replicas >= 2, f"{name}: a budget needs a second replica"


def _admitted_components(policy: dict[str, Any]) -> set[str] | None:
    """The components a policy admits (None: anyone)."""
    admitted: set[str] = set()
    for rule in policy["spec"].get("ingress", []):
        if "from" not in rule:
            return None
        for peer in rule["from"]:
            for expression in peer.get("podSelector", {}).get("matchExpressions", []):
                admitted |= set(expression["values"])
    return admitted


def test_production_admits_only_the_calls_the_design_makes() -> None:
    policies = _of_kind("production", "NetworkPolicy")
    assert policies["default-deny-ingress"]["spec"] == {
        "podSelector": {},
        "policyTypes": ["Ingress"],
    }
    workloads = {**_of_kind("production", "Deployment"), **_of_kind("production", "StatefulSet")}
    for name in workloads:
        assert name in policies, f"{name} has no ingress policy: default-deny cuts it off"
    assert _admitted_components(policies["gateway"]) is None
    assert _admitted_components(policies["chat"]) == {"gateway"}
    assert _admitted_components(policies["users"]) == {"gateway"}
    assert _admitted_components(policies["agents"]) == {"gateway", "chat", "tenants"}
    assert _admitted_components(policies["billing"]) == {"gateway", "tenants"}
    assert _admitted_components(policies["auth"]) == set(MODULE_PATHS) - {"auth"}
    assert _admitted_components(policies["nats"]) == set(MODULE_PATHS)
    assert _admitted_components(policies["redis"]) == {"gateway", "auth", "chat"}
    assert _admitted_components(policies["knowledge"]) == {"gateway", "agents"}
    assert _admitted_components(policies["qdrant"]) == {"knowledge"}


def _auth_and_gateway_environments() -> dict[str, dict[str, str]]:
    """The environment of auth and the gateway in compose and in each rendered overlay (the
    ConfigMap and the Secret they load, then their own `env`)."""
    compose = _compose()["services"]
    found = {
        f"compose:{name}": {key: str(value) for key, value in compose[name]["environment"].items()}
        for name in ("auth", "gateway")
    }
    for overlay in OVERLAYS:
        maps = _of_kind(overlay, "ConfigMap")
        for name in ("auth", "gateway"):
            container = _of_kind(overlay, "Deployment")[name]["spec"]["template"]["spec"][
                "containers"
            ][0]
            env: dict[str, str] = {}
            for source in container.get("envFrom", []):
                if "configMapRef" in source:
                    env.update(maps[source["configMapRef"]["name"]]["data"])
                if "secretRef" in source:
                    env["KIBITZ_INTERNAL_TOKEN"] = f"secret:{source['secretRef']['name']}"
            env.update({item["name"]: item.get("value", "") for item in container.get("env", [])})
            found[f"{overlay}:{name}"] = env
    return found


def test_auth_believes_forwarded_addresses_from_the_gateway_alone() -> None:
    # Issue 15 finding 3: with loopback (or the gateway's network) trusted by address, any
    # process that reaches auth chooses its address per login attempt.
    environments = _auth_and_gateway_environments()
    for place, env in environments.items():
        assert env.get("KIBITZ_AUTH_TRUSTED_PROXIES") == "", place
        assert env.get("KIBITZ_GATEWAY_TRUST_FORWARDED_FOR") == "false", place
        # The gateway's forwarding credential is derived from the internal token: both have it.
        assert env.get("KIBITZ_INTERNAL_TOKEN"), place
    for deployment in ["compose", *OVERLAYS]:
        assert (
            environments[f"{deployment}:auth"]["KIBITZ_INTERNAL_TOKEN"]
            == environments[f"{deployment}:gateway"]["KIBITZ_INTERNAL_TOKEN"]
        ), deployment
