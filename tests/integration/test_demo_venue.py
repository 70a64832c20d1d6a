"""The demo's loopback Binance USD-M venue keeps one account per API key, as Binance does:
an order moves only its own account's position and is pushed only on its own account's
user data stream; keys and signatures are checked."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import aiohttp
import pytest

from app.demo.venue import WS_FAPI_PATH, DemoAccount, DemoVenue, serve
from app.venues.binance_usdm.signing import sign


@pytest.fixture
async def venue() -> AsyncIterator[tuple[DemoVenue, str]]:
    demo = DemoVenue({"BTCUSDT": Decimal("50000")}, Decimal("1000"))
    async with serve(demo) as port:
        yield demo, f"127.0.0.1:{port}"


def signed(account: DemoAccount, **params: str) -> str:
    query = "&".join(f"{k}={v}" for k, v in {**params, "timestamp": "1"}.items())
    return f"{query}&signature={sign(query, account.api_secret)}"


async def order(http: aiohttp.ClientSession, base: str, account: DemoAccount, cid: str) -> Any:
    query = signed(
        account, symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.5", newClientOrderId=cid
    )
    async with http.post(
        f"http://{base}/fapi/v1/order?{query}", headers={"X-MBX-APIKEY": account.api_key}
    ) as response:
        return response.status, await response.json()


async def listen(http: aiohttp.ClientSession, base: str, account: DemoAccount) -> Any:
    async with http.post(
        f"http://{base}/fapi/v1/listenKey", headers={"X-MBX-APIKEY": account.api_key}
    ) as response:
        key = (await response.json())["listenKey"]
    return await http.ws_connect(f"ws://{base}/ws/{key}")


async def positions(http: aiohttp.ClientSession, base: str, account: DemoAccount) -> Any:
    async with http.get(
        f"http://{base}/fapi/v3/account?{signed(account)}",
        headers={"X-MBX-APIKEY": account.api_key},
    ) as response:
        return {p["symbol"]: p["positionAmt"] for p in (await response.json())["positions"]}


async def test_each_key_has_its_own_account(venue: tuple[DemoVenue, str]) -> None:
    demo, base = venue
    a, b = demo.account, demo.add_account()
    async with aiohttp.ClientSession() as http:
        stream_a, stream_b = await listen(http, base, a), await listen(http, base, b)

        assert await order(http, base, a, "a-1") == (200, demo.account.orders["a-1"])

        first = json.loads((await stream_a.receive(timeout=5)).data)
        assert (first["e"], first["o"]["c"]) == ("ORDER_TRADE_UPDATE", "a-1")
        assert await positions(http, base, a) == {"BTCUSDT": "0.5"}
        assert await positions(http, base, b) == {}
        assert b.orders == {}
        with pytest.raises(asyncio.TimeoutError):
            await stream_b.receive(timeout=0.2)
        await stream_a.close()
        await stream_b.close()


async def test_keys_and_signatures_are_checked(venue: tuple[DemoVenue, str]) -> None:
    demo, base = venue
    stranger = DemoAccount(api_key="demo-unknown", api_secret="x", equity=Decimal(0))
    forged = DemoAccount(api_key=demo.api_key, api_secret="not-the-secret", equity=Decimal(0))
    async with aiohttp.ClientSession() as http:
        status, body = await order(http, base, stranger, "s-1")
        assert (status, body["code"]) == (401, -2015)
        status, body = await order(http, base, forged, "f-1")
        assert (status, body["code"]) == (400, -1022)
    assert demo.account.orders == {}


async def test_one_order_socket_carries_several_accounts(venue: tuple[DemoVenue, str]) -> None:
    demo, base = venue
    accounts = [demo.account, demo.add_account()]
    async with aiohttp.ClientSession() as http, http.ws_connect(f"ws://{base}{WS_FAPI_PATH}") as ws:
        for n, account in enumerate(accounts):
            params: dict[str, Any] = {
                "apiKey": account.api_key,
                "newClientOrderId": f"ws-{n}",
                "quantity": "1",
                "side": "SELL",
                "symbol": "BTCUSDT",
                "timestamp": int(time.time() * 1000),
                "type": "MARKET",
            }
            payload = "&".join(f"{k}={params[k]}" for k in sorted(params))
            params["signature"] = sign(payload, account.api_secret)
            await ws.send_str(json.dumps({"id": n, "method": "order.place", "params": params}))
            answer = json.loads((await ws.receive(timeout=5)).data)
            assert (answer["id"], answer["status"]) == (n, 200)
    assert [a.positions for a in accounts] == [{"BTCUSDT": Decimal(-1)}] * 2
    assert [list(a.orders) for a in accounts] == [["ws-0"], ["ws-1"]]
