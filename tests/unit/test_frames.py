"""Unit tests of app.ingest.frames.parse_frame: the generic JSON feed format (pure, no I/O)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.domain.model import Fill, Side
from app.ingest.frames import EquityUpdate, FrameError, parse_frame

LEADER = UUID("00000000-0000-4000-8000-000000000001")
RECEIVED = datetime(2024, 11, 24, 0, 0, tzinfo=UTC)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MIN_TS_MS = 946_684_800_000  # 2000-01-01
MAX_TS_MS = 4_102_444_800_000  # 2100-01-01
RECEIVED_2100 = datetime(2100, 1, 1, tzinfo=UTC)

_MISSING = object()


def fill_frame(**overrides: Any) -> str:
    """A valid fill frame as JSON text; pass ``field=_MISSING`` to leave a field out."""
    frame: dict[str, Any] = {
        "type": "fill",
        "fill_id": "f-1",
        "symbol": "BTCUSDT",
        "side": "buy",
        "qty": "2",
        "price": "50000",
    }
    frame.update(overrides)
    return json.dumps({k: v for k, v in frame.items() if v is not _MISSING})


def equity_frame(**overrides: Any) -> str:
    frame: dict[str, Any] = {"type": "equity", "equity": "10000"}
    frame.update(overrides)
    return json.dumps({k: v for k, v in frame.items() if v is not _MISSING})


def parse_fill(raw: str | bytes, received_at: datetime = RECEIVED) -> Fill:
    item = parse_frame(raw, LEADER, received_at)
    assert isinstance(item, Fill)
    return item


def parse_equity(raw: str | bytes, received_at: datetime = RECEIVED) -> EquityUpdate:
    item = parse_frame(raw, LEADER, received_at)
    assert isinstance(item, EquityUpdate)
    return item


# --- valid frames ---


def test_fill_frame_becomes_a_fill() -> None:
    # Arrange
    raw = fill_frame(ts=1732406400123)

    # Act
    fill = parse_fill(raw)

    # Assert
    assert fill == Fill(
        leader_id=LEADER,
        fill_id="f-1",
        symbol="BTCUSDT",
        side=Side.BUY,
        qty=Decimal(2),
        price=Decimal(50000),
        event_at=datetime(2024, 11, 24, 0, 0, 0, 123000, tzinfo=UTC),
        received_at=RECEIVED,
    )


def test_bytes_are_accepted() -> None:
    # Arrange
    raw = fill_frame(side="sell").encode()

    # Act
    fill = parse_fill(raw)

    # Assert
    assert fill.side is Side.SELL
    assert fill.qty == Decimal(2)


@pytest.mark.parametrize(
    ("qty_json", "price_json", "qty", "price"),
    [
        pytest.param('"0.2"', '"50000.5"', "0.2", "50000.5", id="strings"),
        pytest.param("0.2", "50000.5", "0.2", "50000.5", id="json-numbers"),
        pytest.param("2", "50000", "2", "50000", id="json-integers"),
        pytest.param("1e-8", "5E+4", "0.00000001", "50000", id="json-exponents"),
        pytest.param('"1e-8"', '"5E+4"', "0.00000001", "50000", id="string-exponents"),
    ],
)
def test_qty_and_price_as_strings_or_numbers(
    qty_json: str, price_json: str, qty: str, price: str
) -> None:
    # Arrange
    raw = (
        '{"type": "fill", "fill_id": "f-1", "symbol": "BTCUSDT", "side": "buy",'
        f' "qty": {qty_json}, "price": {price_json}}}'
    )

    # Act
    fill = parse_fill(raw)

    # Assert
    assert fill.qty == Decimal(qty)
    assert fill.price == Decimal(price)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("0.123456789012345678901234567890", id="30-digit-fraction"),
        pytest.param("12345678901234567890.123456789", id="29-digits"),
        pytest.param("1.00000000000000000000000000001", id="one-plus-1e-29"),
        pytest.param("9007199254740993", id="2-pow-53-plus-1"),
        pytest.param("0.100000000000000005551115123126", id="beyond-binary-0.1"),
    ],
)
def test_json_numbers_keep_every_digit(text: str) -> None:
    # Arrange
    raw = (
        '{"type": "fill", "fill_id": "f-1", "symbol": "BTCUSDT", "side": "buy",'
        f' "qty": {text}, "price": {text}}}'
    )

    # Act
    fill = parse_fill(raw)

    # Assert
    assert fill.qty == Decimal(text)
    assert fill.price == Decimal(text)
    assert fill.qty.as_tuple().digits == Decimal(text).as_tuple().digits


def test_equity_number_keeps_every_digit() -> None:
    # Arrange
    raw = '{"type": "equity", "equity": 123456789012345678901.123456789}'

    # Act
    update = parse_equity(raw)

    # Assert
    assert update.equity == Decimal("123456789012345678901.123456789")


@given(
    n=st.integers(min_value=1, max_value=10**30 - 1),
    e=st.integers(min_value=-30, max_value=0),
)
def test_any_json_number_is_exact(n: int, e: int) -> None:
    # Arrange: an exact decimal n * 10**e within the accepted bounds, written as a JSON number
    text = f"{n}e{e}"
    raw = (
        '{"type": "fill", "fill_id": "f-1", "symbol": "BTCUSDT", "side": "buy",'
        f' "qty": {text}, "price": "1"}}'
    )

    # Act
    fill = parse_fill(raw)

    # Assert
    assert fill.qty == Decimal(text)


@pytest.mark.parametrize(
    "equity_json",
    [pytest.param('"10000.5"', id="string"), pytest.param("10000.5", id="number")],
)
def test_equity_frame_becomes_an_update(equity_json: str) -> None:
    # Arrange
    raw = f'{{"type": "equity", "equity": {equity_json}, "ts": 1732406400123}}'

    # Act
    update = parse_equity(raw)

    # Assert
    assert update == EquityUpdate(
        equity=Decimal("10000.5"),
        as_of=datetime(2024, 11, 24, 0, 0, 0, 123000, tzinfo=UTC),
    )


@pytest.mark.parametrize(
    "symbol",
    [
        pytest.param("BTCUSDT", id="plain"),
        pytest.param("btc-usd", id="lower-dash"),
        pytest.param("BTC-PERP.X:1-Q", id="punctuation"),
        pytest.param("A", id="one-char"),
        pytest.param("A" * 48, id="48-chars"),
    ],
)
def test_valid_symbols(symbol: str) -> None:
    # Act
    fill = parse_fill(fill_frame(symbol=symbol))

    # Assert
    assert fill.symbol == symbol


# --- timestamps ---


def test_missing_ts_means_received_at() -> None:
    # Act
    fill = parse_fill(fill_frame())
    update = parse_equity(equity_frame())

    # Assert
    assert fill.event_at == RECEIVED
    assert update.as_of == RECEIVED


def test_null_ts_means_received_at() -> None:
    # Act
    fill = parse_fill(fill_frame(ts=None))

    # Assert
    assert fill.event_at == RECEIVED


def test_epoch_ms_is_exact_to_the_millisecond() -> None:
    # Act
    fill = parse_fill(fill_frame(ts=1732406400123))

    # Assert
    assert fill.event_at == datetime(2024, 11, 24, 0, 0, 0, 123000, tzinfo=UTC)
    assert fill.event_at.utcoffset() == timedelta(0)
    assert (fill.event_at - EPOCH) // timedelta(milliseconds=1) == 1732406400123
    assert (fill.event_at - EPOCH) % timedelta(milliseconds=1) == timedelta(0)


@given(ms=st.integers(min_value=MIN_TS_MS, max_value=MAX_TS_MS))
def test_every_epoch_ms_in_range_is_exact(ms: int) -> None:
    # Act
    fill = parse_fill(fill_frame(ts=ms), received_at=RECEIVED_2100)

    # Assert
    assert (fill.event_at - EPOCH) // timedelta(milliseconds=1) == ms
    assert (fill.event_at - EPOCH) % timedelta(milliseconds=1) == timedelta(0)


@pytest.mark.parametrize(
    ("ts", "expected"),
    [
        pytest.param(
            "2024-11-23T23:59:59.123Z",
            datetime(2024, 11, 23, 23, 59, 59, 123000, tzinfo=UTC),
            id="iso-z",
        ),
        pytest.param(
            "2024-11-23T23:59:59.123456+00:00",
            datetime(2024, 11, 23, 23, 59, 59, 123456, tzinfo=UTC),
            id="iso-utc-offset",
        ),
        pytest.param(
            "2024-11-24T01:30:00+02:00",
            datetime(2024, 11, 23, 23, 30, tzinfo=UTC),
            id="iso-positive-offset",
        ),
        pytest.param(
            "2024-11-23T18:00:00-05:00",
            datetime(2024, 11, 23, 23, 0, tzinfo=UTC),
            id="iso-negative-offset",
        ),
        pytest.param(
            "2024-11-23T23:00:00", datetime(2024, 11, 23, 23, 0, tzinfo=UTC), id="naive-is-utc"
        ),
        pytest.param(
            "2024-11-23 23:00:00.5",
            datetime(2024, 11, 23, 23, 0, 0, 500000, tzinfo=UTC),
            id="naive-space-separator",
        ),
    ],
)
def test_iso_timestamps(ts: str, expected: datetime) -> None:
    # Act
    fill = parse_fill(fill_frame(ts=ts))

    # Assert
    assert fill.event_at == expected
    assert fill.event_at.utcoffset() is not None


def test_naive_iso_gets_utc_not_local_time() -> None:
    # Act
    fill = parse_fill(fill_frame(ts="2024-11-23T23:00:00"))

    # Assert
    assert fill.event_at.tzinfo is not None
    assert fill.event_at.utcoffset() == timedelta(0)
    assert fill.event_at == datetime(2024, 11, 23, 23, 0, tzinfo=UTC)


def test_iso_equity_timestamp() -> None:
    # Act
    update = parse_equity(equity_frame(ts="2024-11-23T23:00:00Z"))

    # Assert
    assert update.as_of == datetime(2024, 11, 23, 23, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "ts",
    [pytest.param(MIN_TS_MS, id="2000-01-01"), pytest.param(MAX_TS_MS, id="2100-01-01")],
)
def test_epoch_ms_bounds_are_inclusive(ts: int) -> None:
    # Act
    fill = parse_fill(fill_frame(ts=ts), received_at=RECEIVED_2100)

    # Assert
    assert fill.event_at == EPOCH + timedelta(milliseconds=ts)


def test_ts_up_to_five_minutes_ahead_is_clock_drift() -> None:
    # Arrange
    ahead = RECEIVED + timedelta(minutes=5)
    ms = (ahead - EPOCH) // timedelta(milliseconds=1)

    # Act
    fill = parse_fill(fill_frame(ts=ms))

    # Assert
    assert fill.event_at == ahead


@pytest.mark.parametrize(
    "frame",
    [
        pytest.param(fill_frame(ts=1732406700001), id="fill-epoch-5min-1ms-ahead"),
        pytest.param(fill_frame(ts="2024-11-24T00:05:00.001Z"), id="fill-iso-5min-1ms-ahead"),
        pytest.param(fill_frame(ts="2024-11-25T00:00:00"), id="fill-naive-iso-a-day-ahead"),
        pytest.param(fill_frame(ts=MAX_TS_MS), id="fill-year-2100"),
        pytest.param(equity_frame(ts=1732406700001), id="equity-epoch-5min-1ms-ahead"),
        pytest.param(equity_frame(ts="2030-01-01T00:00:00Z"), id="equity-iso-years-ahead"),
        pytest.param(equity_frame(ts=MAX_TS_MS), id="equity-year-2100"),
    ],
)
def test_ts_far_in_the_future_is_rejected(frame: str) -> None:
    # Act / Assert
    with pytest.raises(FrameError, match=r"^ts: .*future"):
        parse_frame(frame, LEADER, RECEIVED)


# --- rejected frames: every message names the field ---


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        # structure
        pytest.param("{", "malformed JSON", id="truncated-json"),
        pytest.param("", "malformed JSON", id="empty"),
        pytest.param(b"\xff\xfe", "malformed JSON", id="invalid-utf8"),
        pytest.param('{"type": "fill", "qty": NaN}', "malformed JSON", id="nan-literal"),
        pytest.param(fill_frame(type=_MISSING), "`type`", id="missing-type"),
        pytest.param(fill_frame(type="trade"), "$.type", id="unknown-type"),
        pytest.param(fill_frame(type="FILL"), "$.type", id="type-case"),
        pytest.param(fill_frame(type=1), "$.type", id="type-number"),
        # fill_id
        pytest.param(fill_frame(fill_id=_MISSING), "fill_id", id="missing-fill_id"),
        pytest.param(fill_frame(fill_id=""), "$.fill_id", id="empty-fill_id"),
        pytest.param(fill_frame(fill_id="f" * 129), "$.fill_id", id="long-fill_id"),
        pytest.param(fill_frame(fill_id=7), "$.fill_id", id="number-fill_id"),
        # symbol
        pytest.param(fill_frame(symbol=_MISSING), "symbol", id="missing-symbol"),
        pytest.param(fill_frame(symbol=""), "$.symbol", id="empty-symbol"),
        pytest.param(fill_frame(symbol="BTC USDT"), "$.symbol", id="space-in-symbol"),
        pytest.param(fill_frame(symbol="BTC/USDT"), "$.symbol", id="slash-in-symbol"),
        pytest.param(fill_frame(symbol="-BTC"), "$.symbol", id="leading-dash"),
        pytest.param(fill_frame(symbol="A" * 49), "$.symbol", id="49-char-symbol"),
        pytest.param(fill_frame(symbol="BTCUSDT\n"), "$.symbol", id="trailing-newline"),
        pytest.param(fill_frame(symbol="\u0412TC"), "$.symbol", id="cyrillic-lookalike"),
        pytest.param(fill_frame(symbol=1), "$.symbol", id="number-symbol"),
        # side
        pytest.param(fill_frame(side=_MISSING), "side", id="missing-side"),
        pytest.param(fill_frame(side="hold"), "$.side", id="unknown-side"),
        pytest.param(fill_frame(side="BUY"), "$.side", id="upper-case-side"),
        # qty
        pytest.param(fill_frame(qty=_MISSING), "qty", id="missing-qty"),
        pytest.param(fill_frame(qty="abc"), "$.qty", id="garbage-qty"),
        pytest.param(fill_frame(qty=[1]), "$.qty", id="array-qty"),
        pytest.param(fill_frame(qty=None), "$.qty", id="null-qty"),
        # price
        pytest.param(fill_frame(price=_MISSING), "price", id="missing-price"),
        pytest.param(fill_frame(price="1,5"), "$.price", id="comma-price"),
        pytest.param(fill_frame(price=True), "$.price", id="bool-price"),
        # equity
        pytest.param(equity_frame(equity=_MISSING), "equity", id="missing-equity"),
        pytest.param(equity_frame(equity="ten"), "$.equity", id="garbage-equity"),
        # ts
        pytest.param(fill_frame(ts=1732406400.5), "$.ts", id="float-ts"),
        pytest.param(fill_frame(ts=True), "$.ts", id="bool-ts"),
        pytest.param(fill_frame(ts="yesterday"), "ts", id="garbage-ts"),
        pytest.param(fill_frame(ts="2024-13-01T00:00:00Z"), "ts", id="month-13"),
        pytest.param(fill_frame(ts="2024-11-23T23:00:00+25:00"), "ts", id="offset-25h"),
        pytest.param(fill_frame(ts=1732406400), "ts", id="epoch-seconds"),
        pytest.param(fill_frame(ts=1732406400123000), "ts", id="epoch-micros"),
        pytest.param(fill_frame(ts=MIN_TS_MS - 1), "ts", id="before-2000"),
        pytest.param(fill_frame(ts=-1), "ts", id="negative-ts"),
        pytest.param(equity_frame(ts="soon"), "ts", id="garbage-equity-ts"),
        pytest.param(equity_frame(ts=1732406400), "ts", id="equity-epoch-seconds"),
    ],
)
def test_bad_frame_error_names_the_field(raw: str | bytes, field: str) -> None:
    # Act / Assert
    with pytest.raises(FrameError) as excinfo:
        parse_frame(raw, LEADER, RECEIVED)
    assert field in str(excinfo.value)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param('"NaN"', id="nan"),
        pytest.param('"nan"', id="nan-lower"),
        pytest.param('"sNaN"', id="signalling-nan"),
        pytest.param('"Infinity"', id="infinity"),
        pytest.param('"-Infinity"', id="negative-infinity"),
        pytest.param('"inf"', id="inf"),
        pytest.param('"-1"', id="negative-string"),
        pytest.param("-1", id="negative-number"),
        pytest.param("-0.00000001", id="tiny-negative"),
        pytest.param('"0"', id="zero-string"),
        pytest.param("0", id="zero-number"),
        pytest.param("0.0", id="zero-fraction"),
        pytest.param('"-0"', id="negative-zero"),
        pytest.param("0e-8", id="zero-exponent"),
    ],
)
@pytest.mark.parametrize("field", ["qty", "price"])
def test_fill_amounts_must_be_positive_and_finite(field: str, value: str) -> None:
    # Arrange
    amounts = {"qty": '"2"', "price": '"50000"', field: value}
    raw = (
        '{"type": "fill", "fill_id": "f-1", "symbol": "BTCUSDT", "side": "buy",'
        f' "qty": {amounts["qty"]}, "price": {amounts["price"]}}}'
    )

    # Act / Assert
    with pytest.raises(FrameError, match=rf"^{field}: must be a positive finite decimal$"):
        parse_frame(raw, LEADER, RECEIVED)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param('"NaN"', id="nan"),
        pytest.param('"Infinity"', id="infinity"),
        pytest.param('"-5"', id="negative-string"),
        pytest.param("-5", id="negative-number"),
        pytest.param("0", id="zero"),
    ],
)
def test_equity_must_be_positive_and_finite(value: str) -> None:
    # Arrange
    raw = f'{{"type": "equity", "equity": {value}}}'

    # Act / Assert
    with pytest.raises(FrameError, match=r"^equity: must be a positive finite decimal$"):
        parse_frame(raw, LEADER, RECEIVED)


def test_frame_error_is_a_value_error() -> None:
    # Act / Assert
    with pytest.raises(ValueError, match=r"\$\.side"):
        parse_frame(fill_frame(side="short"), LEADER, RECEIVED)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("0.1234567890123456789012345678901", id="31-digits"),
        pytest.param("1e31", id="too-large"),
        pytest.param("1e-31", id="too-small"),
    ],
)
def test_json_numbers_beyond_the_bounds_are_rejected_naming_the_field(text: str) -> None:
    # Arrange: the same bound as the API's, so every sizing product stays exact
    raw = (
        '{"type": "fill", "fill_id": "f-1", "symbol": "BTCUSDT", "side": "buy",'
        f' "qty": {text}, "price": "1"}}'
    )

    # Act / Assert
    with pytest.raises(FrameError, match=r"^qty: at most 30 digits"):
        parse_fill(raw)
