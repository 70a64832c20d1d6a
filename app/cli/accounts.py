"""Leaders, followers and subscriptions, through the service's REST API."""

from __future__ import annotations

import enum
import json
from typing import Annotated, Any

import typer
from rich.panel import Panel
from rich.table import Table

from app.cli.api_client import DEFAULT_API_URL, ApiClient, ApiUrl, Token
from app.cli.common import decimal_text, out

leader_app = typer.Typer(help="Leaders: the traders being copied.", no_args_is_help=True)
follower_app = typer.Typer(help="Followers: the accounts that copy.", no_args_is_help=True)

Json = Annotated[bool, typer.Option("--json", help="Print the API's JSON instead of a table.")]
Equity = Annotated[
    str | None,
    typer.Option(
        "--equity",
        callback=decimal_text,
        help="Record a first equity snapshot (a decimal, e.g. 100000).",
        show_default=False,
    ),
]
Amount = Annotated[str | None, typer.Option(callback=decimal_text, show_default=False)]


class Mode(enum.StrEnum):
    TARGET = "target"
    PER_FILL = "per_fill"
    FIXED_MULTIPLIER = "fixed_multiplier"
    FIXED_NOTIONAL = "fixed_notional"


def _print_json(value: Any) -> None:
    out.print_json(json.dumps(value))


def _secret(title: str, value: str) -> None:
    """A one-time secret: the API never shows it again."""
    out.print(
        Panel(
            f"[bold]{value}[/]",
            title=f"{title}: shown once, store it now",
            border_style="yellow",
            expand=False,
        )
    )


def _equity(api: ApiClient, path: str, equity: str | None) -> dict[str, Any] | None:
    if equity is None:
        return None
    snapshot: dict[str, Any] = api.call("POST", f"{path}/equity", json={"equity": equity})
    return snapshot


@leader_app.command("add")
def leader_add(
    name: Annotated[str, typer.Argument(help="The leader's display name.")],
    url: Annotated[
        str | None,
        typer.Option(
            "--url",
            help="A generic feed the service connects to (ws:// or wss://); without it the "
            "leader pushes its fills (push mode) and gets a push token.",
            show_default=False,
        ),
    ] = None,
    equity: Equity = None,
    api_url: ApiUrl = DEFAULT_API_URL,
    token: Token = None,
    as_json: Json = False,
) -> None:
    """Create a leader. A push leader's token is printed once."""
    feed: dict[str, str] = {"kind": "generic", "url": url} if url else {"kind": "push"}
    with ApiClient(api_url, token) as api:
        leader = api.call("POST", "/v1/leaders", json={"name": name, "feed": feed})
        snapshot = _equity(api, f"/v1/leaders/{leader['id']}", equity)
    if as_json:
        _print_json({**leader, "equity": snapshot})
        return
    table = Table(title="Leader created", show_header=False, box=None)
    table.add_row("id", leader["id"])
    table.add_row("name", leader["name"])
    table.add_row("feed", leader["feed"]["kind"] + (f" {url}" if url else ""))
    if snapshot:
        table.add_row("equity", snapshot["equity"])
    out.print(table)
    if leader.get("push_token"):
        _secret("Push token", leader["push_token"])
        out.print(f"push its fills to {api_url.rstrip('/')}/v1/leaders/{leader['id']}/fills/ws")


@leader_app.command("list")
def leader_list(
    api_url: ApiUrl = DEFAULT_API_URL, token: Token = None, as_json: Json = False
) -> None:
    """List leaders, with the listener state of client-mode feeds."""
    with ApiClient(api_url, token) as api:
        leaders = api.pages("/v1/leaders")
    if as_json:
        _print_json(leaders)
        return
    table = Table(title=f"Leaders ({len(leaders)})")
    for column in ("id", "name", "feed", "listener", "created"):
        table.add_column(column, no_wrap=column == "id")
    for leader in leaders:
        listener = leader.get("listener") or {}
        table.add_row(
            leader["id"],
            leader["name"],
            leader["feed"]["kind"] + (f" {leader['feed']['url']}" if leader["feed"]["url"] else ""),
            listener.get("state", "-"),
            leader["created_at"][:19].replace("T", " "),
        )
    out.print(table)


