"""The ``copytrade`` command: run the service, manage accounts, watch orders, replay sizing.

Commands that run the service read the settings (COPYTRADE_*); the account commands go through
the REST API (COPYTRADE_API_URL, COPYTRADE_ADMIN_TOKEN), and so do ``orders tail`` (the
follower feed websocket) and ``replay`` (POST /v1/leaders/{id}/replay) unless given
--redis-url or --database-url to read Redis or Postgres directly. Heavy imports wait until a
command needs them.
"""

from __future__ import annotations

from collections.abc import Sequence

import typer

# typer carries its own copy of click; its exceptions are the ones raised.
from typer._click import exceptions as click_errors

from app.cli.accounts import follower_app, leader_app, subscribe
from app.cli.common import err, usage_error_line
from app.cli.credentials import rotate_credentials
from app.cli.orders import orders_app
from app.cli.replay import replay_command
from app.cli.service import demo, migrate, serve

app = typer.Typer(
    name="copytrade",
    help="Copytrade: real-time copy trading. Leader fills in, follower orders out.",
    no_args_is_help=True,
    # A traceback's locals could hold the admin token or a database password.
    pretty_exceptions_show_locals=False,
)
app.command()(serve)
app.command()(migrate)
app.command()(demo)
app.add_typer(leader_app, name="leader")
app.add_typer(follower_app, name="follower")
app.command()(subscribe)
app.add_typer(orders_app, name="orders")
app.command("replay")(replay_command)
app.command("rotate-credentials")(rotate_credentials)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the command line (``argv`` defaults to ``sys.argv[1:]``).

    A bad option value is one line on stderr, in the style of the API's errors (exit 2), not
    click's boxed usage text: ``error: --multiplier: 'x0.5' is not a decimal number``.
    """
    args = list(argv) if argv is not None else None
    try:
        code = app(args=args, prog_name="copytrade", standalone_mode=False)
    except click_errors.NoArgsIsHelpError as exc:
        exc.show()
        raise SystemExit(exc.exit_code) from None
    except click_errors.UsageError as exc:
        where = f" ({exc.ctx.command_path} --help)" if exc.ctx else ""
        err.print(f"[bold red]error:[/] {usage_error_line(exc)}{where}", soft_wrap=True)
        raise SystemExit(exc.exit_code) from None
    except typer.Abort:
        err.print("aborted")
        raise SystemExit(1) from None
    raise SystemExit(code if isinstance(code, int) else 0)
