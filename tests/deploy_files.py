"""The deploy files as the tests read them: alert rules and dashboard queries."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
ALERT_TESTS = ROOT / "tests" / "prometheus" / "alerts_test.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "copytrade.json"
# Metrics with series only while an executor holds a follower account (labelled per follower):
# exported, but a service without accounts (the Prometheus e2e's) has no series of them.
ACCOUNT_METRICS = frozenset({"copytrade_follower_drift"})
METRIC_NAME = re.compile(r"\b(copytrade_[a-z0-9_]+)")
# An alert is `<signal> <comparison> <threshold>`: the e2e test evaluates the signal alone.
ALERT_SHAPE = re.compile(r"^(?P<signal>.+?)\s*(?P<op>[<>]=?|==|!=)\s*(?P<threshold>[0-9.]+)$", re.S)


def alert_rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(ALERTS.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def dashboard_queries() -> list[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [target["expr"] for panel in panels for target in panel["targets"]]


def used_names(queries: list[str]) -> set[str]:
    return {name for query in queries for name in METRIC_NAME.findall(query)}
