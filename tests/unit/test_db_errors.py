"""Database errors that pass with time are told apart from those that never will."""

from __future__ import annotations

import asyncpg
import pytest
from sqlalchemy import exc as sa_exc

from app.db.errors import is_transient


def wrapped(error: BaseException) -> sa_exc.DBAPIError:
    """What SQLAlchemy raises for an asyncpg error: its own, over the adapted, over asyncpg's."""
    adapted = Exception(str(error))
    adapted.__cause__ = error
    return sa_exc.DBAPIError("SELECT 1", None, adapted)


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.LockNotAvailableError("lock timeout"),
        asyncpg.QueryCanceledError("statement timeout"),
        asyncpg.exceptions.AdminShutdownError("terminated"),
        asyncpg.exceptions.DeadlockDetectedError("deadlock"),
        asyncpg.exceptions.ConnectionDoesNotExistError("closed"),
        TimeoutError(),
        ConnectionResetError(),
    ],
)
def test_the_database_away_or_busy_is_transient(error: Exception) -> None:
    assert is_transient(error)
    assert is_transient(wrapped(error))


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.UniqueViolationError("duplicate"),
        asyncpg.exceptions.CheckViolationError("check"),
        asyncpg.exceptions.InvalidTextRepresentationError("bad input"),
        ValueError("bad report"),
    ],
)
def test_a_refused_statement_is_not(error: Exception) -> None:
    assert not is_transient(error)
    assert not is_transient(wrapped(error))
