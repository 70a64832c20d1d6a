"""A follower's drift on its Binance USD-M account: the live service, a push leader and the
loopback trading venue (tests.integration.venues.test_binance_execution's desk). The follower
trades by hand (the venue's position is changed under the service), or an order is refused;
each drift mode then does what it says.

The follower's equity is the venue's 10,000, a tenth of the leader's: a leader buy of 1 BTC
targets 0.1, and 0.4 BTC too many at 50,000 is twice its equity.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import asyncpg
from websockets.asyncio.client import connect

from app.domain.ids import order_id
from tests.integration.venues import test_binance_execution as binance
from tests.integration.venues.test_binance_execution import Desk
from tests.support import (
    ADMIN_TOKEN,
    eventually,
    feed_subscribed,
    fill_frame,
    push_socket,
    send_frame,
)

desk = binance.desk  # the fixture: the service, a push leader, the Binance account


async def set_drift(desk: Desk, **sizing: Any) -> None:
    await desk.api.call(
        "PATCH",
        f"/v1/followers/{desk.follower_id}/subscriptions/{desk.subscription_id}",
        200,
        json={"sizing": sizing},
    )


async def btc_row(desk: Desk) -> dict[str, Any]:
    rows = await desk.api.call("GET", f"/v1/followers/{desk.follower_id}/positions", 200)
    [row] = [r for r in rows if r["symbol"] == "BTCUSDT"]
    return dict(row)


async def row_where(desk: Desk, what: str, **expected: Any) -> dict[str, Any]:
    """The BTCUSDT positions row, once it shows ``expected``."""

    async def shown() -> bool:
        row = await btc_row(desk)
        return all(row.get(k) == v for k, v in expected.items())

    await eventually(shown, what, within_s=30)
    return await btc_row(desk)


async def opened(desk: Desk) -> None:
    """The leader buys 1 BTC; the follower's 0.1 fills at the venue."""
    await desk.order_in(await desk.fill("buy", "1"), "filled")
    await row_where(desk, "the venue's 0.1", actual="0.1", actual_source="venue")


async def resync_orders(desk: Desk) -> list[dict[str, Any]]:
    orders = await desk.api.call("GET", f"/v1/followers/{desk.follower_id}/orders", 200)
    return [o for o in orders if o["leader_fill"]["reason"] == "follower_resync"]


async def resynced(desk: Desk) -> dict[str, Any]:
    """The follower_resync order, once it filled."""

    async def filled() -> bool:
        return any(o["status"] == "filled" for o in await resync_orders(desk))

    await eventually(filled, "a follower_resync order filled", within_s=30)
    [resync] = await resync_orders(desk)
    return resync


async def test_a_hand_trade_is_flagged_under_alert_and_the_next_fill_starts_from_it(
    desk: Desk,
) -> None:
    # Arrange
    await opened(desk)
    url = f"{desk.server.ws_url}/v1/followers/{desk.follower_id}/orders/ws?token={ADMIN_TOKEN}"

    async with connect(url) as feed:
        await feed_subscribed(desk.redis, desk.follower_id)

        # Act: the follower buys 0.4 BTC by hand
        desk.venue.positions["BTCUSDT"] = Decimal("0.5")
        row = await row_where(desk, "the drift flagged", drift_flagged=True)
        message = json.loads(await feed.recv())

    # Assert: flagged in the view, on the feed, in the metric; sizing now tracks the venue's
    assert (row["actual"], row["position"], row["symbol_target"]) == ("0.5", "0.5", "0.1")
    assert (row["drift_fraction"], row["adopted"]) == ("2", "0")
    assert (message["type"], message["symbol"], message["flagged"]) == ("drift", "BTCUSDT", True)
    assert (message["mode"], message["drift"]) == ("alert", "0.4")
    metrics = (await desk.server.http.get("/metrics")).text
    assert f'copytrade_follower_drift{{follower="{desk.follower_id}",symbol="BTCUSDT"}} 2.0' in (
        metrics
    )
    assert await resync_orders(desk) == []

    # Act: the leader halves its position (target 0.05): the order starts from the venue's 0.5
    halved = await desk.order_in(await desk.fill("sell", "0.5"), "filled")

    # Assert
    assert (halved["side"], halved["qty"]) == ("sell", "0.45")
    await row_where(desk, "the drift cleared", actual="0.05", drift_flagged=False)


