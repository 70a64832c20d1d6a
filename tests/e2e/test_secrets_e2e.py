"""No secret leaves the service except in its one-time creation response: not in any other API
response (bodies, headers, websocket messages), and not in the service's log."""

from __future__ import annotations

import asyncio
import json

import httpx
from websockets.asyncio.client import connect

from tests.e2e.conftest import ServiceProcess
from tests.support import ADMIN_TOKEN, Api, fill_frame, push_socket, send_frame

WRONG_TOKEN = "ctf_" + "x" * 43


class Recorder:
    """Every HTTP response the test client receives, as text (status line, headers, body)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    async def __call__(self, response: httpx.Response) -> None:
        await response.aread()
        headers = "\n".join(f"{k}: {v}" for k, v in response.headers.items())
        label = f"{response.request.method} {response.request.url.path} {response.status_code}"
        self.seen.append((label, f"{headers}\n\n{response.text}"))


async def _flow(service: ServiceProcess, http: httpx.AsyncClient) -> tuple[list[str], list[str]]:
    """A realistic session; returns the secrets made and every websocket message received."""
    api = Api(http)
    messages: list[str] = []
    leader = await api.leader("lead")
    await api.leader_equity(leader["id"], "100000")
    await api.instrument("BTCUSDT", qty_step="0.001", min_qty="0.001")
    a = await api.follower("A")
    b = await api.follower("B")
    secrets = [ADMIN_TOKEN, leader["push_token"], a["api_key"], b["api_key"]]
    await api.call(
        "POST", f"/v1/followers/{a['id']}/equity", 201, a["api_key"], json={"equity": "10000"}
    )
    await api.follower_equity(b["id"], "20000")
    await api.call(
        "POST",
        f"/v1/followers/{a['id']}/subscriptions",
        201,
        a["api_key"],
        json={"leader_id": leader["id"]},
    )
    await api.subscribe(b["id"], leader["id"], "2")

    feed_url = f"{service.ws_url}/v1/followers/{a['id']}/orders/ws?token={a['api_key']}"
    async with connect(feed_url) as feed:
        # The token in the query string this time: it must not reach the log either.
        push_url = (
            f"{service.ws_url}/v1/leaders/{leader['id']}/fills/ws?token={leader['push_token']}"
        )
        async with connect(push_url) as ws:
            messages.append(
                json.dumps(await send_frame(ws, fill_frame("f-1", "BTCUSDT", "buy", "1", "50000")))
            )
        async with push_socket(service.ws_url, leader["id"], leader["push_token"]) as ws:
            for frame in (
                fill_frame("f-2", "BTCUSDT", "sell", "0.5", "51000"),
                fill_frame("f-1", "BTCUSDT", "buy", "1", "50000"),  # a resend
                "{not json",
                fill_frame("f-3", "BTCUSDT", "buy", "1e6", "50000"),  # quarantined
            ):
                messages.append(json.dumps(await send_frame(ws, frame)))
        for _ in range(2):
            messages.append(str(await asyncio.wait_for(feed.recv(), timeout=10)))

    orders = await api.settled_orders(a["id"], a["api_key"])
    first = orders[-1]["order_id"]
    base = f"/v1/followers/{a['id']}/orders/{first}"
    await api.call("POST", f"{base}/reports", 200, a["api_key"], json={"status": "accepted"})
    report = {"status": "filled", "filled_qty": orders[-1]["qty"], "avg_price": "50010"}
    await api.call("POST", f"{base}/reports", 200, a["api_key"], json=report)
    unknown = f"/v1/followers/{a['id']}/orders/nope/reports"
    await api.call("POST", unknown, 404, a["api_key"], json={"status": "accepted"})

    for path, token in (
        ("/v1/leaders", None),
        (f"/v1/leaders/{leader['id']}", None),
        (f"/v1/leaders/{leader['id']}/positions", None),
        (f"/v1/followers/{a['id']}", a["api_key"]),
        (f"/v1/followers/{a['id']}/subscriptions", a["api_key"]),
        (f"/v1/followers/{a['id']}/positions", a["api_key"]),
        (base, a["api_key"]),
        (f"/v1/followers/{b['id']}/orders", None),
    ):
        await api.call("GET", path, 200, token)
    # Refusals: another follower's ids, an admin route, a wrong token, a bad body.
    await api.call("GET", f"/v1/followers/{b['id']}", 404, a["api_key"])
    await api.call("GET", "/v1/leaders", 403, a["api_key"])
    await api.call("GET", f"/v1/followers/{a['id']}", 401, WRONG_TOKEN)
    await api.call("POST", "/v1/followers", 422, json={"name": ""})
    for path in ("/healthz", "/readyz", "/metrics", "/openapi.json"):
        assert (await http.get(path)).status_code == 200
    async with connect(
        f"{service.ws_url}/v1/followers/{b['id']}/orders/ws?token={a['api_key']}"
    ) as ws:
        try:
            messages.append(str(await asyncio.wait_for(ws.recv(), timeout=5)))
        except Exception as exc:  # closed with 1008: the close reason is a message too
            messages.append(repr(exc))
    return secrets, messages


async def test_no_secret_in_responses_or_logs(service: ServiceProcess) -> None:
    # Arrange
    recorder = Recorder()
    async with httpx.AsyncClient(
        base_url=service.base_url, timeout=10, event_hooks={"response": [recorder]}
    ) as http:
        # Act
        secrets, messages = await _flow(service, http)
    await service.stop()  # flush and close the log

    # Assert: creation responses are the only places a secret shows (each shows its own)
    creations = [(label, text) for label, text in recorder.seen if " 201" in label]
    shown = {s for s in secrets for _, text in creations if s in text}
    assert shown == set(secrets) - {ADMIN_TOKEN}
    leaks = [
        (label, secret[:8])
        for label, text in recorder.seen
        for secret in secrets
        if secret in text
        and not (
            label.startswith("POST /v1/leaders 201") or label.startswith("POST /v1/followers 201")
        )
    ]
    assert leaks == []
    assert [m for m in messages if any(s in m for s in secrets)] == []
    log = service.log_path.read_text()
    assert "push_feed_connected" in log  # the log captured the session
    assert [s[:8] for s in secrets if s in log] == []
    assert "Bearer " not in log
