"""The ``copytrade`` command: serve and migrate."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence


def serve() -> None:
    import uvicorn

    from app.main import create_app
    from app.settings import get_settings

    settings = get_settings()
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        ws="websockets-sansio",
        ws_max_size=settings.max_frame_bytes,
        log_level="warning",
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=10,
    )


def migrate() -> None:
    from alembic import command
    from alembic.config import Config

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    config = Config(os.path.join(root, "alembic.ini"))
    config.set_main_option("script_location", os.path.join(root, "migrations"))
    command.upgrade(config, "head")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="copytrade", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="run the service (API, ingest, dispatch, feed)")
    commands.add_parser("migrate", help="apply database migrations")
    args = parser.parse_args(argv if argv is not None else sys.argv[1:])
    {"serve": serve, "migrate": migrate}[args.command]()


if __name__ == "__main__":
    main()
