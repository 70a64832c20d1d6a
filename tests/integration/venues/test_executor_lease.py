"""An executor sends only while its instance surely holds the account's lease: one whose lease
round ran late (the lease may be another instance's by now) holds its order back, even one
already inside ``place``, so that the account's next owner, which claims the order and finds
it nowhere at the venue, is the only one to place it.

On real Redis, with a venue client that records what reaches the last moment before sending."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from uuid import uuid4

from redis.asyncio import Redis

from app.executors.protocol.consumer import Delivery
from app.venues.execution import LeaseLapsed, OrderRequest, OrderState, VenueOrder
from app.venues.leases import Hold
from tests.integration.venues.test_executor_fence import Venue, executor, order
from tests.support import eventually


class AskedVenue(Venue):
    """Knows the orders placed, by client id; counts the orders held back at the last moment."""

    def __init__(self) -> None:
        super().__init__()
        self.held_back = 0

    async def place(self, request: OrderRequest) -> VenueOrder:
        try:
            return await super().place(request)
        except LeaseLapsed:
            self.held_back += 1
            raise

    async def query(self, symbol: str, client_id: str) -> VenueOrder | None:
        if client_id not in self.placed:
            return None
        return VenueOrder(client_id, OrderState.FILLED, Decimal(1), Decimal("100"))


async def test_an_executor_whose_lease_lapsed_while_it_sent_leaves_the_order_to_the_next_owner(
    redis: Redis,
) -> None:
    # Arrange: the account's executor here, slowed inside place() with a first delivery
    follower_id = uuid4()
    venue = AskedVenue()
    venue.hold = asyncio.Event()
    old_hold = Hold(time.monotonic() + 60)
    old = executor(redis, venue, follower_id, old_hold)
    sending = asyncio.create_task(old.handle(order("o-1"), Delivery("1-0", 1, time.monotonic())))
    await venue.entered.wait()
    # its lease round runs late: the last renewal's hold ends, and the lease expires
    old_hold.renew(time.monotonic())
    # the next owner claims the order (idle long enough), asks the venue, finds nothing
    new = executor(redis, venue, follower_id, Hold(time.monotonic() + 60))
    venue.hold.set()
    await new.handle(order("o-1"), Delivery("1-0", 2, time.monotonic()))
    assert venue.placed == ["o-1"]

    # Act: the slow executor reaches the last moment before sending
    await eventually(lambda: venue.held_back == 1, "the slow executor at its last moment")

    # Assert: it sent nothing, and waits for a renewal that never comes (until it is stopped)
    assert venue.placed == ["o-1"]
    assert not sending.done()
    sending.cancel()


async def test_an_executor_whose_lease_round_was_late_but_renewed_sends_its_order_once(
    redis: Redis,
) -> None:
    # Arrange: the hold lapsed (the round late) while the order was inside place()
    venue = AskedVenue()
    venue.hold = asyncio.Event()
    hold = Hold(time.monotonic() + 60)
    runner = executor(redis, venue, uuid4(), hold)
    sending = asyncio.create_task(runner.handle(order("o-1"), Delivery("1-0", 1, time.monotonic())))
    await venue.entered.wait()
    hold.renew(time.monotonic())
    venue.hold.set()
    await eventually(lambda: venue.held_back == 1, "the order held back")

    # Act: the late round renews the lease after all
    hold.renew(time.monotonic() + 60)

    # Assert
    await sending
    assert venue.placed == ["o-1"]