async def test_a_hand_trade_is_sold_back_once_per_interval_under_resync(
    desk: Desk, db: asyncpg.Connection
) -> None:
    # Arrange
    await set_drift(desk, drift="resync", drift_tolerance="0", drift_min_interval_s=3600)
    await opened(desk)

    # Act: the follower buys 0.4 BTC by hand
    desk.venue.positions["BTCUSDT"] = Decimal("0.5")
    resync = await resynced(desk)

    # Assert: one sync order, reduce_only, recorded as follower_resync
    await row_where(desk, "the drift cleared", actual="0.1", drift_flagged=False)
    assert (resync["side"], resync["qty"], resync["reduce_only"]) == ("sell", "0.4", True)
    assert resync["leader_fill"]["kind"] == "sync"
    assert resync["leader_fill_id"].startswith("follower_resync:")
    assert desk.venue.placements[resync["order_id"]] == 1

    # Act: another hand trade within drift_min_interval_s
    desk.venue.positions["BTCUSDT"] = Decimal("0.3")
    row = await row_where(desk, "the new drift flagged", actual="0.3", drift_flagged=True)

    # Assert: flagged, not resynced again
    assert row["position"] == "0.3"
    assert len(await resync_orders(desk)) == 1
    events = await db.fetchval(
        "SELECT count(*) FROM leader_fill WHERE fill_id LIKE 'follower_resync:%'"
    )
    assert events == 1


async def test_a_hand_trade_is_kept_under_adopt(desk: Desk) -> None:
    # Arrange
    await set_drift(desk, drift="adopt", drift_tolerance="0")
    await opened(desk)

    # Act: the follower buys 0.4 BTC by hand
    desk.venue.positions["BTCUSDT"] = Decimal("0.5")
    row = await row_where(desk, "the position adopted", adopted="0.4")

    # Assert: its own, not flagged, sizing still tracks the copy
    assert (row["actual"], row["position"], row["drift_flagged"]) == ("0.5", "0.1", False)

    # Act: the leader halves its position (target 0.05)
    halved = await desk.order_in(await desk.fill("sell", "0.5"), "filled")

    # Assert: the copy is halved, the hand-bought 0.4 is left alone
    assert (halved["side"], halved["qty"]) == ("sell", "0.05")
    row = await row_where(desk, "the venue's 0.45", actual="0.45")
    assert (row["position"], row["adopted"], row["drift_flagged"]) == ("0.05", "0.4", False)
    assert await resync_orders(desk) == []


async def test_a_rejected_order_is_left_as_drift_then_resynced(desk: Desk) -> None:
    # Arrange: the venue refuses the order (its notional at a price of 500 is below 100)
    await set_drift(desk, drift_tolerance="0")
    desk.venue.prices["BTCUSDT"] = Decimal("500")
    await desk.order_in(await desk.fill("buy", "1"), "rejected")

    # Act (alert): the drift is shown
    row = await row_where(desk, "the drift flagged", drift_flagged=True)

    # Assert
    assert (row["actual"], row["position"], row["symbol_target"]) == ("0", "0", "0.1")
    assert await resync_orders(desk) == []

    # Act: resync, with the venue's price back
    desk.venue.prices["BTCUSDT"] = Decimal("50000")
    await set_drift(desk, drift="resync", drift_tolerance="0")

    # Assert: the missing 0.1 bought, the drift gone
    resync = await resynced(desk)
    assert (resync["side"], resync["qty"], resync["reduce_only"]) == ("buy", "0.1", False)
    await row_where(desk, "the drift cleared", actual="0.1", drift_flagged=False)


class LaggingPositions(dict[str, Decimal]):
    """The fake venue's positions, whose account endpoint (which lists ``items()``) shows
    ``shown`` while it is set: a venue that reports an old position."""

    shown: dict[str, Decimal] | None = None

    def items(self) -> Any:
        return (dict(self) if self.shown is None else self.shown).items()


async def test_a_resync_that_would_flip_the_follower_short_is_refused(desk: Desk) -> None:
    # Arrange: resync; the follower holds 0.1 of the leader's long; then the venue's account
    # endpoint goes on showing that 0.1 whatever happens
    await set_drift(desk, drift="resync", drift_tolerance="0", drift_min_interval_s=3600)
    await opened(desk)
    lagging = LaggingPositions(desk.venue.positions)
    lagging.shown = {"BTCUSDT": Decimal("0.1")}
    desk.venue.positions = lagging

    # Act: the leader closes; the follower's close fills (flat), the venue still shows 0.1
    closed = await desk.order_in(await desk.fill("sell", "1"), "filled")

    # Assert: the resync toward the flat leader is a reduce_only close, which the venue refuses
    # (there is nothing to reduce): the follower is never sold short
    assert closed["reduce_only"] is True

    async def refused() -> bool:
        return any(o["status"] == "rejected" for o in await resync_orders(desk))

    await eventually(refused, "the resync refused", within_s=30)
    [resync] = await resync_orders(desk)
    assert (resync["side"], resync["qty"], resync["reduce_only"]) == ("sell", "0.1", True)
    assert dict.get(lagging, "BTCUSDT") == 0


