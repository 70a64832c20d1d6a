"""POST /v1/leaders/{id}/replay: NDJSON documents, amounts never through float, read-only."""

from __future__ import annotations

import json

from tests.integration.desk import push_fills, seed_desk
from tests.support import ADMIN, Api, LiveServer, fill_frame


async def test_replay_streams_a_header_a_document_per_fill_and_a_summary(
    server: LiveServer,
) -> None:
    # Arrange: two fills of the leader
    api = Api(server.http)
    desk = await seed_desk(api)
    await push_fills(
        server,
        desk,
        fill_frame("f-1", "BTCUSDT", "buy", "2", "50000"),
        fill_frame("f-2", "BTCUSDT", "sell", "1", "50000"),
    )
    before = await api.settled_orders(desk.followers[0].id)
    # A JSON number float would round to 5000: the first order would then be 0.1, not 0.099.
    body = '{"from": "2000-01-01T00:00:00Z", "equity": 4999.99999999999999999, "overrides": {}}'

    # Act
    response = await server.http.post(
        f"/v1/leaders/{desk.leader_id}/replay",
        content=body,
        headers={**ADMIN, "Content-Type": "application/json"},
    )

    # Assert
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in response.text.splitlines()]
    assert [line["type"] for line in lines] == ["replay", "fill", "fill", "summary"]
    assert lines[0]["fill_count"] == 2
    assert lines[0]["settings_source"] == "hypothetical"
    # 2 x 4999.99999999999999999 / 100000 = 0.0999..., rounded down to the 0.001 lot; then
    # to the target 0.0499..., held at 0.049 (conservative rounding): sell 0.05
    assert [(f["fill_id"], f["orders"][0]["qty"]) for f in lines[1:3]] == [
        ("f-1", "0.099"),
        ("f-2", "0.05"),
    ]
    assert lines[3]["orders"] == 2
    assert await api.settled_orders(desk.followers[0].id) == before


async def test_replay_refuses_what_cannot_run_naming_the_field(server: LiveServer) -> None:
    api = Api(server.http)
    desk = await seed_desk(api)
    path = f"/v1/leaders/{desk.leader_id}/replay"

    backwards = await api.call(
        "POST", path, 422, json={"from": "2026-01-02T00:00:00Z", "to": "2026-01-01T00:00:00Z"}
    )
    no_equity = await api.call("POST", path, 422, json={"from": "2026-01-01T00:00:00Z"})
    naive = await api.call("POST", path, 422, json={"from": "2026-01-01T00:00:00"})
    unknown = await api.call(
        "POST",
        "/v1/leaders/00000000-0000-0000-0000-000000000001/replay",
        404,
        json={"from": "2026-01-01T00:00:00Z", "equity": "1"},
    )
    anonymous = await server.http.post(path, json={"from": "2026-01-01T00:00:00Z"})

    assert backwards == {"detail": "to: must be after from"}
    assert no_equity["detail"].startswith("equity: required")
    assert naive["detail"][0]["loc"] == ["body", "from"]
    assert unknown["detail"].startswith("leader:")
    assert anonymous.status_code == 401
