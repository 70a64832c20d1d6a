"""Checks of deploy/prometheus/alerts.yml and deploy/grafana/copytrade.json without a server:
promtool (Debian's `prometheus` package, installed by scripts/ensure-prometheus.sh) checks and
unit-tests the rules, and every metric a rule or a panel queries is one the service exports.
tests/e2e/test_prometheus_e2e.py runs the same rules and queries on a real Prometheus."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

import app.metrics  # noqa: F401  (registers the service's metrics)
from tests.deploy_files import (
    ACCOUNT_METRICS,
    ALERT_SHAPE,
    ALERT_TESTS,
    ALERTS,
    DASHBOARD,
    alert_rules,
    dashboard_queries,
    used_names,
)


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool is missing: run scripts/ensure-prometheus.sh (make test does)")
    return path


def exported_series_names() -> set[str]:
    """Every series name /metrics can carry, from the registry the endpoint serves."""
    names: set[str] = set()
    for family in REGISTRY.collect():
        suffixes = {
            "counter": ("_total", "_created"),
            "histogram": ("_bucket", "_sum", "_count", "_created"),
            "summary": ("_sum", "_count", "_created"),
        }.get(family.type, ("",))
        names.update(family.name + suffix for suffix in suffixes)
    return names


def test_rules_are_valid() -> None:
    result = subprocess.run(
        [promtool(), "check", "rules", str(ALERTS)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_rules_pass_their_unit_tests() -> None:
    result = subprocess.run(
        [promtool(), "test", "rules", str(ALERT_TESTS)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_rule_unit_tests_catch_a_wrong_threshold(tmp_path: Path) -> None:
    """The unit tests can fail: with the latency budget at 1 s they must."""
    rules_dir = tmp_path / "deploy" / "prometheus"
    rules_dir.mkdir(parents=True)
    text = ALERTS.read_text()
    assert "[5m]))) > 0.25" in text
    (rules_dir / "alerts.yml").write_text(text.replace("[5m]))) > 0.25", "[5m]))) > 1"))
    tests_dir = tmp_path / "tests" / "prometheus"
    tests_dir.mkdir(parents=True)
    shutil.copy(ALERT_TESTS, tests_dir / "alerts_test.yml")
    result = subprocess.run(
        [promtool(), "test", "rules", str(tests_dir / "alerts_test.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "CopytradeFillLatencyHigh" in result.stdout + result.stderr


def test_every_alert_is_a_signal_against_a_threshold_and_is_unit_tested() -> None:
    tested = ALERT_TESTS.read_text()
    for rule in alert_rules():
        assert ALERT_SHAPE.match(rule["expr"].strip()), rule["alert"]
        assert rule["labels"]["severity"] in {"page", "warn"}
        assert f"alertname: {rule['alert']}" in tested, f"{rule['alert']} has no unit test"


def test_rules_use_only_exported_metrics() -> None:
    used = used_names([rule["expr"] for rule in alert_rules()])
    assert used - exported_series_names() == set()


def test_dashboard_uses_only_exported_metrics() -> None:
    used = used_names(dashboard_queries())
    assert used - exported_series_names() == set()


def test_the_metric_check_can_fail() -> None:
    assert used_names(["rate(copytrade_fils_total[5m])"]) - exported_series_names() == {
        "copytrade_fils_total"
    }


def test_account_metrics_are_exported() -> None:
    assert exported_series_names() >= ACCOUNT_METRICS


def test_dashboard_has_the_panels_on_call_needs() -> None:
    titles = {panel["title"] for panel in json.loads(DASHBOARD.read_text())["panels"]}
    assert {
        "Fills per second by status",
        "Orders per second by status",
        "Latency per stage, p99",
        "Outbox backlog and relay",
        "Listeners and feed sockets",
        "Reconnects and backfills",
        "Skips by reason",
        "Follower drift",
    } <= titles
    used = used_names(dashboard_queries())
    assert {
        "copytrade_fills_total",
        "copytrade_orders_total",
        "copytrade_stage_seconds_bucket",
    } <= (used)