@follower_app.command("add")
def follower_add(
    name: Annotated[str, typer.Argument(help="The follower's display name.")],
    equity: Equity = None,
    api_url: ApiUrl = DEFAULT_API_URL,
    token: Token = None,
    as_json: Json = False,
) -> None:
    """Create a follower. Its API key is printed once."""
    with ApiClient(api_url, token) as api:
        follower = api.call("POST", "/v1/followers", json={"name": name})
        snapshot = _equity(api, f"/v1/followers/{follower['id']}", equity)
    if as_json:
        _print_json({**follower, "equity": snapshot})
        return
    table = Table(title="Follower created", show_header=False, box=None)
    table.add_row("id", follower["id"])
    table.add_row("name", follower["name"])
    if snapshot:
        table.add_row("equity", snapshot["equity"])
    out.print(table)
    _secret("API key", follower["api_key"])


@follower_app.command("list")
def follower_list(
    subscriptions: Annotated[
        bool, typer.Option("--subscriptions", help="Also fetch each follower's subscriptions.")
    ] = False,
    api_url: ApiUrl = DEFAULT_API_URL,
    token: Token = None,
    as_json: Json = False,
) -> None:
    """List followers (and, with --subscriptions, what each copies)."""
    with ApiClient(api_url, token) as api:
        followers = api.pages("/v1/followers")
        if subscriptions:
            for follower in followers:
                follower["subscriptions"] = api.call(
                    "GET", f"/v1/followers/{follower['id']}/subscriptions"
                )
    if as_json:
        _print_json(followers)
        return
    table = Table(title=f"Followers ({len(followers)})")
    table.add_column("id", no_wrap=True)
    table.add_column("name")
    table.add_column("created")
    if subscriptions:
        table.add_column("subscriptions")
    for follower in followers:
        row = [follower["id"], follower["name"], follower["created_at"][:19].replace("T", " ")]
        if subscriptions:
            row.append(
                "\n".join(
                    f"{s['leader_id']} x{s['multiplier']} {s['sizing'].get('mode', 'target')}"
                    f" {s['status']}"
                    for s in follower["subscriptions"]
                )
                or "-"
            )
        table.add_row(*row)
    out.print(table)


def subscribe(
    follower: Annotated[str, typer.Option("--follower", help="Follower id.", show_default=False)],
    leader: Annotated[str, typer.Option("--leader", help="Leader id.", show_default=False)],
    multiplier: Annotated[
        str, typer.Option(callback=decimal_text, help="Scales the follower's size.")
    ] = "1",
    mode: Annotated[Mode, typer.Option(help="Sizing mode.")] = Mode.TARGET,
    notional: Annotated[
        str | None,
        typer.Option(
            callback=decimal_text,
            help="Quote amount per opening fill (fixed_notional).",
            show_default=False,
        ),
    ] = None,
    max_order_notional: Amount = None,
    max_position_notional: Amount = None,
    max_leverage: Amount = None,
    max_slippage: Amount = None,
    allow: Annotated[
        list[str] | None,
        typer.Option("--allow", help="Copy only this symbol (repeatable).", show_default=False),
    ] = None,
    deny: Annotated[
        list[str] | None,
        typer.Option("--deny", help="Never copy this symbol (repeatable).", show_default=False),
    ] = None,
    copy_open_positions: Annotated[
        bool,
        typer.Option(
            "--copy-open-positions",
            help="Bring the follower to the leader's open positions now.",
        ),
    ] = False,
    api_url: ApiUrl = DEFAULT_API_URL,
    token: Token = None,
    as_json: Json = False,
) -> None:
    """Subscribe a follower to a leader. Amounts are decimals, sent as written."""
    sizing: dict[str, Any] = {"mode": mode.value}
    for key, value in (
        ("notional", notional),
        ("max_order_notional", max_order_notional),
        ("max_position_notional", max_position_notional),
        ("max_leverage", max_leverage),
        ("max_slippage", max_slippage),
    ):
        if value is not None:
            sizing[key] = value
    if allow or deny:
        sizing["symbols"] = {"allow": allow or None, "deny": deny or []}
    body = {
        "leader_id": leader,
        "multiplier": multiplier,
        "sizing": sizing,
        "copy_open_positions": copy_open_positions,
    }
    with ApiClient(api_url, token) as api:
        sub = api.call("POST", f"/v1/followers/{follower}/subscriptions", json=body)
    if as_json:
        _print_json(sub)
        return
    table = Table(title="Subscribed", show_header=False, box=None)
    table.add_row("subscription", sub["id"])
    table.add_row("follower", sub["follower_id"])
    table.add_row("leader", sub["leader_id"])
    table.add_row("multiplier", sub["multiplier"])
    table.add_row("status", sub["status"])
    table.add_row("sizing", json.dumps(sub["sizing"]) if sub["sizing"] else "defaults (target)")
    out.print(table)
