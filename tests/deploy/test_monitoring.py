"""Prometheus and Grafana files: the alert rules pass promtool's checks and unit tests, and every
metric the rules and the dashboard use is one kibitz exports."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from prometheus_client import REGISTRY

from kibitz.runtime.registry import available_modules

PROMETHEUS = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
DASHBOARD = PROMETHEUS.parent / "grafana" / "dashboards" / "kibitz-overview.json"
# Series Prometheus makes itself, not kibitz.
_PROMETHEUS_OWN = {"up"}


def _promtool(*arguments: str) -> subprocess.CompletedProcess[str]:
    promtool = Path(sys.executable).with_name("promtool")
    assert promtool.exists(), "promtool is missing: `make promtool` takes it from Debian's package"
    return subprocess.run(
        [str(promtool), *arguments], cwd=PROMETHEUS, capture_output=True, text=True, timeout=60
    )


def test_the_alert_rules_are_valid() -> None:
    checked = _promtool("check", "rules", "alerts.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_each_alert_fires_on_the_series_that_should_trip_it() -> None:
    tested = _promtool("test", "rules", "alerts.test.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_prometheus_loads_the_alert_rules() -> None:
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    assert config["rule_files"] == ["alerts.yml"]
    checked = _promtool("check", "config", "--syntax-only", "prometheus.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_every_alert_has_a_test() -> None:
    rules = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
    alerts = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    tests = yaml.safe_load((PROMETHEUS / "alerts.test.yml").read_text())
    tested = {
        case["alertname"]
        for test in tests["tests"]
        for case in test["alert_rule_test"]
        if case.get("exp_alerts")
    }
    assert alerts == tested


def _exported_metric_names() -> set[str]:
    available_modules()  # every module's metrics are registered on import
    import kibitz.kit.service_gauges  # noqa: F401 (and through it, the job queue's)

    # Every sample name the registry would expose (`_total`, `_bucket` … included).
    return set(REGISTRY._names_to_collectors)


def _metrics_in(expression: str) -> set[str]:
    return set(re.findall(r"\b(kibitz_[a-z_]+|up)\b", expression))


@pytest.mark.parametrize("source", ["alerts", "dashboard"])
def test_the_rules_and_the_dashboard_use_only_metrics_kibitz_exports(source: str) -> None:
    if source == "alerts":
        rules = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
        expressions = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    else:
        panels = json.loads(DASHBOARD.read_text())["panels"]
        expressions = [target["expr"] for panel in panels for target in panel["targets"]]
    used = set().union(*map(_metrics_in, expressions))
    unknown = used - _exported_metric_names() - _PROMETHEUS_OWN
    assert not unknown, f"{source} uses metrics nothing exports: {sorted(unknown)}"


def test_the_dashboard_shows_the_bookkeeping_an_operator_watches() -> None:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    used = set().union(*(_metrics_in(t["expr"]) for panel in panels for t in panel["targets"]))
    assert {
        "kibitz_outbox_backlog",
        "kibitz_dead_letters",
        "kibitz_db_pool_connections_in_use",
        "kibitz_jobs_depth",
        "kibitz_jobs_reclaimed_total",
        "kibitz_event_lag_seconds_bucket",
    } <= used


def test_lease_reclaims_and_queue_depth_are_alerted_on() -> None:
    rules = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
    expressions = {
        rule["alert"]: _metrics_in(rule["expr"])
        for group in rules["groups"]
        for rule in group["rules"]
    }
    assert expressions["KibitzJobLeasesReclaimed"] == {"kibitz_jobs_reclaimed_total"}
    assert expressions["KibitzJobQueueBacklog"] == {"kibitz_jobs_depth"}
