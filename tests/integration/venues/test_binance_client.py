"""The Binance USD-M execution client against the loopback trading account: each refusal
maps to its reason, a duplicate client id counts as placed, an unknown id is None."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from app.security.crypto import Credential
from app.venues.binance_usdm.execution import BinanceUsdmClient
from app.venues.execution import AccountError, OrderRequest, OrderState, RejectReason
from tests.venues.binance_usdm_trading import FakeBinanceTrading
from tests.venues.harness import run_venue


@pytest.fixture
async def venue() -> AsyncIterator[tuple[FakeBinanceTrading, BinanceUsdmClient]]:
    fake = FakeBinanceTrading()
    async with run_venue(fake) as running:
        client = BinanceUsdmClient(
            running.rest_url,
            running.ws_base,
            Credential(fake.api_key),
            Credential(fake.api_secret),
            5.0,
        )
        yield fake, client
        await client.close()


def request(
    qty: str, symbol: str = "BTCUSDT", limit: str | None = None, reduce_only: bool = False
) -> OrderRequest:
    return OrderRequest(
        client_id="ct-test-0001",
        symbol=symbol,
        side="buy",
        qty=Decimal(qty),
        reduce_only=reduce_only,
        limit_price=Decimal(limit) if limit else None,
        reference_price=Decimal("50000"),
    )


@pytest.mark.parametrize(
    ("sent", "reason", "code"),
    [
        (request("0.0001"), RejectReason.BAD_PRECISION, "-1111"),
        (request("0.015", "ETHUSDT"), RejectReason.BAD_PRECISION, "-4023"),
        (request("0.1", limit="50000.05"), RejectReason.BAD_PRECISION, "-4014"),
        (request("0.001"), RejectReason.BELOW_MIN_NOTIONAL, "-4164"),
        (request("0.1", reduce_only=True), RejectReason.REDUCE_ONLY_REJECTED, "-2022"),
        (request("30"), RejectReason.INSUFFICIENT_MARGIN, "-2019"),
        (request("0.1", "NOPEUSDT"), RejectReason.UNKNOWN_SYMBOL, "-1121"),
        (request("200"), RejectReason.VENUE_ERROR, "-4005"),
    ],
)
async def test_each_refusal_maps_to_its_reason(
    venue: tuple[FakeBinanceTrading, BinanceUsdmClient],
    sent: OrderRequest,
    reason: RejectReason,
    code: str,
) -> None:
    fake, client = venue

    answer = await client.place(sent)

    assert (answer.state, answer.reason, answer.raw_code) == (OrderState.REJECTED, reason, code)
    assert answer.raw_message
    assert fake.placements == {}


async def test_a_duplicate_open_client_id_counts_as_placed(
    venue: tuple[FakeBinanceTrading, BinanceUsdmClient],
) -> None:
    # Arrange: an order still open (filling in parts after the answer)
    fake, client = venue
    fake.hold_open = True
    first = await client.place(request("0.1"))

    # Act
    again = await client.place(request("0.1"))

    # Assert
    assert first.state is OrderState.ACCEPTED
    assert again.venue_order_id == first.venue_order_id
    assert fake.placements["ct-test-0001"] == 1


async def test_query_finds_a_filled_order_and_not_an_unknown_one(
    venue: tuple[FakeBinanceTrading, BinanceUsdmClient],
) -> None:
    _fake, client = venue
    await client.place(request("0.1"))

    found = await client.query("BTCUSDT", "ct-test-0001")
    missing = await client.query("BTCUSDT", "ct-never-sent")

    assert found is not None
    assert (found.state, found.filled_qty, found.avg_price) == (
        OrderState.FILLED,
        Decimal("0.1"),
        Decimal("50000"),
    )
    assert missing is None


async def test_the_account_reads_margin_balance_positions_and_mode(
    venue: tuple[FakeBinanceTrading, BinanceUsdmClient],
) -> None:
    fake, client = venue
    fake.positions["BTCUSDT"] = Decimal("-0.3")
    fake.dual_side = True

    snapshot = await client.account()

    assert (snapshot.equity, snapshot.positions, snapshot.one_way) == (
        Decimal("10000"),
        {"BTCUSDT": Decimal("-0.3")},
        False,
    )


async def test_a_refused_key_is_an_account_error(
    venue: tuple[FakeBinanceTrading, BinanceUsdmClient],
) -> None:
    fake, client = venue
    fake.api_key = "another-key"

    with pytest.raises(AccountError, match="refused the API key"):
        await client.account()
