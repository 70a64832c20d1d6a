"""Which database errors pass with time (retry them) and which never will (report them)."""

from __future__ import annotations

import asyncpg
from sqlalchemy import exc as sa_exc

# SQLSTATE classes of a database that is away or busy, not of a wrong statement: 08
# connection exception, 53 insufficient resources, 57 operator intervention (a cancelled
# statement, a terminated backend, a server shutting down), 40 transaction rollback
# (serialization failure, deadlock).
TRANSIENT_CLASSES = frozenset({"08", "53", "57", "40"})
TRANSIENT_STATES = frozenset({"55P03"})  # lock_not_available: lock_timeout
_TRANSIENT_TYPES = (
    OSError,
    TimeoutError,
    asyncpg.InterfaceError,  # the connection is closed or in an unknown state
    sa_exc.TimeoutError,  # no pooled connection in time
    sa_exc.InterfaceError,
    sa_exc.OperationalError,
)


def is_transient(error: BaseException) -> bool:
    """Tell whether ``error`` (or what it wraps) says the database is away or busy."""
    current: BaseException | None = error
    for _ in range(8):  # the chain is short: SQLAlchemy's error, the adapted, asyncpg's
        if current is None:
            return False
        if isinstance(current, sa_exc.DBAPIError) and current.connection_invalidated:
            return True
        if isinstance(current, _TRANSIENT_TYPES):
            return True
        sqlstate = getattr(current, "sqlstate", None)
        if isinstance(sqlstate, str) and (
            sqlstate[:2] in TRANSIENT_CLASSES or sqlstate in TRANSIENT_STATES
        ):
            return True
        wrapped = current.orig if isinstance(current, sa_exc.DBAPIError) else None
        current = wrapped if isinstance(wrapped, BaseException) else current.__cause__
    return False
