"""A real Prometheus (Debian's package, scripts/ensure-prometheus.sh) scrapes the real service
on loopback with deploy/prometheus/alerts.yml loaded: the target is up, every rule evaluates
without error, and after a burst of fills every alert's signal and the service's counters
return data. Every Grafana query of deploy/grafana/copytrade.json is valid PromQL there."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import yaml

from tests.deploy_files import (
    ACCOUNT_METRICS,
    ALERT_SHAPE,
    ALERTS,
    alert_rules,
    dashboard_queries,
    used_names,
)
from tests.e2e.conftest import ServiceProcess, free_port
from tests.support import Api, eventually, fill_frame, push_socket, send_frame

pytestmark = pytest.mark.e2e

BURST = 40
T = TypeVar("T")


async def wait_for(
    probe: Callable[[], Awaitable[T | None]], what: str, timeout_s: float = 60.0
) -> T:
    """Wait until ``probe`` returns something other than None (an empty list counts)."""

    async def found() -> tuple[T] | None:
        value = await probe()
        return None if value is None else (value,)

    result: tuple[T] = await eventually(found, what, timeout_s, every_s=0.25)
    return result[0]


class Prometheus:
    def __init__(self, base_url: str) -> None:
        self.http = httpx.AsyncClient(base_url=base_url, timeout=10)

    async def query(self, expr: str) -> list[dict[str, Any]]:
        response = await self.http.get("/api/v1/query", params={"query": expr})
        body = response.json()
        assert body["status"] == "success", (expr, body)
        result: list[dict[str, Any]] = body["data"]["result"]
        return result


@pytest.fixture
def prometheus_binary() -> str:
    binary = shutil.which("prometheus") or "/usr/bin/prometheus"
    if not Path(binary).exists():
        pytest.fail("prometheus is missing: run scripts/ensure-prometheus.sh (make test does)")
    return binary


def write_config(service: ServiceProcess, directory: Path) -> Path:
    """Scrape the service every second and evaluate deploy/prometheus/alerts.yml as often."""
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(ALERTS)],
        "scrape_configs": [
            {
                "job_name": "copytrade",
                "static_configs": [{"targets": [f"127.0.0.1:{service.port}"]}],
            }
        ],
    }
    path = directory / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
async def prometheus(
    service: ServiceProcess, tmp_path: Path, prometheus_binary: str
) -> AsyncIterator[Prometheus]:
    config = write_config(service, tmp_path)
    log_path = tmp_path / "prometheus.log"
    port = free_port()
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            prometheus_binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            stdout=log,
            stderr=log,
        )
    server = Prometheus(f"http://127.0.0.1:{port}")

    async def ready() -> bool | None:
        assert process.returncode is None, f"prometheus exited, see {log_path}"
        try:
            return True if (await server.http.get("/-/ready")).status_code == 200 else None
        except httpx.TransportError:
            return None

    try:
        await wait_for(ready, "Prometheus to be ready")
        yield server
    finally:
        process.terminate()
        await process.wait()
        await server.http.aclose()


async def burst_of_fills(service: ServiceProcess) -> None:
    api = Api(service.http)
    leader = await api.leader("lead")
    await api.leader_equity(leader["id"], "100000")
    for name, equity in (("A", "10000"), ("B", "25000")):
        follower = await api.follower(name)
        await api.follower_equity(follower["id"], equity)
        await api.subscribe(follower["id"], leader["id"])
    async with push_socket(service.ws_url, leader["id"], leader["push_token"]) as ws:
        for i in range(BURST):
            side = "buy" if i % 2 == 0 else "sell"
            ack = await send_frame(ws, fill_frame(f"p-{i}", "BTCUSDT", side, "1", "50000"))
            assert ack["status"] == "accepted", ack


async def test_prometheus_scrapes_the_service_and_the_rules_evaluate(
    service: ServiceProcess, prometheus: Prometheus
) -> None:
    # Arrange: the target is scraped and up.
    async def target_up() -> list[dict[str, Any]] | None:
        response = await prometheus.http.get("/api/v1/targets")
        active = response.json()["data"]["activeTargets"]
        return active if active and all(t["health"] == "up" for t in active) else None

    targets = await wait_for(target_up, "the service's target to be up")
    assert [t["labels"]["job"] for t in targets] == ["copytrade"]

    # Act
    await burst_of_fills(service)

    # Assert: Prometheus saw the burst, as the API's vocabulary counts it.
    async def burst_scraped() -> list[dict[str, Any]] | None:
        result = await prometheus.query('copytrade_fills_total{status="accepted"}')
        return result if result and float(result[0]["value"][1]) >= BURST else None

    await wait_for(burst_scraped, "the burst's fills in Prometheus")
    dispatched = await prometheus.query(
        'sum(copytrade_orders_total{status="dispatched", job="copytrade"})'
    )
    assert float(dispatched[0]["value"][1]) > 0
    assert await prometheus.query('copytrade_orders_total{status="pending"}') == []
    ready = await prometheus.query('copytrade_ready{job="copytrade"}')
    assert [float(r["value"][1]) for r in ready] == [1.0]

    # Every alert's signal (its expression without the threshold) returns data.
    for rule in alert_rules():
        match = ALERT_SHAPE.match(rule["expr"].strip())
        assert match is not None, rule["alert"]
        if used_names([rule["expr"]]) & ACCOUNT_METRICS:
            continue
        signal = match["signal"]

        async def has_data(signal: str = signal) -> list[dict[str, Any]] | None:
            return await prometheus.query(signal) or None

        await wait_for(has_data, f"{rule['alert']}: {signal}")

    # Every rule has been evaluated, without an error, and none fires on a healthy service.
    async def rules_evaluated() -> list[dict[str, Any]] | None:
        groups = (await prometheus.http.get("/api/v1/rules")).json()["data"]["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
        return rules if all(r["health"] != "unknown" for r in rules) else None

    rules = await wait_for(rules_evaluated, "every rule to be evaluated")
    assert {r["name"] for r in rules} == {r["alert"] for r in alert_rules()}
    assert [(r["name"], r.get("lastError")) for r in rules if r["health"] != "ok"] == []
    assert [r["name"] for r in rules if r["state"] != "inactive"] == []

    # The Grafana board's queries are valid PromQL (query() asserts success).
    for expr in dashboard_queries():
        await prometheus.query(
            expr.replace("$__rate_interval", "1m").replace('=~"$job"', '=~"copytrade"')
        )
