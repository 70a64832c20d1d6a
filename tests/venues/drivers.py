"""One way to drive each fake venue, so the same leader scenarios run against all four.

A driver speaks in base units and plain coins ("BTC", "buy", "0.5", "60000") and does what
the scenario needs on its venue: hold a position (no fill), trade (live and in the history),
miss a trade (the venue's position moves, but neither the stream nor the history shows it),
put an unreadable row among good ones (live or in the history), and send a message of
several MB (what each venue really sends large: Hyperliquid's snapshot of recent fills on
subscribing, Binance's account update, a batch of Bybit executions or OKX order updates
mostly of other kinds) followed by a fill.
"""

from __future__ import annotations

import itertools
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, ClassVar, Protocol

from tests.venues.fake_binance_usdm import FakeBinanceUsdm
from tests.venues.fake_bybit import FakeBybit, execution
from tests.venues.fake_hyperliquid import ADDRESS, FakeHyperliquid
from tests.venues.fake_okx import API_KEY, API_SECRET, PASSPHRASE, FakeOkx, Trade, instrument
from tests.venues.harness import FakeVenue, Running

# Bytes a "big" message reaches: well past COPYTRADE_MAX_FRAME_BYTES (64 KiB).
BIG_BYTES = 3 * 1024 * 1024
# Fills in Hyperliquid's big snapshot (about 3 MB of them).
SNAPSHOT_FILLS = 8000


class Driver(Protocol):
    @property
    def kind(self) -> str: ...

    @property
    def venue(self) -> FakeVenue: ...

    def symbol(self, coin: str) -> str: ...

    def feed(self, running: Running) -> dict[str, Any]: ...

    def hold(self, coin: str, qty: str, mark: str) -> None: ...

    async def trade(self, coin: str, side: str, qty: str, price: str) -> str: ...

    def missed(self, coin: str, side: str, qty: str, price: str) -> None: ...

    async def live_with_bad_row(self, coin: str, price: str) -> list[str]: ...

    def history_with_bad_row(self, coin: str, price: str) -> list[str]: ...

    async def big_message(self, coin: str, price: str) -> list[str]: ...


def _signed(side: str, qty: str) -> Decimal:
    return Decimal(qty) if side == "buy" else -Decimal(qty)


@dataclass
class HyperliquidDriver:
    kind: ClassVar[str] = "hyperliquid"
    venue: FakeHyperliquid = field(default_factory=FakeHyperliquid)

    def symbol(self, coin: str) -> str:
        return coin

    def feed(self, running: Running) -> dict[str, Any]:
        return {
            "kind": "hyperliquid",
            "address": ADDRESS,
            "rest_url": running.rest_url,
            "ws_url": running.ws_base + "/ws",
        }

    def hold(self, coin: str, qty: str, mark: str) -> None:
        self.venue.positions[coin] = Decimal(qty)
        self.venue.marks[coin] = mark

    def _fill(self, coin: str, side: str, qty: str, price: str) -> dict[str, Any]:
        return self.venue.fill(coin, "B" if side == "buy" else "A", qty, price)

    async def trade(self, coin: str, side: str, qty: str, price: str) -> str:
        fill = self._fill(coin, side, qty, price)
        await self.venue.emit(fill)
        return str(fill["tid"])

    def missed(self, coin: str, side: str, qty: str, price: str) -> None:
        held = self.venue.positions.get(coin, Decimal(0))
        self.venue.positions[coin] = held + _signed(side, qty)

    def _three(self, coin: str, price: str) -> list[dict[str, Any]]:
        good_1 = self._fill(coin, "buy", "0.1", price)
        bad = {**self._fill(coin, "buy", "0.1", price), "px": "not-a-price"}
        good_2 = self._fill(coin, "buy", "0.2", price)
        # The unreadable fill moved no position we can know of: undo it on the venue too.
        self.missed(coin, "sell", "0.1", price)
        good_2["startPosition"] = str(Decimal(good_2["startPosition"]) - Decimal("0.1"))
        return [good_1, bad, good_2]

    async def live_with_bad_row(self, coin: str, price: str) -> list[str]:
        rows = self._three(coin, price)
        self.venue.add(rows[0], rows[2])
        await self.venue.push(self.venue.message(rows))
        return [str(rows[0]["tid"]), str(rows[2]["tid"])]

    def history_with_bad_row(self, coin: str, price: str) -> list[str]:
        rows = self._three(coin, price)
        self.venue.add(*rows)
        return [str(rows[0]["tid"]), str(rows[2]["tid"])]

    async def big_message(self, coin: str, price: str) -> list[str]:
        # Old fills (before the leader was added, netting to nothing): on the next
        # subscription they come back as one isSnapshot message of several MB.
        start = int(time.time() * 1000) - 86_400_000
        old = [
            self.venue.fill(coin, "B" if n % 2 == 0 else "A", "0.001", price, at_ms=start + n)
            for n in range(SNAPSHOT_FILLS)
        ]
        self.venue.add(*old)
        self.venue.snapshot_limit = SNAPSHOT_FILLS
        assert len(json.dumps(self.venue.message(old, snapshot=True))) > BIG_BYTES * 0.8
        await self.venue.drop()
        await self.venue.wait_subscribed()
        return [await self.trade(coin, "buy", "0.1", price)]


