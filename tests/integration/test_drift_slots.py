"""The resync slot of app.db.repositories.drift: one per follower and symbol per interval,
whichever session (instance) asks, kept in Postgres."""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from uuid import uuid4

from app.db.repositories.drift import DriftRepository
from app.db.session import UnitOfWork
from app.runtime import Runtime


async def claim(live: Runtime, follower_id: Any, symbol: str, interval_s: float) -> bool:
    async with UnitOfWork(live.sessionmaker) as uow:
        slot = await DriftRepository(uow.session).claim_resync(follower_id, symbol, interval_s)
        await uow.commit()
    return slot is not None


async def test_a_resync_slot_is_taken_once_per_interval(live: Runtime, db: Any) -> None:
    # Arrange
    follower_id = uuid4()
    await db.execute("INSERT INTO follower (id, name) VALUES ($1, 'f')", follower_id)

    # Act: two instances ask within the hour, one asks for another symbol
    first = await claim(live, follower_id, "BTCUSDT", 3600)
    second = await claim(live, follower_id, "BTCUSDT", 3600)
    other = await claim(live, follower_id, "ETHUSDT", 3600)
    # ... and with an interval the last slot is already older than
    again = await claim(live, follower_id, "BTCUSDT", 0)

    # Assert
    assert (first, second, other, again) == (True, False, True, True)


async def test_a_measurement_keeps_the_slot(live: Runtime, db: Any) -> None:
    # Arrange
    follower_id = uuid4()
    await db.execute("INSERT INTO follower (id, name) VALUES ($1, 'f')", follower_id)
    assert await claim(live, follower_id, "BTCUSDT", 3600)

    # Act: a check records its measurement after the slot was taken
    async with UnitOfWork(live.sessionmaker) as uow:
        await DriftRepository(uow.session).record(
            follower_id, "BTCUSDT", Decimal(0), None, None, False
        )
        await uow.commit()

    # Assert
    assert not await claim(live, follower_id, "BTCUSDT", 3600)
