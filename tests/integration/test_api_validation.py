"""Bad input: 422 naming the field, nothing stored; exact decimals; bad push frames answered."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import asyncpg
import pytest

from tests.support import (
    ADMIN,
    Api,
    LiveServer,
    fill_frame,
    push_socket,
    send_frame,
)

NOBODY = "00000000-0000-4000-8000-000000000000"
JSON = {**ADMIN, "content-type": "application/json"}
# (label, method, path, JSON body or None) -> the loc FastAPI must report.
Case = tuple[str, str, str, Any]


async def counts(db: asyncpg.Connection) -> dict[str, int]:
    tables = ("leader", "follower", "equity_snapshot", "instrument", "subscription")
    return {t: await db.fetchval(f"SELECT count(*) FROM {t}") for t in tables}


async def rejections(api: Api, cases: list[Case]) -> dict[str, tuple[int, list[list[Any]]]]:
    """Send every case as the admin; return label -> (status, the loc of each error)."""
    seen: dict[str, tuple[int, list[list[Any]]]] = {}
    for label, method, path, body in cases:
        response = await api.http.request(method, path, headers=ADMIN, json=body)
        detail = response.json().get("detail")
        locs = [error["loc"] for error in detail] if isinstance(detail, list) else [detail]
        seen[label] = (response.status_code, locs)
    return seen


async def raw_post(api: Api, path: str, body: bytes) -> tuple[int, Any]:
    response = await api.http.post(path, headers=JSON, content=body)
    return response.status_code, response.json()


async def test_leader_bodies_are_rejected_naming_the_field(
    server: LiveServer, db: asyncpg.Connection
) -> None:
    # Arrange
    api = Api(server.http)
    push = {"kind": "push"}
    cases: list[tuple[Case, list[Any]]] = [
        (("no name", "POST", "/v1/leaders", {"feed": push}), ["body", "name"]),
        (("empty name", "POST", "/v1/leaders", {"name": "", "feed": push}), ["body", "name"]),
        (("long name", "POST", "/v1/leaders", {"name": "n" * 101, "feed": push}), ["body", "name"]),
        (("name not text", "POST", "/v1/leaders", {"name": 7, "feed": push}), ["body", "name"]),
        (("no feed", "POST", "/v1/leaders", {"name": "x"}), ["body", "feed"]),
        (
            ("unknown kind", "POST", "/v1/leaders", {"name": "x", "feed": {"kind": "pull"}}),
            ["body", "feed"],
        ),
        (
            (
                "http url",
                "POST",
                "/v1/leaders",
                {"name": "x", "feed": {"kind": "generic", "url": "http://h/x"}},
            ),
            ["body", "feed", "generic", "url"],
        ),
        (
            (
                "generic without url",
                "POST",
                "/v1/leaders",
                {"name": "x", "feed": {"kind": "generic"}},
            ),
            ["body", "feed", "generic", "url"],
        ),
        (
            (
                "push with url",
                "POST",
                "/v1/leaders",
                {"name": "x", "feed": {"kind": "push", "url": "ws://h/x"}},
            ),
            ["body", "feed", "push", "url"],
        ),
        (
            (
                "unknown field",
                "POST",
                "/v1/leaders",
                {"name": "x", "feed": push, "push_token": "ctp_x"},
            ),
            ["body", "push_token"],
        ),
        (("bad leader id", "GET", "/v1/leaders/not-a-uuid", None), ["path", "leader_id"]),
        (("bad leader id on delete", "DELETE", "/v1/leaders/42", None), ["path", "leader_id"]),
        (("list limit 0", "GET", "/v1/leaders?limit=0", None), ["query", "limit"]),
        (("list limit 501", "GET", "/v1/leaders?limit=501", None), ["query", "limit"]),
        (("list offset -1", "GET", "/v1/leaders?offset=-1", None), ["query", "offset"]),
    ]
    before = await counts(db)

    # Act
    seen = await rejections(api, [case for case, _ in cases])

    # Assert
    assert seen == {case[0]: (422, [loc]) for case, loc in cases}
    assert await counts(db) == before


async def test_equity_bodies_are_rejected_naming_the_field(
    server: LiveServer, db: asyncpg.Connection
) -> None:
    # Arrange
    api = Api(server.http)
    leader = await api.leader()
    follower = await api.follower()
    paths = {
        "leader": f"/v1/leaders/{leader['id']}/equity",
        "follower": f"/v1/followers/{follower['id']}/equity",
    }
    bodies: dict[str, tuple[dict[str, Any], list[Any]]] = {
        "zero": ({"equity": "0"}, ["body", "equity"]),
        "zero number": ({"equity": 0}, ["body", "equity"]),
        "negative": ({"equity": "-10"}, ["body", "equity"]),
        "negative number": ({"equity": -0.5}, ["body", "equity"]),
        "not a number": ({"equity": "lots"}, ["body", "equity"]),
        "NaN string": ({"equity": "NaN"}, ["body", "equity"]),
        "Infinity string": ({"equity": "Infinity"}, ["body", "equity"]),
        "-Infinity string": ({"equity": "-Infinity"}, ["body", "equity"]),
        "missing": ({}, ["body", "equity"]),
        "null": ({"equity": None}, ["body", "equity"]),
        "bad as_of": ({"equity": "1", "as_of": "yesterday"}, ["body", "as_of"]),
        "future as_of": ({"equity": "1", "as_of": "2100-01-01T00:00:00Z"}, ["body", "as_of"]),
        "unknown field": ({"equity": "1", "currency": "USD"}, ["body", "currency"]),
    }
    cases = [
        ((f"{who} {label}", "POST", path, body), loc)
        for who, path in paths.items()
        for label, (body, loc) in bodies.items()
    ]
    cases.append(
        (
            ("bad follower id", "POST", "/v1/followers/x/equity", {"equity": "1"}),
            ["path", "follower_id"],
        )
    )
    before = await counts(db)

    # Act
    seen = await rejections(api, [case for case, _ in cases])

    # Assert
    assert seen == {case[0]: (422, [loc]) for case, loc in cases}
    assert await counts(db) == before


async def test_instrument_bodies_and_symbols_are_rejected_naming_the_field(
    server: LiveServer, db: asyncpg.Connection
) -> None:
    # Arrange
    api = Api(server.http)
    ok = "/v1/instruments/BTCUSDT"
    good = {"qty_step": "0.001"}
    cases: list[tuple[Case, list[Any]]] = [
        (("zero step", "PUT", ok, {"qty_step": "0"}), ["body", "qty_step"]),
        (("negative step", "PUT", ok, {"qty_step": -0.001}), ["body", "qty_step"]),
        (("NaN step", "PUT", ok, {"qty_step": "NaN"}), ["body", "qty_step"]),
        (("missing step", "PUT", ok, {"min_qty": "1"}), ["body", "qty_step"]),
        (("negative min_qty", "PUT", ok, {**good, "min_qty": "-1"}), ["body", "min_qty"]),
        (
            ("negative min_notional", "PUT", ok, {**good, "min_notional": "-0.01"}),
            ["body", "min_notional"],
        ),
        (
            ("infinite min_notional", "PUT", ok, {**good, "min_notional": "Infinity"}),
            ["body", "min_notional"],
        ),
        (("unknown field", "PUT", ok, {**good, "tick_size": "0.1"}), ["body", "tick_size"]),
        (("symbol with $", "PUT", "/v1/instruments/BTC$USDT", good), ["path", "symbol"]),
        (("symbol with space", "PUT", "/v1/instruments/BTC USDT", good), ["path", "symbol"]),
        (("symbol starting with -", "PUT", "/v1/instruments/-BTC", good), ["path", "symbol"]),
        (("symbol of 49 chars", "PUT", f"/v1/instruments/{'A' * 49}", good), ["path", "symbol"]),
    ]
    before = await counts(db)

    # Act
    seen = await rejections(api, [case for case, _ in cases])

    # Assert
    assert seen == {case[0]: (422, [loc]) for case, loc in cases}
    assert await counts(db) == before


async def test_follower_and_subscription_bodies_are_rejected_naming_the_field(
    server: LiveServer, db: asyncpg.Connection
) -> None:
    # Arrange
    api = Api(server.http)
    leader = await api.leader()
    follower = await api.follower()
    sub = await api.subscribe(follower["id"], leader["id"])
    other = await api.leader("other")
    subs = f"/v1/followers/{follower['id']}/subscriptions"
    one = f"{subs}/{sub['id']}"
    lid = other["id"]
    cases: list[tuple[Case, list[Any]]] = [
        (("follower without name", "POST", "/v1/followers", {}), ["body", "name"]),
        (("follower empty name", "POST", "/v1/followers", {"name": ""}), ["body", "name"]),
        (
            (
                "follower chooses its key",
                "POST",
                "/v1/followers",
                {"name": "x", "api_key": "ctf_x"},
            ),
            ["body", "api_key"],
        ),
        (
            ("zero multiplier", "POST", subs, {"leader_id": lid, "multiplier": "0"}),
            ["body", "multiplier"],
        ),
        (
            ("negative multiplier", "POST", subs, {"leader_id": lid, "multiplier": -2}),
            ["body", "multiplier"],
        ),
        (
            ("NaN multiplier", "POST", subs, {"leader_id": lid, "multiplier": "NaN"}),
            ["body", "multiplier"],
        ),
        (("bad leader id", "POST", subs, {"leader_id": "leader-1"}), ["body", "leader_id"]),
        (("missing leader id", "POST", subs, {"multiplier": "1"}), ["body", "leader_id"]),
        (
            ("status on create", "POST", subs, {"leader_id": lid, "status": "paused"}),
            ["body", "status"],
        ),
        (("patch to deleted", "PATCH", one, {"status": "deleted"}), ["body", "status"]),
        (("patch unknown status", "PATCH", one, {"status": "stopped"}), ["body", "status"]),
        (("patch zero multiplier", "PATCH", one, {"multiplier": 0}), ["body", "multiplier"]),
        (("patch negative multiplier", "PATCH", one, {"multiplier": "-1"}), ["body", "multiplier"]),
        (("patch leader", "PATCH", one, {"leader_id": lid}), ["body", "leader_id"]),
        (
            ("patch bad sub id", "PATCH", f"{subs}/7", {"status": "paused"}),
            ["path", "subscription_id"],
        ),
        (("delete bad sub id", "DELETE", f"{subs}/7", None), ["path", "subscription_id"]),
    ]
    before = await counts(db)

    # Act
    seen = await rejections(api, [case for case, _ in cases])

    # Assert
    assert seen == {case[0]: (422, [loc]) for case, loc in cases}
    assert await counts(db) == before
    assert await api.call("GET", subs, 200) == [sub]


@pytest.mark.parametrize("limit", ["0", "501", "-1", "ten"])
async def test_orders_limit_out_of_bounds_is_422(server: LiveServer, limit: str) -> None:
    # Arrange
    api = Api(server.http)
    follower = await api.follower()

    # Act
    body = await api.call("GET", f"/v1/followers/{follower['id']}/orders?limit={limit}", 422)

    # Assert
    assert [error["loc"] for error in body["detail"]] == [["query", "limit"]]


async def test_orders_limit_bounds_are_inclusive(server: LiveServer) -> None:
    # Arrange
    api = Api(server.http)
    follower = await api.follower()
    path = f"/v1/followers/{follower['id']}/orders"

    # Act
    lowest = await api.call("GET", f"{path}?limit=1", 200)
    highest = await api.call("GET", f"{path}?limit=500", 200)

    # Assert
    assert lowest == []
    assert highest == []


async def test_json_numbers_keep_full_precision(server: LiveServer, db: asyncpg.Connection) -> None:
    # Arrange
    api = Api(server.http)
    follower = await api.follower()
    path = f"/v1/followers/{follower['id']}/equity"

    # Act
    big = await raw_post(api, path, b'{"equity": 12345678901234.123456789}')
    fine = await raw_post(api, path, b'{"equity": 0.123456789012345678}')
    exponent = await raw_post(api, path, b'{"equity": 1.5E3}')

    # Assert
    assert big[0] == 201, big[1]
    assert big[1]["equity"] == "12345678901234.123456789"
    assert fine[0] == 201, fine[1]
    assert fine[1]["equity"] == "0.123456789012345678"
    assert exponent[0] == 201, exponent[1]
    assert exponent[1]["equity"] == "1500"
    stored = await db.fetch("SELECT equity FROM equity_snapshot ORDER BY id")
    assert [row["equity"] for row in stored] == [
        Decimal("12345678901234.123456789"),
        Decimal("0.123456789012345678"),
        Decimal(1500),
    ]


async def test_json_numbers_in_lot_rules_and_multiplier_are_exact(server: LiveServer) -> None:
    # Arrange
    api = Api(server.http)
    leader = await api.leader()
    follower = await api.follower()
    rules = b'{"qty_step": 0.000000000000000001, "min_qty": 0.1, "min_notional": 10.10}'
    subscription = f'{{"leader_id": "{leader["id"]}", "multiplier": 0.3}}'.encode()

    # Act
    instrument = await api.http.put("/v1/instruments/BTCUSDT", headers=JSON, content=rules)
    sub = await raw_post(api, f"/v1/followers/{follower['id']}/subscriptions", subscription)

    # Assert
    assert instrument.status_code == 200
    assert instrument.json() == {
        "symbol": "BTCUSDT",
        "qty_step": "0.000000000000000001",
        "min_qty": "0.1",
        "min_notional": "10.1",
        "price_step": None,
        "venue": None,
        "source": "operator",
    }
    assert sub[0] == 201, sub[1]
    assert sub[1]["multiplier"] == "0.3"


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity"])
async def test_non_finite_json_literals_are_422(
    server: LiveServer, db: asyncpg.Connection, literal: bytes
) -> None:
    # Arrange
    api = Api(server.http)
    follower = await api.follower()

    # Act
    status, body = await raw_post(
        api, f"/v1/followers/{follower['id']}/equity", b'{"equity": ' + literal + b"}"
    )

    # Assert
    assert status == 422
    assert [error["type"] for error in body["detail"]] == ["json_invalid"]
    assert literal.decode().lstrip("-") in json.dumps(body["detail"])
    assert await db.fetchval("SELECT count(*) FROM equity_snapshot") == 0


async def test_malformed_json_body_is_422(server: LiveServer) -> None:
    # Arrange
    api = Api(server.http)

    # Act
    status, body = await raw_post(api, "/v1/followers", b'{"name": ')

    # Assert
    assert status == 422
    assert [error["type"] for error in body["detail"]] == ["json_invalid"]


async def test_push_socket_answers_bad_frames_and_stays_usable(
    server: LiveServer, db: asyncpg.Connection
) -> None:
    # Arrange
    api = Api(server.http)
    leader = await api.leader()
    valid = fill_frame("f-ok", "BTCUSDT", "buy", "1", "50000")
    bad_frames = {
        "not json": "{bad",
        "not an object": "[]",
        "unknown type": json.dumps({"type": "order", "fill_id": "x"}),
        "no qty": json.dumps(
            {"type": "fill", "fill_id": "x", "symbol": "BTC", "side": "buy", "price": "1"}
        ),
        "negative qty": fill_frame("f-neg", "BTCUSDT", "buy", "-1", "50000"),
        "zero price": fill_frame("f-zero", "BTCUSDT", "buy", "1", "0"),
        "bad side": fill_frame("f-side", "BTCUSDT", "hold", "1", "50000"),
        "bad symbol": fill_frame("f-sym", "BTC$USDT", "buy", "1", "50000"),
        "empty fill id": fill_frame("", "BTCUSDT", "buy", "1", "50000"),
        "ts in seconds": fill_frame("f-ts", "BTCUSDT", "buy", "1", "50000", ts=1_700_000_000),
        "negative equity": json.dumps({"type": "equity", "equity": "-5"}),
    }

    # Act
    async with push_socket(server.ws_url, leader["id"], leader["push_token"]) as ws:
        replies = {label: await send_frame(ws, frame) for label, frame in bad_frames.items()}
        ack = await send_frame(ws, valid)

    # Assert
    assert {label: tuple(sorted(reply)) for label, reply in replies.items()} == dict.fromkeys(
        bad_frames, ("error", "type")
    )
    assert {label: reply["type"] for label, reply in replies.items()} == dict.fromkeys(
        bad_frames, "error"
    )
    assert replies["not json"]["error"].startswith("malformed JSON")
    assert "qty" in replies["no qty"]["error"]
    assert replies["negative qty"]["error"] == "qty: must be a positive finite decimal"
    assert replies["zero price"]["error"] == "price: must be a positive finite decimal"
    assert "side" in replies["bad side"]["error"]
    assert "symbol" in replies["bad symbol"]["error"]
    assert "fill_id" in replies["empty fill id"]["error"]
    assert replies["ts in seconds"]["error"] == "ts: epoch milliseconds out of range"
    assert replies["negative equity"]["error"] == "equity: must be a positive finite decimal"
    assert ack == {"type": "ack", "fill_id": "f-ok", "status": "accepted"}
    fills = await db.fetch("SELECT fill_id FROM leader_fill")
    assert [row["fill_id"] for row in fills] == ["f-ok"]
    assert await db.fetchval("SELECT count(*) FROM equity_snapshot") == 0


async def test_validation_errors_name_the_field_but_never_echo_the_value(
    server: LiveServer,
) -> None:
    # Arrange: a client that put a credential where it does not belong
    secret = "ctf_this-must-never-come-back-in-an-error"

    # Act
    response = await server.http.post(
        "/v1/followers", headers=ADMIN, json={"name": "x" * 101, "api_key": secret}
    )

    # Assert
    assert response.status_code == 422
    assert {tuple(e["loc"]) for e in response.json()["detail"]} == {
        ("body", "name"),
        ("body", "api_key"),
    }
    assert secret not in response.text
    assert "x" * 101 not in response.text
