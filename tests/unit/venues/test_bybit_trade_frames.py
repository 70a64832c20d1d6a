"""Frames of Bybit's trade socket as the order socket reads them (pure decoding)."""

from __future__ import annotations

import pytest

from app.venues.bybit.ws_orders import _decode


def test_a_pong_without_ret_code_is_no_answer_and_no_error() -> None:
    # Bybit's pong carries op, args and conn_id, no retCode
    pong = '{"req_id":"","op":"pong","args":["1675418560633"],"conn_id":"cfcb4ocsvfriu23r3er0-1b"}'

    assert _decode(pong) == (None, None)


def test_an_answer_is_matched_by_its_req_id() -> None:
    key, reply = _decode(
        '{"reqId":"o7","retCode":110007,"retMsg":"ab not enough","op":"order.create"}'
    )

    assert key == "o7"
    assert reply is not None
    assert reply.retCode == 110007


def test_a_frame_that_is_neither_is_unreadable() -> None:
    with pytest.raises(ValueError, match="retCode"):
        _decode('{"op":"order.create","reqId":"o1"}')
