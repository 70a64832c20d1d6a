"""Structured logs: one JSON object per line (COPYTRADE_LOG_JSON=false: console format).

Every line has ``event``, ``level``, ``timestamp`` and its context. The ids of the work at hand
(``leader_id``, ``fill_id``, ``order_id``, ``follower_id``, ``subscription_id``) are bound with
structlog's contextvars where a fill enters (app/ingest/handler.py, app/pipeline.py), so each
line a fill causes carries them and one fill can be followed with ``grep '"fill_id":"f-1"'``.

Lines from the standard library's loggers (uvicorn, asyncio, SQLAlchemy) go through the same
renderer, so the output stays one JSON object per line.
"""

from __future__ import annotations

import logging
import sys

import structlog

# uvicorn sets these up with plain-text handlers of its own when it starts.
SERVER_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")
_OURS = "_copytrade_handler"


def configure_logging(level: str, json_lines: bool) -> None:
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if json_lines
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    numeric_level = logging.getLevelNamesMapping()[level.upper()]
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        logger_factory=structlog.PrintLoggerFactory(sys.stdout),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    # Replace our handler from an earlier call, leave anyone else's (pytest's capture).
    root.handlers = [h for h in root.handlers if not getattr(h, _OURS, False)]
    setattr(handler, _OURS, True)
    root.addHandler(handler)
    root.setLevel(numeric_level)
    # One line per venue REST call would drown the log, and signed query strings do not
    # belong in it: the venue adapters log what matters themselves.
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(max(numeric_level, logging.WARNING))
    adopt_server_loggers()


def adopt_server_loggers() -> None:
    """Send uvicorn's lines through the root handler (call again once uvicorn has started)."""
    for name in SERVER_LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
