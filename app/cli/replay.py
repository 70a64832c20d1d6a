"""``copytrade replay``: what a subscription would have done over a leader's past fills.

Through the API by default (``POST /v1/leaders/{id}/replay``, an API token is all it needs),
or straight from Postgres with ``--database-url``. Both give the same documents
(app/sizing/replay.py), printed as a table or as JSON.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any
from uuid import UUID

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from app.cli.accounts import Mode
from app.cli.api_client import DEFAULT_API_URL, ApiClient, ApiUrl, Token
from app.cli.common import decimal_text, err, fail, out, parse_time

Amount = Annotated[
    str | None,
    typer.Option(
        callback=decimal_text,
        help="Hypothetical setting (a decimal); replaces the subscription's.",
        show_default=False,
    ),
]
Document = dict[str, Any]


def _from_database(
    database_url: str,
    leader: UUID,
    start: datetime,
    end: datetime | None,
    follower: UUID | None,
    overrides: dict[str, str],
    equity: str | None,
) -> tuple[Document, list[Document], Document]:
    """Read Postgres and replay here: the header, a document per fill, the summary."""
    from app.domain.plan_model import SizingMode
    from app.sizing.replay import (
        Replayer,
        ReplayError,
        fill_document,
        header_document,
        summary_document,
    )

    settings: dict[str, Any] = {
        key: SizingMode(value) if key == "mode" else Decimal(value)
        for key, value in overrides.items()
    }
    try:
        inputs = asyncio.run(
            _load(
                database_url,
                leader_id=leader,
                since=start,
                until=end,
                follower_id=follower,
                overrides=settings,
                equity=Decimal(equity) if equity is not None else None,
            )
        )
    except ReplayError as exc:
        fail(str(exc), code=2)
    except OSError as exc:
        fail(f"cannot reach Postgres ({type(exc).__name__}: {exc})")
    replayer = Replayer(inputs)
    with Progress(
        TextColumn("sizing"), BarColumn(), MofNCompleteColumn(), console=err, transient=True
    ) as progress:
        task = progress.add_task("replay", total=len(inputs.fills))
        fills = []
        for fill in inputs.fills:
            fills.append(fill_document(replayer.step(fill)))
            progress.advance(task)
    return header_document(inputs), fills, summary_document(replayer.result())


async def _load(database_url: str, **kwargs: Any) -> Any:
    from app.db.session import make_engine, make_sessionmaker
    from app.sizing.replay import load_inputs

    engine = make_engine(database_url, 1)
    try:
        async with make_sessionmaker(engine)() as session:
            try:
                return await load_inputs(session, **kwargs)
            finally:
                await session.rollback()
    finally:
        await engine.dispose()


def _from_api(
    api: ApiClient, leader: UUID, body: dict[str, Any]
) -> tuple[Document, list[Document], Document]:
    """POST the replay and read its NDJSON as it streams in."""
    header: Document = {}
    fills: list[Document] = []
    summary: Document | None = None
    with Progress(
        TextColumn("sizing"), BarColumn(), MofNCompleteColumn(), console=err, transient=True
    ) as progress:
        task = progress.add_task("replay", total=None)
        for document in api.stream_lines("POST", f"/v1/leaders/{leader}/replay", json=body):
            kind = document.pop("type", None)
            if kind == "replay":
                header = document
                progress.update(task, total=document.get("fill_count"))
            elif kind == "fill":
                fills.append(document)
                progress.advance(task)
            elif kind == "summary":
                summary = document
    if summary is None:
        fail("the replay ended before its summary: the service stopped or the connection broke")
    return header, fills, summary


def result_json(header: Document, fills: list[Document], summary: Document) -> Document:
    """The replay as one JSON document: amounts as decimal strings."""
    return {
        "leader_id": header.get("leader_id"),
        "follower_id": header.get("follower_id"),
        "settings_source": header.get("settings_source"),
        "settings": header.get("settings", {}),
        "fills": fills,
        "summary": summary,
    }


def _table(fills: list[Document]) -> Table:
    table = Table(title="Would-be orders (dry run: nothing was sent or written)")
    for name, justify in (
        ("time (UTC)", "left"),
        ("leader fill", "left"),
        ("leader", "left"),
        ("leader pos", "right"),
        ("follower order", "left"),
        ("skip", "left"),
        ("follower pos", "right"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for fill in fills:
        orders = "\n".join(
            f"[{'green' if leg['side'] == 'buy' else 'red'}]{leg['side']}[/] "
            f"{leg['qty']} {fill['follower_symbol']}"
            + (" reduce-only" if leg["reduce_only"] else "")
            + (f" limit {leg['limit_price']} {leg['time_in_force']}" if leg["limit_price"] else "")
            for leg in fill["orders"]
        )
        event_at = datetime.fromisoformat(fill["event_at"])
        table.add_row(
            event_at.strftime("%Y-%m-%d %H:%M:%S"),
            fill["fill_id"],
            f"{fill['side']} {fill['qty']} {fill['symbol']} @ {fill['price']}",
            fill["leader_position_after"],
            orders or "-",
            fill["skip_reason"] or "",
            fill["follower_position_after"],
        )
    return table


def replay_command(
    leader: Annotated[UUID, typer.Option("--leader", help="Leader id.", show_default=False)],
    since: Annotated[
        str,
        typer.Option(
            "--from",
            help="Replay fills from this time: ISO-8601, epoch s/ms, or an age (6h, 7d).",
            show_default=False,
        ),
    ],
    until: Annotated[
        str | None,
        typer.Option("--to", help="Up to this time (exclusive); default now.", show_default=False),
    ] = None,
    follower: Annotated[
        UUID | None,
        typer.Option(
            "--follower",
            help="Use this follower's subscription to the leader (its current settings) and "
            "equity history; without a subscription, the defaults and the options below.",
            show_default=False,
        ),
    ] = None,
    multiplier: Amount = None,
    mode: Annotated[Mode | None, typer.Option(help="Sizing mode.", show_default=False)] = None,
    notional: Amount = None,
    max_order_notional: Amount = None,
    max_position_notional: Amount = None,
    max_leverage: Amount = None,
    max_slippage: Amount = None,
    equity: Annotated[
        str | None,
        typer.Option(
            callback=decimal_text,
            help="The follower's equity for the whole replay (required without --follower).",
            show_default=False,
        ),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help="Read Postgres directly (and replay here) instead of asking the API.",
            show_default=False,
        ),
    ] = None,
    api_url: ApiUrl = DEFAULT_API_URL,
    token: Token = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Dry-run sizing over a leader's past fills: the orders a subscription would have sent.

    Needs only --api-url and --token (the admin token, or a follower's key for its own
    subscription); --database-url reads Postgres directly instead.
    """
    overrides: dict[str, str] = {
        key: value
        for key, value in (
            ("multiplier", multiplier),
            ("notional", notional),
            ("max_order_notional", max_order_notional),
            ("max_position_notional", max_position_notional),
            ("max_leverage", max_leverage),
            ("max_slippage", max_slippage),
            ("mode", mode.value if mode is not None else None),
        )
        if value is not None
    }
    start = parse_time(since, option="--from")
    end: datetime | None = parse_time(until, option="--to") if until else None
    if end is not None and end <= start:
        fail("--to must be after --from", code=2)
    if database_url:
        header, fills, summary = _from_database(
            database_url, leader, start, end, follower, overrides, equity
        )
    else:
        body: dict[str, Any] = {
            "from": start.isoformat(),
            "to": end.isoformat() if end else None,
            "follower_id": str(follower) if follower else None,
            "equity": equity,
            "overrides": overrides,
        }
        with ApiClient(api_url, token) as api:
            header, fills, summary = _from_api(api, leader, body)
    err.print(
        f"Replayed {len(fills)} fill(s) of leader {leader} from {start.isoformat()}"
        f"{f' to {end.isoformat()}' if end else ''}; settings: {header.get('settings_source')}"
    )
    if as_json:
        out.print_json(json.dumps(result_json(header, fills, summary)))
        return
    out.print(_table(fills))
    table = Table(title="Summary", show_header=False, box=None)
    settings = json.dumps(header.get("settings", {}))
    table.add_row("settings", f"{header.get('settings_source')}: {settings}")
    table.add_row("fills replayed", str(summary["fills"]))
    table.add_row("orders it would send", str(summary["orders"]))
    for reason, count in summary["skipped"].items():
        table.add_row(f"skipped: {reason}", str(count))
    for symbol, qty in summary["positions"].items():
        table.add_row(f"position {symbol}", qty)
    out.print(table)
