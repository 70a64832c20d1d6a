"""Running the service: serve (all roles or some), demo, migrate."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from app.cli.common import fail

if TYPE_CHECKING:
    from app.settings import Settings

# alembic.ini and migrations/ sit next to the app package (see the Dockerfile's layout notes).
ROOT = Path(__file__).resolve().parents[2]


class RoleName(enum.StrEnum):
    API = "api"
    INGEST = "ingest"
    DISPATCH = "dispatch"
    EXECUTE = "execute"


def load_settings(**updates: object) -> Settings:
    """The process settings with command-line overrides; a readable exit when invalid."""
    from pydantic import ValidationError

    from app.settings import Settings, get_settings

    try:
        settings = Settings(**updates) if updates else get_settings()  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg']}" for e in exc.errors()
        )
        fail(problems, code=2)
    return settings


def run_server(settings: Settings) -> None:
    import uvicorn

    from app import heap
    from app.main import create_app

    heap.configure()
    beside = None
    if settings.demo:
        # The demo plays a leader against the service it runs in: started here, beside the
        # runtime, so that the runtime never depends on the demo (nor the demo on the API).
        from app.demo.run import start_demo

        beside = start_demo
    uvicorn.run(
        create_app(settings, beside),
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        ws="websockets-sansio",
        ws_max_size=settings.max_frame_bytes,
        ws_per_message_deflate=settings.ws_compression,
        log_level="warning",
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=settings.shutdown_grace_s,
    )


def serve(
    role: Annotated[
        list[RoleName] | None,
        typer.Option(
            "--role",
            help="Run only this role (repeatable): api, ingest, dispatch, execute. Default: "
            "COPYTRADE_ROLES, which defaults to all four.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run the service: every role, or only those given with --role."""
    updates: dict[str, object] = {}
    if role:
        chosen = {r.value for r in role}
        updates["roles"] = [r.value for r in RoleName if r.value in chosen]
    run_server(load_settings(**updates))


def demo() -> None:
    """Run the whole service with the built-in demo: a simulated leader, three followers."""
    run_server(load_settings(demo=True, roles=[r.value for r in RoleName]))


def migrate() -> None:
    """Apply the database migrations (COPYTRADE_DATABASE_URL) up to the newest."""
    from alembic import command
    from alembic.config import Config

    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    command.upgrade(config, "head")