@dataclass
class BinanceDriver:
    kind: ClassVar[str] = "binance-usdm"
    venue: FakeBinanceUsdm = field(default_factory=FakeBinanceUsdm)

    def symbol(self, coin: str) -> str:
        return f"{coin}USDT"

    def feed(self, running: Running) -> dict[str, Any]:
        return {
            "kind": "binance-usdm",
            "api_key": self.venue.api_key,
            "api_secret": self.venue.api_secret,
            "rest_url": running.rest_url,
            "ws_url": running.ws_base,
        }

    def hold(self, coin: str, qty: str, mark: str) -> None:
        self.venue.positions[self.symbol(coin)] = Decimal(qty)
        self.venue.marks[self.symbol(coin)] = mark

    def _event(self, coin: str, side: str, qty: str, price: str, **kw: Any) -> dict[str, Any]:
        return self.venue.trade(self.symbol(coin), side.upper(), qty, price, **kw)

    async def trade(self, coin: str, side: str, qty: str, price: str) -> str:
        event = self._event(coin, side, qty, price)
        await self.venue.push(event)
        return f"{self.symbol(coin)}:{event['o']['t']}"

    def missed(self, coin: str, side: str, qty: str, price: str) -> None:
        self._event(coin, side, qty, price, in_history=False)

    async def live_with_bad_row(self, coin: str, price: str) -> list[str]:
        good_1 = self._event(coin, "buy", "0.1", price)
        bad = self._event(coin, "buy", "0.1", price, in_history=False)
        self.missed(coin, "sell", "0.1", price)  # the unreadable one moved nothing we know of
        bad["o"]["L"] = "not-a-price"
        good_2 = self._event(coin, "buy", "0.2", price)
        for event in (good_1, bad, good_2):  # one execution per event on this venue
            await self.venue.push(event)
        return [f"{self.symbol(coin)}:{e['o']['t']}" for e in (good_1, good_2)]

    def history_with_bad_row(self, coin: str, price: str) -> list[str]:
        good_1 = self._event(coin, "buy", "0.1", price)
        self._event(coin, "buy", "0.1", price)
        self.venue.trades[self.symbol(coin)][-1]["qty"] = "not-a-qty"
        self.missed(coin, "sell", "0.1", price)
        good_2 = self._event(coin, "buy", "0.2", price)
        return [f"{self.symbol(coin)}:{e['o']['t']}" for e in (good_1, good_2)]

    async def big_message(self, coin: str, price: str) -> list[str]:
        # The user data stream sends one execution per event; its large messages are account
        # updates (every balance and position).
        balances = [
            {"a": f"ASSET{n:06d}", "wb": "1.00000000", "cw": "1.00000000", "bc": "0"}
            for n in range(BIG_BYTES // 70)
        ]
        update = {
            "e": "ACCOUNT_UPDATE",
            "E": int(time.time() * 1000),
            "T": int(time.time() * 1000),
            "a": {"m": "ORDER", "B": balances, "P": []},
        }
        await self.venue.push(update)
        return [await self.trade(coin, "buy", "0.1", price)]


@dataclass
class BybitDriver:
    kind: ClassVar[str] = "bybit"
    venue: FakeBybit = field(default_factory=FakeBybit)
    held: dict[str, tuple[Decimal, str]] = field(default_factory=dict)
    last_ms: int = 0

    def _now_ms(self) -> int:
        # One millisecond apart at least: the history orders executions by time only.
        self.last_ms = max(int(time.time() * 1000), self.last_ms + 1)
        return self.last_ms

    def symbol(self, coin: str) -> str:
        return f"{coin}USDT"

    def feed(self, running: Running) -> dict[str, Any]:
        return {
            "kind": "bybit",
            "api_key": self.venue.api_key,
            "api_secret": self.venue.api_secret,
            "categories": ["linear"],
            "rest_url": running.rest_url,
            "ws_url": f"{running.ws_base}{self.venue.ws_path}",
        }

    def _publish(self) -> None:
        self.venue.positions["linear"] = [
            {
                "symbol": name,
                "side": "Buy" if qty > 0 else "Sell" if qty < 0 else "",
                "size": str(abs(qty)),
                "avgPrice": mark,
                "markPrice": mark,
                "positionIdx": 0,
            }
            for name, (qty, mark) in self.held.items()
        ]

    def hold(self, coin: str, qty: str, mark: str) -> None:
        self.held[self.symbol(coin)] = (Decimal(qty), mark)
        self._publish()

    def missed(self, coin: str, side: str, qty: str, price: str) -> None:
        held, _ = self.held.get(self.symbol(coin), (Decimal(0), price))
        self.held[self.symbol(coin)] = (held + _signed(side, qty), price)
        self._publish()

    def _row(self, coin: str, side: str, qty: str, price: str) -> dict[str, Any]:
        self.missed(coin, side, qty, price)
        side = "Buy" if side == "buy" else "Sell"
        return execution(self.symbol(coin), side, qty, price, exec_time_ms=self._now_ms())

    async def trade(self, coin: str, side: str, qty: str, price: str) -> str:
        row = self._row(coin, side, qty, price)
        await self.venue.trade(row)
        return str(row["execId"])

    def _three(self, coin: str, price: str) -> list[dict[str, Any]]:
        good_1 = self._row(coin, "buy", "0.1", price)
        bad = {
            **execution(self.symbol(coin), "Buy", "0.1", price, exec_time_ms=self._now_ms()),
            "execQty": "not-a-qty",
        }
        return [good_1, bad, self._row(coin, "buy", "0.2", price)]

    async def live_with_bad_row(self, coin: str, price: str) -> list[str]:
        rows = self._three(coin, price)
        self.venue.history.extend((rows[0], rows[2]))
        await self.venue.push_executions(*rows)
        return [rows[0]["execId"], rows[2]["execId"]]

    def history_with_bad_row(self, coin: str, price: str) -> list[str]:
        rows = self._three(coin, price)
        self.venue.history.extend(rows)
        return [rows[0]["execId"], rows[2]["execId"]]

    async def big_message(self, coin: str, price: str) -> list[str]:
        # Funding executions by the thousand (not fills), then the leader's trade.
        funding = execution(self.symbol(coin), "Buy", "1", price, exec_type="Funding")
        rows = [
            {**funding, "execId": str(uuid.uuid4())}
            for _ in range(BIG_BYTES // len(json.dumps(funding)) + 1)
        ]
        fill = self._row(coin, "buy", "0.1", price)
        await self.venue.trade(*rows, fill)
        return [fill["execId"]]


@dataclass
class OkxDriver:
    kind: ClassVar[str] = "okx"
    venue: FakeOkx = field(default_factory=FakeOkx)
    held: dict[str, tuple[Decimal, str]] = field(default_factory=dict)
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        self.venue.instruments["SOL-USDT-SWAP"] = instrument("SOL-USDT-SWAP", "1")

    def symbol(self, coin: str) -> str:
        return f"{coin}-USDT-SWAP"

    def feed(self, running: Running) -> dict[str, Any]:
        return {
            "kind": "okx",
            "api_key": API_KEY,
            "api_secret": API_SECRET,
            "passphrase": PASSPHRASE,
            "rest_url": running.rest_url,
            "ws_url": running.ws_base + self.venue.ws_path,
        }

    def _ct_val(self, coin: str) -> Decimal:
        return Decimal(self.venue.instruments[self.symbol(coin)]["ctVal"])

    def _publish(self) -> None:
        self.venue.positions = [
            {
                "instId": name,
                "instType": "SWAP",
                "pos": str(contracts),
                "posSide": "net",
                "avgPx": mark,
                "markPx": mark,
            }
            for name, (contracts, mark) in self.held.items()
        ]

    def hold(self, coin: str, qty: str, mark: str) -> None:
        self.held[self.symbol(coin)] = (Decimal(qty) / self._ct_val(coin), mark)
        self._publish()

    def missed(self, coin: str, side: str, qty: str, price: str) -> None:
        held, _ = self.held.get(self.symbol(coin), (Decimal(0), price))
        contracts = _signed(side, qty) / self._ct_val(coin)
        self.held[self.symbol(coin)] = (held + contracts, price)
        self._publish()

    def _trade(self, coin: str, side: str, qty: str, price: str) -> Trade:
        self.missed(coin, side, qty, price)
        contracts = Decimal(qty) / self._ct_val(coin)
        return Trade(self.symbol(coin), str(next(self.ids)), side, str(contracts), price)

    async def trade(self, coin: str, side: str, qty: str, price: str) -> str:
        trade = self._trade(coin, side, qty, price)
        await self.venue.trade(trade)
        return f"{trade.inst_id}:{trade.trade_id}"

    def _three(self, coin: str, price: str) -> tuple[Trade, Trade, Trade]:
        good_1 = self._trade(coin, "buy", "0.1", price)
        bad = Trade(self.symbol(coin), str(next(self.ids)), "buy", "1", price)
        return good_1, bad, self._trade(coin, "buy", "0.2", price)

    async def live_with_bad_row(self, coin: str, price: str) -> list[str]:
        good_1, bad, good_2 = self._three(coin, price)
        self.venue.add_history(good_1, good_2)
        rows = [good_1.order_row(), bad.order_row(fillPx="not-a-price"), good_2.order_row()]
        await self.venue.push_orders(*rows)
        return [f"{t.inst_id}:{t.trade_id}" for t in (good_1, good_2)]

    def history_with_bad_row(self, coin: str, price: str) -> list[str]:
        good_1, bad, good_2 = self._three(coin, price)
        self.venue.add_history(good_1, bad, good_2)
        bill, row = self.venue.history[-2]
        self.venue.history[-2] = (bill, {**row, "fillPx": "not-a-price"})
        return [f"{t.inst_id}:{t.trade_id}" for t in (good_1, good_2)]

    async def big_message(self, coin: str, price: str) -> list[str]:
        # Order updates without executions by the thousand (placed, amended, canceled),
        # then the leader's fill.
        quiet = Trade(self.symbol(coin), "", "buy", "1", price)
        row = quiet.order_row(tradeId="", fillSz="0", fillPx="", state="canceled")
        rows = [row] * (BIG_BYTES // len(json.dumps(row)) + 1)
        trade = self._trade(coin, "buy", "0.1", price)
        self.venue.add_history(trade)
        await self.venue.push_orders(*rows, trade.order_row())
        return [f"{trade.inst_id}:{trade.trade_id}"]


DRIVERS: dict[str, Callable[[], Driver]] = {
    "hyperliquid": HyperliquidDriver,
    "binance-usdm": BinanceDriver,
    "bybit": BybitDriver,
    "okx": OkxDriver,
}


def new_driver(kind: str) -> Driver:
    return DRIVERS[kind]()
