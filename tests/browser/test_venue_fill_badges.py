"""A venue leader's liquidation shows on the dashboard: the fill's row carries a badge, and
what the venue said of the fill (reduce-only, fee)."""

from __future__ import annotations

from decimal import Decimal

import asyncpg
from playwright.async_api import Page, expect
from redis.asyncio import Redis

from tests.browser.test_dashboard_page import TIMEOUT_MS, pattern_subscribed, sign_in
from tests.integration.venues.test_hyperliquid import scene
from tests.support import ADMIN_TOKEN


async def test_a_liquidation_fill_is_marked_on_the_dashboard(
    redis: Redis, db: asyncpg.Connection, page: Page
) -> None:
    async with scene(redis, db) as s:
        # Arrange: the leader (short 10 SOL when added) opens a BTC long.
        v = s.venue
        opened = v.fill("BTC", "B", "0.5", "60000")
        await v.emit(opened)
        await s.orders(1)
        await sign_in(page, s.live, ADMIN_TOKEN, pattern_subscribed(redis))

        # Act: the long is liquidated, live while the page watches.
        liquidated = v.fill("BTC", "A", "0.5", "59000", liquidated=True)
        await v.emit(liquidated)

        # Assert
        row = page.locator(f'#orders tr.fill-row[data-fill-id="{liquidated["tid"]}"]')
        await expect(row).to_have_count(1, timeout=TIMEOUT_MS)
        await expect(row.locator(".liquidation")).to_have_text("liquidation")
        await expect(row).to_contain_text("reduce-only")
        fee = format(Decimal(liquidated["fee"]).normalize(), "f")
        await expect(row).to_contain_text(f"fee {fee} USDC")
        plain = page.locator(f'#orders tr.fill-row[data-fill-id="{opened["tid"]}"]')
        await expect(plain).to_have_count(1)
        await expect(plain.locator(".liquidation")).to_have_count(0)
        # Before the server stops: the page would report its feed socket's reconnects.
        await page.close()
