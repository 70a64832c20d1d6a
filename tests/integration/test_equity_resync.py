"""The equity cache's periodic resync reads only recent snapshots; a full reload reads all."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from app.runtime import Runtime
from app.sizing import equity_cache
from tests.integration.runtimes import seed


async def insert_equity(db: Any, follower_id: Any, equity: str, age_s: float) -> None:
    """A snapshot inserted with SQL, as another system would, ``age_s`` seconds ago."""
    await db.execute(
        "INSERT INTO equity_snapshot (follower_id, equity, as_of, created_at)"
        " VALUES ($1, $2, now(), now() - make_interval(secs => $3))",
        follower_id,
        Decimal(equity),
        age_s,
    )


async def test_a_resync_takes_recent_snapshots_and_leaves_old_ones_to_a_full_reload(
    live: Runtime, db: Any
) -> None:
    # Arrange: two followers at 10000, cached.
    _, (recent, stale) = await seed(live, followers=2)
    await live.equity.reload()
    await insert_equity(db, recent, "12000", age_s=5)
    await insert_equity(db, stale, "13000", age_s=3600)

    # Act
    await live.equity.reload(within_s=60)
    after_resync = [live.equity.follower(f) for f in (recent, stale)]
    await live.equity.reload()
    after_full = [live.equity.follower(f) for f in (recent, stale)]

    # Assert
    assert [r.equity if r else None for r in after_resync] == [Decimal(12000), Decimal(10000)]
    assert [r.equity if r else None for r in after_full] == [Decimal(12000), Decimal(13000)]


async def test_a_reload_reads_every_page(
    live: Runtime, db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Arrange: three followers, read one snapshot per page.
    monkeypatch.setattr(equity_cache, "RELOAD_PAGE", 1)
    _, followers = await seed(live, followers=3)
    for n, follower_id in enumerate(followers):
        await insert_equity(db, follower_id, str(20000 + n), age_s=5)

    # Act
    await live.equity.reload(within_s=60)
    after_resync = [live.equity.follower(f) for f in followers]
    for n, follower_id in enumerate(followers):
        await insert_equity(db, follower_id, str(30000 + n), age_s=5)
    await live.equity.reload()
    after_full = [live.equity.follower(f) for f in followers]

    # Assert
    assert [r.equity if r else None for r in after_resync] == [20000, 20001, 20002]
    assert [r.equity if r else None for r in after_full] == [30000, 30001, 30002]