async def test_a_per_fill_subscription_is_corrected_but_never_resynced(
    desk: Desk, db: asyncpg.Connection
) -> None:
    # Arrange: per_fill holds no target, only what its fills made
    await set_drift(desk, mode="per_fill", drift="resync", drift_tolerance="0")
    await opened(desk)

    # Act: the follower buys 0.4 BTC by hand
    desk.venue.positions["BTCUSDT"] = Decimal("0.5")
    row = await row_where(desk, "the tracked position corrected", position="0.5")

    # Assert: two checks later still no resync and nothing flagged
    query = "SELECT checked_at FROM follower_drift WHERE symbol = 'BTCUSDT'"
    seen = [await db.fetchval(query)]

    async def checked_again() -> bool:
        at = await db.fetchval(query)
        if at != seen[-1]:
            seen.append(at)
        return len(seen) >= 3

    await eventually(checked_again, "two more drift checks", within_s=30)
    assert (row["actual"], row["drift_flagged"], row["drift_fraction"]) == ("0.5", False, None)
    assert await resync_orders(desk) == []


async def row_where_sub(desk: Desk, sub_id: str, what: str, **expected: Any) -> None:
    """Wait until the subscription's BTCUSDT row shows ``expected``."""

    async def shown() -> bool:
        body = await desk.api.call("GET", f"/v1/followers/{desk.follower_id}/positions", 200)
        return any(
            r["subscription_id"] == sub_id
            and r["symbol"] == "BTCUSDT"
            and all(r.get(k) == v for k, v in expected.items())
            for r in body
        )

    await eventually(shown, what, within_s=30)


async def positions_once(desk: Desk, what: str, **expected: str) -> dict[str, dict[str, Any]]:
    """The BTCUSDT rows by subscription id, once every one shows ``expected``."""

    async def rows() -> dict[str, dict[str, Any]]:
        body = await desk.api.call("GET", f"/v1/followers/{desk.follower_id}/positions", 200)
        return {r["subscription_id"]: r for r in body if r["symbol"] == "BTCUSDT"}

    async def shown() -> bool:
        found = await rows()
        return len(found) == 2 and all(
            row.get(k) == v for row in found.values() for k, v in expected.items()
        )

    await eventually(shown, what, within_s=30)
    return await rows()


async def second_subscription(desk: Desk) -> str:
    """A second leader, followed too; each leader's buy of 1 BTC gives the follower 0.1, so
    the venue holds 0.2 over two subscriptions (the desk's is the older one). Its id."""
    await opened(desk)
    other = await desk.api.leader("other")
    await desk.api.leader_equity(other["id"], "100000")
    sub = await desk.api.subscribe(desk.follower_id, other["id"])
    async with push_socket(desk.server.ws_url, other["id"], other["push_token"]) as ws:
        reply = await send_frame(ws, fill_frame("o-1", "BTCUSDT", "buy", "1", "50000"))
        assert reply["type"] == "ack", reply
        await desk.order_in(order_id(other["id"], "o-1", sub["id"]), "filled")
    await positions_once(desk, "the venue's 0.2", actual="0.2", actual_source="venue")
    return str(sub["id"])


async def test_a_hand_close_under_two_subscriptions_never_tracks_one_against_its_leader(
    desk: Desk,
) -> None:
    # Arrange: two subscriptions long 0.1 each
    await second_subscription(desk)

    # Act: the follower closes all of it by hand; the drift is taken in (alert)
    desk.venue.positions["BTCUSDT"] = Decimal("0")
    rows = await positions_once(desk, "the tracked positions corrected", actual="0", position="0")
    # ... then the desk's leader sells half of its long
    halved = await desk.order_in(await desk.fill("sell", "0.5"), "filled", "skipped")

    # Assert: neither subscription is tracked short against its long leader (the older one
    # took the whole -0.2 and sat at -0.1), so the sell is not answered with a buy.
    assert {row["position"] for row in rows.values()} == {"0"}
    assert (halved["status"], halved["skip_reason"]) == ("skipped", "no_position_to_reduce")


async def test_a_paused_subscriptions_position_is_not_folded_into_the_live_one(
    desk: Desk,
) -> None:
    # Arrange: two subscriptions long 0.1 each; the newer one is paused (it keeps its 0.1)
    other = await second_subscription(desk)
    await desk.api.call(
        "PATCH",
        f"/v1/followers/{desk.follower_id}/subscriptions/{other}",
        200,
        json={"status": "paused"},
    )

    # Act: the follower buys 0.1 by hand
    desk.venue.positions["BTCUSDT"] = Decimal("0.3")
    await row_where_sub(desk, desk.subscription_id, "the drift flagged", drift_flagged=True)
    rows = await positions_once(desk, "the hand trade seen", actual="0.3")

    # Assert: only the hand trade moved the live subscription; the paused one's 0.1 is its
    # own (it was counted as the live one's too, which then held 0.3 against a 0.1 target)
    assert rows[desk.subscription_id]["position"] == "0.2"
    assert rows[other]["position"] == "0.1"
    assert rows[desk.subscription_id]["drift_fraction"] == "0.5"  # 0.1 x 50,000 / 10,000
