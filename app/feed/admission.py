"""Which feed messages the admin's all-orders socket may send: this deployment's only.

Redis pub/sub ignores db numbers: two deployments on one Redis server (or `make run` next to
`make test`) publish on the same channel names, and the admin feed's pattern subscription hears
both. An order is admitted when its follower is in this deployment's database (all ids are read
when the socket opens, a newer one is looked up once); a status change when its order was.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from typing import Any
from uuid import UUID

import msgspec

_decoder = msgspec.json.Decoder()
# Order ids remembered for their later status changes, and follower ids for their verdict.
MAX_ORDERS = 10_000
MAX_FOLLOWERS = 100_000


class DeploymentFilter:
    def __init__(self, known: Iterable[UUID], exists: Callable[[UUID], Awaitable[bool]]) -> None:
        self._exists = exists
        self._followers: dict[str, bool] = {str(follower_id): True for follower_id in known}
        self._orders: OrderedDict[str, None] = OrderedDict()

    async def admit(self, text: str) -> bool:
        try:
            message: Any = _decoder.decode(text)
        except msgspec.DecodeError:
            return False
        if not isinstance(message, dict):
            return False
        if message.get("type") == "order":
            order = message.get("order")
            if not isinstance(order, dict) or not await self._ours(order.get("follower_id")):
                return False
            self._remember(order.get("order_id"))
            return True
        order_id = message.get("order_id")
        return isinstance(order_id, str) and order_id in self._orders

    async def _ours(self, follower_id: object) -> bool:
        if not isinstance(follower_id, str):
            return False
        verdict = self._followers.get(follower_id)
        if verdict is None:
            try:
                parsed = UUID(follower_id)
            except ValueError:
                return False
            if len(self._followers) >= MAX_FOLLOWERS:
                self._followers.clear()
            verdict = self._followers[follower_id] = await self._exists(parsed)
        return verdict

    def _remember(self, order_id: object) -> None:
        if isinstance(order_id, str):
            self._orders[order_id] = None
            if len(self._orders) > MAX_ORDERS:
                self._orders.popitem(last=False)
