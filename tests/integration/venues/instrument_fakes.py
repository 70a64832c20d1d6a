"""The four venues' public instrument lists on loopback, with the rules the tests size by."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

from tests.venues.binance_usdm_instruments import BinanceInstruments, binance_symbol
from tests.venues.bybit_instruments import BybitInstruments, bybit_instrument
from tests.venues.harness import run_venue
from tests.venues.hyperliquid_instruments import HyperliquidInstruments, hl_asset
from tests.venues.okx_instruments import OkxInstruments, okx_swap


@dataclass
class Venues:
    binance: BinanceInstruments
    bybit: BybitInstruments
    okx: OkxInstruments
    hyperliquid: HyperliquidInstruments
    urls: dict[str, str]


def listed_venues() -> tuple[BinanceInstruments, BybitInstruments, OkxInstruments,
                             HyperliquidInstruments]:  # fmt: skip
    """BTC everywhere, ETH on the exchanges, HYPE on Hyperliquid only."""
    binance = BinanceInstruments(
        symbols=[
            # A market order's step (0.01) is coarser than a limit order's (0.001).
            binance_symbol("BTCUSDT", "BTC", "USDT", "0.001", "0.001", "0.01", "0.01", "100"),
            binance_symbol("BTCUSDC", "BTC", "USDC", "0.001", "0.001", min_notional="5"),
            binance_symbol("ETHUSDT", "ETH", "USDT", "0.001", "0.001", min_notional="20"),
            binance_symbol("BTCUSDT_261225", "BTC", "USDT", "0.001", "0.001",
                           contract_type="CURRENT_QUARTER"),
        ]
    )  # fmt: skip
    bybit = BybitInstruments(
        instruments=[
            bybit_instrument("BTCUSDT", "BTC", "USDT", "0.001", "0.001", "5"),
            bybit_instrument("BTCPERP", "BTC", "USDC", "0.001", "0.001", "5"),
            bybit_instrument("ETHUSDT", "ETH", "USDT", "0.01", "0.01", "5"),
            bybit_instrument("SOLUSDT", "SOL", "USDT", "0.1", "0.1", "5"),
            bybit_instrument("XRPUSDT", "XRP", "USDT", "1", "1", "5"),
        ],
        page_size=2,
    )
    okx = OkxInstruments(
        instruments=[
            # 0.1 contract of 0.01 BTC: a lot of 0.001 BTC; at least 1 contract (0.01 BTC).
            okx_swap("BTC-USDT-SWAP", ct_val="0.01", lot_sz="0.1", min_sz="1"),
            okx_swap("ETH-USDT-SWAP", ct_val="0.1", lot_sz="0.01", min_sz="0.01"),
            okx_swap("BTC-USD-SWAP", ct_val="100", lot_sz="1", min_sz="1", ct_type="inverse"),
        ]
    )
    hyperliquid = HyperliquidInstruments(
        universe=[
            hl_asset("BTC", 5),
            hl_asset("ETH", 4),
            hl_asset("HYPE", 2),
            hl_asset("LUNA", 2, delisted=True),
        ]
    )
    return binance, bybit, okx, hyperliquid


@asynccontextmanager
async def running_venues() -> AsyncIterator[Venues]:
    binance, bybit, okx, hyperliquid = listed_venues()
    async with AsyncExitStack() as stack:
        urls = {}
        for name, fake in (
            ("binance-usdm", binance),
            ("bybit", bybit),
            ("okx", okx),
            ("hyperliquid", hyperliquid),
        ):
            urls[name] = (await stack.enter_async_context(run_venue(fake))).rest_url
        yield Venues(binance, bybit, okx, hyperliquid, urls)
