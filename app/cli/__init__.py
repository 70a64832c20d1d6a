"""The ``copytrade`` command: run the service, manage accounts, watch orders, replay sizing.

Commands that run the service read the settings (COPYTRADE_*); the account commands go through
the REST API (COPYTRADE_API_URL, COPYTRADE_ADMIN_TOKEN); ``orders tail`` reads Redis and
``replay`` reads Postgres directly. Heavy imports wait until a command needs them.
"""

from __future__ import annotations

from collections.abc import Sequence

import typer

from app.cli.accounts import follower_app, leader_app, subscribe
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
    """Run the command line (``argv`` defaults to ``sys.argv[1:]``)."""
    app(args=list(argv) if argv is not None else None, prog_name="copytrade")
