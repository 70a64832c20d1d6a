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
    material = f"{leader_id}\x1f{fill_id}\x1f{subscription_id}\x1f{leg}".encode()
    digest = hashlib.blake2b(material, digest_size=16, person=b"copytrade-order").digest()
    return ORDER_ID_PREFIX + base64.urlsafe_b64encode(digest).decode().rstrip("=")[:22]
