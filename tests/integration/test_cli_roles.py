"""Roles: an api-only process serves the REST API and runs no relay, reader, trimmer or
listener; an ingest+dispatch process takes fills and delivers them but serves no REST."""

from __future__ import annotations

import asyncio
import signal
import socket
from typing import Any

import httpx
import pytest
from websockets.exceptions import InvalidStatus

from tests.conftest import make_settings
from tests.integration.cli_runner import cli_env, run_cli, start_cli
from tests.support import (
    ADMIN,
    Api,
    eventually,
    fill_frame,
    push_socket,
    read_stream,
    send_frame,
    start_live_server,
)

DISPATCH_LOOPS = {"outbox_relay", "report_reader", "stream_trim"}


def _loops() -> set[str]:
    return {task.get_name() for task in asyncio.all_tasks()}


async def _health(http: httpx.AsyncClient) -> list[int]:
    return [(await http.get(path)).status_code for path in ("/healthz", "/readyz", "/metrics")]


async def test_api_only_and_ingest_dispatch_processes_split_the_work(
    clean: None, redis: Any
) -> None:
    async with start_live_server(make_settings(roles=["api"])) as api_server:
        # Arrange, through the api-only process
        api = Api(api_server.http)
        leader = await api.leader()
        follower = await api.follower()
        await api.leader_equity(leader["id"], "100000")
        await api.follower_equity(follower["id"], "10000")
        await api.instrument("BTCUSDT", qty_step="0.001", min_qty="0.001", min_notional="5")
        await api.subscribe(follower["id"], leader["id"])
        generic = await api.leader("feed", {"kind": "generic", "url": "ws://127.0.0.1:9/feed"})

        # Assert: the api-only process runs no dispatch loop and no listener...
        api_loops = _loops()
        assert not DISPATCH_LOOPS & api_loops
        assert not {name for name in api_loops if name.startswith("feed:")}
        assert generic["listener"] is None
        assert api_server.runtime.listeners.listeners == {}
        # ...and does not take fills, but answers health, readiness and metrics.
        with pytest.raises(InvalidStatus):
            async with push_socket(api_server.ws_url, leader["id"], leader["push_token"]):
                pass
        assert await _health(api_server.http) == [200, 200, 200]

        async with start_live_server(make_settings(roles=["ingest", "dispatch"])) as worker:
            # The worker serves no REST, runs the dispatch loops and the generic leader's
            # listener (its lease claimed at the first heartbeat), and takes the push fill.
            no_rest = await worker.http.get("/v1/leaders", headers=ADMIN)
            await eventually(
                lambda: f"feed:{generic['id']}" in _loops(), "the generic leader's listener"
            )
            worker_loops = _loops()
            async with push_socket(worker.ws_url, leader["id"], leader["push_token"]) as ws:
                ack = await send_frame(ws, fill_frame("f-1", "BTCUSDT", "buy", "2", "50000"))
            stream = await read_stream(redis, follower["id"])
            history = await api.settled_orders(follower["id"])
            worker_health = await _health(worker.http)

    assert no_rest.status_code == 404
    assert worker_loops >= DISPATCH_LOOPS
    assert f"feed:{generic['id']}" in worker_loops
    assert ack["status"] == "accepted"
    assert [(o["qty"], o["side"]) for o in stream] == [("0.2", "buy")]
    assert [o["status"] for o in history] == ["dispatched"]
    assert worker_health == [200, 200, 200]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_serve_role_flag_runs_only_that_role(clean: None) -> None:
    port = _free_port()
    env = cli_env(COPYTRADE_PORT=str(port), COPYTRADE_ROLES="api,ingest,dispatch")
    process = await start_cli("serve", "--role", "dispatch", env=env)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:

            async def healthy() -> bool:
                assert process.returncode is None, await process.communicate()
                try:
                    return (await http.get("/healthz")).status_code == 200
                except httpx.TransportError:
                    return False

            await eventually(healthy, "the service's /healthz", within_s=30)
            health = await _health(http)
            rest = await http.get("/v1/leaders", headers=ADMIN)
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.wait(), timeout=30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()

    assert health == [200, 200, 200]
    assert rest.status_code == 404
    # Stopped, not killed: uvicorn shuts down, then re-raises the TERM it caught.
    assert process.returncode in (0, -signal.SIGTERM)


async def test_serve_refuses_an_unknown_role_readably() -> None:
    result = await run_cli("serve", env=cli_env(COPYTRADE_ROLES="api,bogus"))

    assert result.code == 2
    assert "roles.1: Input should be 'api', 'ingest', 'dispatch' or 'execute'" in result.stderr
