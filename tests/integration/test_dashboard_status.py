"""The dashboard's on-call data: positions against targets with the drift, the health strip,
and the orders filtered by follower, symbol and status, paged through the API."""

from __future__ import annotations

from tests.integration.desk import Desk, Follower, push_fills, seed_desk
from tests.support import Api, LiveServer, fill_frame


async def two_followers(api: Api) -> Desk:
    desk = await seed_desk(api, followers=1)
    b = await api.follower("follower-b")
    await api.follower_equity(b["id"], "10000")
    await api.subscribe(b["id"], desk.leader_id, multiplier="2")
    return Desk(desk.leader_id, desk.push_token, [*desk.followers, Follower(b["id"], b["api_key"])])


async def test_positions_show_tracked_target_actual_and_drift(server: LiveServer) -> None:
    # Arrange: the leader buys 2 (follower A: 0.2, B: 0.4); A's executor fills only 0.15
    api = Api(server.http)
    desk = await two_followers(api)
    a, b = desk.followers
    await push_fills(server, desk, fill_frame("f-1", "BTCUSDT", "buy", "2", "50000"))
    (order,) = await api.settled_orders(a.id)
    await api.call(
        "POST",
        f"/v1/followers/{a.id}/orders/{order['order_id']}/reports",
        200,
        json={"status": "partially_filled", "filled_qty": "0.15", "avg_price": "50000"},
    )

    # Act
    admin_view = await api.call("GET", "/v1/dashboard/positions", 200)
    own_view = await api.call("GET", "/v1/dashboard/positions", 200, token=b.api_key)

    # Assert
    rows = {row["follower_id"]: row for row in admin_view}
    assert set(rows) == {a.id, b.id}
    assert (rows[a.id]["symbol"], rows[a.id]["position"], rows[a.id]["target"]) == (
        "BTCUSDT",
        "0.2",
        "0.2",
    )
    assert (rows[a.id]["actual"], rows[a.id]["drift"]) == ("0.15", "-0.05")
    assert (rows[b.id]["position"], rows[b.id]["target"]) == ("0.4", "0.4")
    assert (rows[b.id]["actual"], rows[b.id]["drift"]) == (None, None)
    assert [row["follower_id"] for row in own_view] == [b.id]


async def test_health_reports_readiness_to_everyone_and_details_to_the_admin(
    server: LiveServer,
) -> None:
    api = Api(server.http)
    desk = await seed_desk(api)

    admin_view = await api.call("GET", "/v1/dashboard/health", 200)
    follower_view = await api.call(
        "GET", "/v1/dashboard/health", 200, token=desk.followers[0].api_key
    )
    anonymous = await server.http.get("/v1/dashboard/health")

    assert admin_view["status"] == "ready"
    assert admin_view["ready"] is True
    assert admin_view["draining"] is False
    assert (admin_view["postgres"], admin_view["redis"]) == ("ok", "ok")
    assert admin_view["outbox_backlog"] == 0
    assert admin_view["instances"] >= 1
    assert follower_view["ready"] is True
    assert follower_view["instances"] is None
    assert follower_view["listeners"] == []
    assert anonymous.status_code == 401


async def test_orders_filter_by_follower_symbol_and_status_and_page_on(
    server: LiveServer,
) -> None:
    # Arrange: 6 fills; the 0.001 ones round to nothing for A (0.0001) but not for B (0.0002:
    # also nothing), so they are skipped for both.
    api = Api(server.http)
    desk = await two_followers(api)
    a, b = desk.followers
    await api.instrument("ETHUSDT", qty_step="0.01", min_qty="0.01", min_notional="5")
    frames = [
        fill_frame("f-1", "BTCUSDT", "buy", "2", "50000"),
        fill_frame("f-2", "ETHUSDT", "buy", "10", "3000"),
        fill_frame("f-3", "BTCUSDT", "buy", "0.001", "50000"),
        fill_frame("f-4", "BTCUSDT", "sell", "1", "50000"),
        fill_frame("f-5", "ETHUSDT", "sell", "5", "3000"),
        fill_frame("f-6", "BTCUSDT", "buy", "1", "50000"),
    ]
    await push_fills(server, desk, *frames)
    await api.settled_orders(a.id)
    await api.settled_orders(b.id)
    path = "/v1/dashboard/orders"

    # Act
    a_btc = await api.call("GET", path, 200, params={"follower_id": a.id, "symbol": "BTCUSDT"})
    skipped = await api.call("GET", path, 200, params={"status": "skipped"})
    first = await api.call("GET", path, 200, params={"follower_id": b.id, "orders": 4})
    rest = await api.call(
        "GET",
        path,
        200,
        params={
            "follower_id": b.id,
            "orders": 4,
            "before_at": first[-1]["created_at"],
            "before_id": first[-1]["order_id"],
        },
    )
    other = await api.call("GET", path, 404, token=a.api_key, params={"follower_id": b.id})
    half_cursor = await api.call("GET", path, 422, params={"before_id": "x"})

    # Assert
    assert [o["leader_fill_id"] for o in a_btc] == ["f-6", "f-4", "f-3", "f-1"]
    assert {o["follower_id"] for o in a_btc} == {a.id}
    assert sorted((o["leader_fill_id"], o["follower_id"]) for o in skipped) == sorted(
        [("f-3", a.id), ("f-3", b.id)]
    )
    assert [o["leader_fill_id"] for o in first] == ["f-6", "f-5", "f-4", "f-3"]
    assert [o["leader_fill_id"] for o in rest] == ["f-2", "f-1"]
    assert other == {"detail": "follower not found"}
    assert "before_at" in half_cursor["detail"]
