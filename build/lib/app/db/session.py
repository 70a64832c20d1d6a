"""Engine, sessions and the unit of work: one commit point, side effects only after it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from types import TracebackType

import structlog
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

log = structlog.get_logger(__name__)

AfterCommit = Callable[[], Awaitable[None]]


def make_engine(url: str, pool_size: int) -> AsyncEngine:
    """Create the async engine (asyncpg)."""
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        # Sessions are short and never share an ORM identity map across units of work.
        connect_args={"server_settings": {"application_name": "copytrade"}},
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
