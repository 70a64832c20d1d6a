"""``copytrade replay``: what a subscription would have done over a leader's past fills."""

from __future__ import annotations

import asyncio
import json
from dataclasses import fields
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any
from uuid import UUID

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from app.cli.accounts import Mode
from app.cli.common import decimal_text, err, fail, out, parse_time
from app.domain.decimals import fmt
from app.domain.plan_model import SizingMode, SizingSettings
from app.sizing.replay import ReplayError, ReplayInputs, ReplayResult, load_inputs, replay

DEFAULT_DATABASE_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/copytrade"
Amount = Annotated[
    str | None,
    typer.Option(
        callback=decimal_text,
        help="Hypothetical setting (a decimal); replaces the subscription's.",
        show_default=False,
    ),
]


async def _load(database_url: str, **kwargs: Any) -> ReplayInputs:
    from app.db.session import make_engine, make_sessionmaker

    engine = make_engine(database_url, 1)
    try:
        async with make_sessionmaker(engine)() as session:
            try:
                return await load_inputs(session, **kwargs)
            finally:
                await session.rollback()
    finally:
        await engine.dispose()


def _dec(value: Decimal | None) -> str | None:
    return None if value is None else fmt(value)


def _settings_json(settings: SizingSettings) -> dict[str, Any]:
    document: dict[str, Any] = {}
    for key in (f.name for f in fields(settings)):
        value = getattr(settings, key)
        if isinstance(value, Decimal):
            value = fmt(value)
        elif isinstance(value, frozenset):
            value = sorted(value)
        elif key == "symbol_map":
            value = dict(value)
        if value not in (None, [], {}):
            document[key] = str(value) if key in ("mode", "status") else value
    return document


def result_json(inputs: ReplayInputs, result: ReplayResult) -> dict[str, Any]:
    """The replay as JSON: amounts as decimal strings."""
    fills = []
    for item in result.fills:
        fill, plan = item.fill, item.plan
        fills.append(
            {
                "fill_id": fill.fill_id,
                "event_at": fill.event_at.isoformat(),
                "symbol": fill.symbol,
                "side": fill.side.value,
                "qty": fmt(fill.qty),
                "price": fmt(fill.price),
                "leader_position_after": fmt(plan.leader_position_after),
                "follower_symbol": plan.symbol,
                "orders": [
                    {
                        "side": leg.side.value,
                        "qty": fmt(leg.qty),
                        "type": leg.order_type.value,
                        "reduce_only": leg.reduce_only,
                        "limit_price": _dec(leg.limit_price),
                        "time_in_force": leg.time_in_force,
                    }
                    for leg in plan.legs
                ],
                "skip_reason": plan.skip_reason.value if plan.skip_reason else None,
                "clamps": list(plan.clamps),
                "target": _dec(plan.target),
                "follower_position_after": fmt(plan.follower_position_after),
            }
        )
    return {
        "leader_id": str(inputs.leader_id),
        "follower_id": str(inputs.follower_id) if inputs.follower_id else None,
        "settings_source": inputs.source,
        "settings": _settings_json(inputs.settings),
        "fills": fills,
        "summary": {
            "fills": len(result.fills),
            "orders": result.orders,
            "skipped": dict(sorted(result.skips().items())),
            "positions": {symbol: fmt(qty) for symbol, qty in result.positions.items()},
        },
    }


def _table(result: ReplayResult) -> Table:
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
    for item in result.fills:
        fill, plan = item.fill, item.plan
        orders = "\n".join(
            f"[{'green' if leg.side.value == 'buy' else 'red'}]{leg.side.value}[/] "
            f"{fmt(leg.qty)} {plan.symbol}"
            + (" reduce-only" if leg.reduce_only else "")
            + (f" limit {fmt(leg.limit_price)} {leg.time_in_force}" if leg.limit_price else "")
            for leg in plan.legs
        )
        table.add_row(
            fill.event_at.strftime("%Y-%m-%d %H:%M:%S"),
            fill.fill_id,
            f"{fill.side.value} {fmt(fill.qty)} {fill.symbol} @ {fmt(fill.price)}",
            fmt(plan.leader_position_after),
            orders or "-",
            plan.skip_reason.value if plan.skip_reason else "",
            fmt(plan.follower_position_after),
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
        str,
        typer.Option("--database-url", envvar="COPYTRADE_DATABASE_URL", help="Postgres URL."),
    ] = DEFAULT_DATABASE_URL,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Dry-run sizing over a leader's past fills: the orders a subscription would have sent."""
    overrides: dict[str, Any] = {
        key: Decimal(value)
        for key, value in (
            ("multiplier", multiplier),
            ("notional", notional),
            ("max_order_notional", max_order_notional),
            ("max_position_notional", max_position_notional),
            ("max_leverage", max_leverage),
            ("max_slippage", max_slippage),
        )
        if value is not None
    }
    if mode is not None:
        overrides["mode"] = SizingMode(mode.value)
    start = parse_time(since)
    end: datetime | None = parse_time(until) if until else None
    if end is not None and end <= start:
        fail("--to must be after --from", code=2)
    try:
        inputs = asyncio.run(
            _load(
                database_url,
                leader_id=leader,
                since=start,
                until=end,
                follower_id=follower,
                overrides=overrides,
                equity=Decimal(equity) if equity is not None else None,
            )
        )
    except ReplayError as exc:
        fail(str(exc), code=2)
    except OSError as exc:
        fail(f"cannot reach Postgres ({type(exc).__name__}: {exc})")
    err.print(
        f"Replaying {len(inputs.fills)} fill(s) of leader {leader} from {start.isoformat()}"
        f"{f' to {end.isoformat()}' if end else ''}; settings: {inputs.source}"
    )
    with Progress(
        TextColumn("sizing"),
        BarColumn(),
        MofNCompleteColumn(),
        console=err,
        transient=True,
    ) as progress:
        task = progress.add_task("replay", total=len(inputs.fills))
        result = replay(inputs, on_fill=lambda: progress.advance(task))
    if as_json:
        out.print_json(json.dumps(result_json(inputs, result)))
        return
    out.print(_table(result))
    summary = Table(title="Summary", show_header=False, box=None)
    summary.add_row("settings", f"{inputs.source}: {json.dumps(_settings_json(inputs.settings))}")
    summary.add_row("fills replayed", str(len(result.fills)))
    summary.add_row("orders it would send", str(result.orders))
    for reason, count in sorted(result.skips().items()):
        summary.add_row(f"skipped: {reason}", str(count))
    for symbol, qty in result.positions.items():
        summary.add_row(f"position {symbol}", fmt(qty))
    out.print(summary)
