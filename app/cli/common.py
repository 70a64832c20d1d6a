"""What every command shares: the consoles, option parsers, readable failures."""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import NoReturn

import typer
from rich.console import Console

# typer carries its own copy of click; its exceptions are the ones raised.
from typer._click import exceptions as click_errors
from typer._click.core import Parameter

# Piped output (a file, grep, a test) gets a wide fixed width instead of rich's 80 columns, so
# ids in tables are never cut; COLUMNS still wins when set.
_WIDTH = None if os.environ.get("COLUMNS") else 200


def _console(stderr: bool) -> Console:
    console = Console(stderr=stderr, highlight=False)
    if not console.is_terminal and _WIDTH is not None:
        console = Console(stderr=stderr, highlight=False, width=_WIDTH)
    return console


out = _console(stderr=False)  # results: tables, JSON, orders
err = _console(stderr=True)  # status lines, progress, errors

_RELATIVE = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def usage_error_line(exc: click_errors.UsageError) -> str:
    """A usage error as one line, in the style of the API's errors: the option, then what is
    wrong with it (click's own form is a boxed usage text)."""
    if isinstance(exc, click_errors.MissingParameter) and exc.param is not None:
        return f"{_option_name(exc.param)}: required"
    if isinstance(exc, click_errors.BadParameter):
        name = _option_name(exc.param) if exc.param is not None else exc.param_hint
        if name:
            return f"{name if isinstance(name, str) else ' / '.join(name)}: {exc.message}"
    return exc.format_message()


def _option_name(param: Parameter) -> str:
    opts = [opt for opt in param.opts if opt.startswith("--")] or param.opts
    return opts[0] if opts else str(param.name)


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``message`` as an error and exit with ``code``."""
    err.print(f"[bold red]error:[/] {message}", soft_wrap=True)
    raise typer.Exit(code)


def decimal_text(value: str | None) -> str | None:
    """Check that an option is a finite decimal and keep its text: amounts go to the API and
    the planner as written, never through float."""
    if value is None:
        return None
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise typer.BadParameter(f"{value!r} is not a decimal number") from None
    if not number.is_finite():
        raise typer.BadParameter(f"{value!r} is not a finite number")
    return value


def parse_time(value: str, now: datetime | None = None, option: str | None = None) -> datetime:
    """Parse a point in time: ISO-8601 (naive means UTC), epoch seconds or milliseconds, or an
    age such as ``90s``, ``15m``, ``6h``, ``7d`` (that long before now). ``option`` names the
    option in the error."""
    now = now or datetime.now(UTC)
    text = value.strip()
    relative = _RELATIVE.match(text)
    if relative:
        return now - timedelta(**{_UNITS[relative.group(2)]: int(relative.group(1))})
    if text.isdigit():
        number = int(text)
        return datetime.fromtimestamp(number / 1000 if number > 10**11 else number, UTC)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(
            f"{value!r}: use ISO-8601 (2026-11-24T00:00:00Z), epoch seconds or ms, or an age (6h)",
            param_hint=option,
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
