"""Deterministic order ids, usable as an exchange client order id."""

from __future__ import annotations

import base64
import hashlib
from uuid import UUID

ORDER_ID_PREFIX = "ct"


def order_id(leader_id: UUID | str, fill_id: str, subscription_id: UUID | str, leg: int = 0) -> str:
    """Return the id of the order a (leader fill, subscription, leg) produces.

    24 characters of ``[A-Za-z0-9_-]``: a prefix and 128 bits of BLAKE2b, within the 32-36
    character client-order-id limits of the major venues. The same inputs always give the same
    id, so any retry of the same work is recognisable downstream. A UUID and its canonical
    text give the same id.
    """
    return FillOrderIds(leader_id, fill_id)(subscription_id, leg)


class FillOrderIds:
    """``order_id`` for the orders of one fill: the fill's part of the input is hashed once
    and copied per order (a fill fans out to thousands of orders)."""

    __slots__ = ("_fill",)

    def __init__(self, leader_id: UUID | str, fill_id: str) -> None:
        self._fill = hashlib.blake2b(digest_size=16, person=b"copytrade-order")
        self._fill.update(f"{leader_id}\x1f{fill_id}\x1f".encode())

    def __call__(self, subscription_id: UUID | str, leg: int = 0) -> str:
        digest = self._fill.copy()
        digest.update(f"{subscription_id}\x1f{leg}".encode())
        # 16 bytes are 22 base64 characters and two of padding.
        return ORDER_ID_PREFIX + base64.urlsafe_b64encode(digest.digest()).decode()[:22]


def fill_key(leader_id: UUID | str, fill_id: str) -> str:
    """A short name for one leader fill, the same wherever it is computed (22 characters of
    ``[A-Za-z0-9_-]``): fill ids are the venue's, of any length and alphabet."""
    digest = hashlib.blake2b(
        f"{leader_id}\x1f{fill_id}".encode(), digest_size=16, person=b"ct-fill"
    )
    return base64.urlsafe_b64encode(digest.digest()).decode()[:22]
