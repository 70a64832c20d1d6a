"""The dashboard in a real browser: sign in, a leader fill arrives, its orders appear live, the
exposure chart and the latency histogram draw; a follower sees its own orders only; the on-call
views (health strip, positions, filtered and paged orders) work on a desktop and on a phone."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from playwright.async_api import Browser, Page, expect
from redis.asyncio import Redis

from tests.integration.desk import Desk, Follower, push_fills, seed_desk
from tests.support import ADMIN_TOKEN, Api, LiveServer, eventually, fill_frame

TIMEOUT_MS = 15_000
Check = Callable[[], Awaitable[bool]]


async def two_followers(server: LiveServer) -> Desk:
    """A leader (equity 100000), followers A (multiplier 1) and B (2), equity 10000 each."""
    api = Api(server.http)
    desk = await seed_desk(api, followers=1)
    b = await api.follower("follower-b")
    await api.follower_equity(b["id"], "10000")
    await api.subscribe(b["id"], desk.leader_id, multiplier="2")
    return Desk(desk.leader_id, desk.push_token, [*desk.followers, Follower(b["id"], b["api_key"])])


async def sign_in(page: Page, server: LiveServer, token: str, listening: Check) -> None:
    """Sign in and wait until the page's feed socket is subscribed on the server: the socket
    opens before the server has subscribed it to Redis, and a fill published in between would
    reach the page only through its history."""
    await page.goto(server.base_url + "/")
    await page.fill("#login-token", token)
    await page.click("#login-submit")
    await expect(page.locator("#feed-state")).to_have_text("feed live", timeout=TIMEOUT_MS)
    await eventually(listening, "the page's feed subscribed in Redis", TIMEOUT_MS / 1000)


def pattern_subscribed(redis: Redis) -> Check:
    """The admin feed's subscription to every follower's channel."""

    async def check() -> bool:
        return int(await redis.pubsub_numpat()) >= 1

    return check


def channel_subscribed(redis: Redis, follower_id: str) -> Check:
    async def check() -> bool:
        channel = f"copytrade:feed:{{{follower_id}}}"
        return int((await redis.pubsub_numsub(channel))[0][1]) >= 1

    return check


async def latency_count(page: Page) -> int:
    """Observations the latency panel reports ("12 observations · ..."; none: 0)."""
    text = await page.locator("#latency .summary").inner_text()
    found = re.match(r"(\d+) observations?", text)
    return int(found.group(1)) if found else 0


async def _more(page: Page, than: int) -> bool:
    return await latency_count(page) > than


def urls_seen(page: Page) -> list[str]:
    """Every URL the page requests or opens a websocket to, from now on."""
    urls: list[str] = []
    page.on("request", lambda request: urls.append(request.url))
    page.on("websocket", lambda ws: urls.append(ws.url))
    return urls


async def test_admin_watches_a_fill_become_orders_live(
    server: LiveServer, redis: Redis, page: Page, output_dir: Path
) -> None:
    # Arrange
    desk = await two_followers(server)
    a, b = desk.followers
    urls = urls_seen(page)
    await sign_in(page, server, ADMIN_TOKEN, pattern_subscribed(redis))
    await expect(page.locator("#leaders tbody tr")).to_have_count(1, timeout=TIMEOUT_MS)
    await expect(page.locator("#followers tbody tr")).to_have_count(2)
    await expect(page.locator("#orders tr.order-row")).to_have_count(0)
    await expect(page.locator("#latency .summary")).not_to_be_empty(timeout=TIMEOUT_MS)
    # The histograms are this process's: earlier tests' fills may be counted already.
    observed_before = await latency_count(page)

    # Act: the leader buys 2 at 50000 over its push socket.
    await push_fills(server, desk, fill_frame("f-1", "BTCUSDT", "buy", "2", "50000"))

    # Assert: the fill and both followers' orders appear, without a reload.
    orders = page.locator("#orders tr.order-row")
    await expect(orders).to_have_count(2, timeout=TIMEOUT_MS)
    fill_row = page.locator('#orders tr.fill-row[data-fill-id="f-1"]')
    await expect(fill_row).to_have_count(1)
    # The leader's trade, read once from a live (lean) order's explanation link.
    await expect(fill_row.locator(".leader-trade")).to_have_text("buy 2 BTCUSDT")
    await expect(fill_row).to_contain_text("@ 50,000", timeout=TIMEOUT_MS)
    a_row = page.locator(f'#orders tr.order-row[data-follower-id="{a.id}"]')
    b_row = page.locator(f'#orders tr.order-row[data-follower-id="{b.id}"]')
    await expect(a_row.locator("td").nth(4)).to_have_text("0.2")
    await expect(b_row.locator("td").nth(4)).to_have_text("0.4")
    await expect(a_row.locator(".status")).to_have_text("dispatched")
    await expect(b_row.locator("td").nth(1)).to_have_text("follower-b")
    # Exposure: a leader bar and a follower bar per follower, equal in sync (+100% / +200%).
    await expect(page.locator("#exposure rect.bar-follower")).to_have_count(2, timeout=TIMEOUT_MS)
    await expect(page.locator("#exposure rect.bar-leader")).to_have_count(2)
    exposure_text = await page.locator("#exposure svg").text_content()
    assert exposure_text is not None
    assert exposure_text.count("+100.00%") == 2
    assert exposure_text.count("+200.00%") == 2
    # Latency: the fill was observed, so some bar has a height.
    await eventually(
        lambda: _more(page, observed_before), "the fill in the latency histogram", TIMEOUT_MS / 1000
    )
    heights = await page.locator("#latency rect.bar-hist").evaluate_all(
        "bars => bars.map(bar => Number(bar.getAttribute('height')))"
    )
    assert len(heights) >= 10
    assert max(heights) > 0
    await page.screenshot(path=str(output_dir / "admin.png"), full_page=True)
    # The credential never went into a URL (they end in access logs).
    assert urls
    assert all(ADMIN_TOKEN not in url for url in urls), urls


async def test_follower_sees_only_its_own_orders(
    server: LiveServer, redis: Redis, page: Page, output_dir: Path
) -> None:
    # Arrange
    desk = await two_followers(server)
    a, b = desk.followers
    urls = urls_seen(page)
    await sign_in(page, server, a.api_key, channel_subscribed(redis, a.id))
    await expect(page.locator("#followers tbody tr")).to_have_count(1, timeout=TIMEOUT_MS)

    # Act: two fills, each giving both followers an order.
    await push_fills(server, desk, fill_frame("f-1", "BTCUSDT", "buy", "2", "50000"))
    await expect(page.locator("#orders tr.order-row")).to_have_count(1, timeout=TIMEOUT_MS)
    await push_fills(server, desk, fill_frame("f-2", "BTCUSDT", "sell", "1", "51000"))
    await expect(page.locator("#orders tr.order-row")).to_have_count(2, timeout=TIMEOUT_MS)
    await Api(server.http).settled_orders(b.id)

    # Assert
    followers = await page.locator("#orders tr.order-row").evaluate_all(
        "rows => rows.map(row => row.dataset.followerId)"
    )
    assert followers == [a.id, a.id]
    await expect(page.locator("#leaders")).to_be_hidden()
    await expect(page.locator("#who")).to_have_text("follower: follower-0")
    await expect(page.locator("#exposure rect.bar-follower")).to_have_count(1, timeout=TIMEOUT_MS)
    body = await page.locator("body").inner_text()
    assert "follower-b" not in body
    assert b.id[:8] not in body
    await page.screenshot(path=str(output_dir / "follower.png"), full_page=True)
    assert all(a.api_key not in url for url in urls), urls


async def test_an_unknown_key_is_refused_at_sign_in(
    server: LiveServer, page: Page, page_errors: list[str]
) -> None:
    # Arrange
    await page.goto(server.base_url + "/")

    # Act
    await page.fill("#login-token", "ctf_not-a-real-key")
    await page.click("#login-submit")

    # Assert
    await expect(page.locator("#login-error")).to_have_text("Unknown token or key.")
    await expect(page.locator("#board")).to_be_hidden()
    assert [error for error in page_errors if "401" in error] == page_errors != []
    page_errors.clear()  # the browser's own log line for the refused request


async def test_on_call_views_positions_health_filters_paging_and_a_phone(
    server: LiveServer, redis: Redis, browser: Browser, page_errors: list[str], output_dir: Path
) -> None:
    # Arrange: 52 fills, 104 orders (a page is 100): the leader ends long 2.001; the last fill
    # is too small to copy (skipped for both), so A tracks 0.2 against a target of 0.2001 (B:
    # 0.4 and 0.4002); A's executor fills 0.15 of its first order.
    desk = await two_followers(server)
    a, b = desk.followers
    frames = [fill_frame("f-0", "BTCUSDT", "buy", "2", "50000")]
    frames += [
        fill_frame(f"f-{n}", "BTCUSDT", "sell" if n % 2 else "buy", "1", "50000")
        for n in range(1, 51)
    ]
    frames.append(fill_frame("tiny", "BTCUSDT", "buy", "0.001", "50000"))
    await push_fills(server, desk, *frames)
    api = Api(server.http)
    first = (await api.call("GET", f"/v1/followers/{a.id}/orders?limit=500", 200))[-1]
    await api.call(
        "POST",
        f"/v1/followers/{a.id}/orders/{first['order_id']}/reports",
        200,
        json={"status": "partially_filled", "filled_qty": "0.15", "avg_price": "50000"},
    )
    context = await browser.new_context(
        viewport={"width": 1360, "height": 1100}, timezone_id="Asia/Tokyo"
    )
    page = await context.new_page()
    page.on("pageerror", lambda error: page_errors.append(str(error)))
    page.on("console", lambda m: page_errors.append(m.text) if m.type == "error" else None)
    try:
        # Act
        await sign_in(page, server, ADMIN_TOKEN, pattern_subscribed(redis))

        # Assert: the health strip and the positions, first on the page.
        health = page.locator("#health .health-items")
        await expect(health).to_contain_text("ready", timeout=TIMEOUT_MS)
        await expect(health).to_contain_text("outbox 0")
        await expect(health).to_contain_text(re.compile(r"instances [1-9]"))
        a_pos = page.locator(f'#positions tr[data-follower-id="{a.id}"]')
        b_pos = page.locator(f'#positions tr[data-follower-id="{b.id}"]')
        await expect(a_pos.locator(".tracked")).to_have_text("0.2", timeout=TIMEOUT_MS)
        await expect(a_pos.locator(".target")).to_have_text("0.2001")
        await expect(a_pos.locator(".actual")).to_have_text("0.15")
        await expect(a_pos.locator(".drift")).to_have_text("-0.0501")
        await expect(b_pos.locator(".target")).to_have_text("0.4002")
        await expect(b_pos.locator(".drift")).to_have_text("—")
        first_card = await page.locator("#board > section.card").first.get_attribute("id")
        assert first_card == "positions"

        # The newest page of orders, then the older ones through the API.
        orders = page.locator("#orders tr.order-row")
        await expect(orders).to_have_count(100, timeout=TIMEOUT_MS)
        await page.click("#orders .older")
        await expect(orders).to_have_count(104, timeout=TIMEOUT_MS)
        await expect(page.locator("#orders .older")).to_be_hidden()

        # Dates carry the viewer's zone; the fill header the leader's own trade.
        when = await orders.first.locator("td.when").inner_text()
        iso = await orders.first.locator("td.when").get_attribute("title")
        assert iso is not None
        tokyo = datetime.fromisoformat(iso).astimezone(ZoneInfo("Asia/Tokyo"))
        assert when == tokyo.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " GMT+9"
        tiny_header = page.locator('#orders tr.fill-row[data-fill-id="tiny"]')
        await expect(tiny_header.locator(".leader-trade")).to_have_text("buy 0.001 BTCUSDT")
        f0_header = page.locator('#orders tr.fill-row[data-fill-id="f-0"]')
        await expect(f0_header.locator(".leader-trade")).to_have_text("buy 2 BTCUSDT")
        await expect(
            page.locator('#orders tr.fill-row[data-fill-id="f-1"] .leader-trade')
        ).to_have_text("sell 1 BTCUSDT")

        # Filter: A's skipped orders only, shown with dashes instead of side and qty.
        await page.select_option("#orders-filter select[name=follower_id]", a.id)
        await page.select_option("#orders-filter select[name=status]", "skipped")
        await page.fill("#orders-filter input[name=symbol]", "BTCUSDT")
        await page.click("#orders-filter button[type=submit]")
        await expect(orders).to_have_count(1, timeout=TIMEOUT_MS)
        cells = await orders.first.locator("td").all_inner_texts()
        assert cells[1:8] == ["follower-0", "BTCUSDT", "—", "—", "—", "skipped", "rounds_to_zero"]

        # The exposure chart: a labelled axis, symmetric around 0, ending on a round value
        # above the largest exposure (B: 0.4002 x 50000 / 10000 = +200.1%).
        axis = page.locator("#exposure svg text.tick")
        ticks = await axis.all_text_contents()
        assert ticks == ["-500%", "-250%", "0%", "+250%", "+500%"]
        await expect(page.locator("#exposure svg text.axis-label")).to_contain_text(
            "exposure ÷ equity"
        )
        await page.screenshot(path=str(output_dir / "on-call.png"), full_page=True)

        # A phone: everything fits the width; wide tables scroll inside their cards.
        await page.set_viewport_size({"width": 390, "height": 844})
        await page.select_option("#orders-filter select[name=status]", "")
        await page.click("#orders-filter button[type=submit]")
        await expect(orders).to_have_count(52, timeout=TIMEOUT_MS)  # all of A's
        overflow = await page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0
        # The exposure chart is drawn again at the card's new width, labels above the bars.
        chart_width = page.locator("#exposure .chart")
        await expect(page.locator("#exposure svg")).to_have_attribute(
            "viewBox", re.compile(rf"^0 0 {int(await chart_width.evaluate('c => c.clientWidth'))} ")
        )
        await page.evaluate("window.scrollTo(0, 0)")
        await page.screenshot(path=str(output_dir / "phone.png"), full_page=False)
        # Positions fit the phone's width: the drift column is in view without scrolling.
        await expect(page.locator('#positions th:has-text("Drift")')).to_be_in_viewport()
        await page.screenshot(path=str(output_dir / "phone-full.png"), full_page=True)
        box = await page.locator("#orders").bounding_box()
        assert box is not None
        await page.screenshot(
            path=str(output_dir / "phone-orders.png"),
            full_page=True,
            clip={"x": 0, "y": box["y"], "width": 390, "height": 844},
        )
    finally:
        await context.close()
    assert page_errors == []
