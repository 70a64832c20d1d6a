"""Engine, sessions and the unit of work: one commit point, side effects only after it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

log = structlog.get_logger(__name__)

AfterCommit = Callable[[], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class PgTimeouts:
    """How long a Postgres connection of the service may wait, on the server and here.

    The server ones (ms, 0: none) cancel a statement that runs or waits for a lock too long,
    and end a session left idle inside a transaction; the client one (s) fails a connect or a
    command whose answer never comes (a partition), and is set above the server ones so the
    server cancels first and the connection stays usable.
    """

    statement_ms: int = 0
    lock_ms: int = 0
    idle_in_transaction_ms: int = 0
    command_s: float | None = None

    def server_settings(self) -> dict[str, str]:
        return {
            "statement_timeout": str(self.statement_ms),
            "lock_timeout": str(self.lock_ms),
            "idle_in_transaction_session_timeout": str(self.idle_in_transaction_ms),
        }

    def connect_args(self, **server_settings: str) -> dict[str, Any]:
        """asyncpg.connect's (and create_pool's) keyword arguments for these timeouts."""
        args: dict[str, Any] = {"server_settings": {**server_settings, **self.server_settings()}}
        if self.command_s is not None:
            args["command_timeout"] = self.command_s
            args["timeout"] = self.command_s
        return args


def make_engine(url: str, pool_size: int, timeouts: PgTimeouts | None = None) -> AsyncEngine:
    """Create the async engine (asyncpg)."""
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        # Sessions are short and never share an ORM identity map across units of work.
        connect_args=(timeouts or PgTimeouts()).connect_args(application_name="copytrade"),
    )


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


class UnitOfWork:
    """A session with a single commit point and hooks that run only after a successful commit.

    Services and repositories ``flush()``; only the owner of the unit of work commits. Side
    effects (Redis, publishing, cache updates) are registered with ``after_commit`` so a rollback
    drops them.
    """

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.session = sessionmaker()
        self._after_commit: list[AfterCommit] = []

    def after_commit(self, hook: AfterCommit) -> None:
        self._after_commit.append(hook)

    async def commit(self) -> None:
        await self.session.commit()
        hooks, self._after_commit = self._after_commit, []
        for hook in hooks:
            try:
                await hook()
            except Exception:
                # The data is committed; a failed side effect is retried by its owner (the
                # outbox relay for orders), never allowed to turn a success into an error.
                log.exception("after_commit_hook_failed")

    async def rollback(self) -> None:
        self._after_commit.clear()
        await self.session.rollback()

    async def __aenter__(self) -> UnitOfWork:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if exc_type is not None:
                await self.rollback()
        finally:
            await self.session.close()
