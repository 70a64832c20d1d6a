"""Hyperliquid's L1 action signing, as the official python SDK does it (``sign_l1_action`` in
hyperliquid-python-sdk, hyperliquid/utils/signing.py; docs: for-developers/api/signing).

The action is msgpack-encoded, followed by the nonce (8 bytes, big-endian), a vault flag (and
the vault address when set) and, when set, an ``expiresAfter`` flag and time. Its keccak hash is
the ``connectionId`` of a "phantom agent" ``{"source": "a" | "b", "connectionId"}`` ("a" on
mainnet, "b" on testnet), which is signed as EIP-712 typed data (domain "Exchange", chain id
1337) with the API wallet's key. eth-account does the cryptography and msgpack the encoding:
nothing here is hand-written cryptography.

The msgpack bytes depend on key order: callers build actions with keys in the venue's order
(``type, orders, grouping`` and ``a, b, p, s, r, t, c`` per order), numbers as normalized
decimal strings without trailing zeros.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import msgpack
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils.conversions import to_hex
from eth_utils.crypto import keccak

from app.venues.hyperliquid.schemas import Signature

_DOMAIN: dict[str, Any] = {
    "chainId": 1337,
    "name": "Exchange",
    "verifyingContract": "0x0000000000000000000000000000000000000000",
    "version": "1",
}
_TYPES: dict[str, Any] = {
    "Agent": [
        {"name": "source", "type": "string"},
        {"name": "connectionId", "type": "bytes32"},
    ],
    "EIP712Domain": [
        {"name": "name", "type": "string"},
        {"name": "version", "type": "string"},
        {"name": "chainId", "type": "uint256"},
        {"name": "verifyingContract", "type": "address"},
    ],
}


def action_hash(
    action: Mapping[str, Any],
    nonce: int,
    vault_address: str | None = None,
    expires_after: int | None = None,
) -> bytes:
    """The keccak hash that becomes the phantom agent's ``connectionId``."""
    data = msgpack.packb(action)
    data += nonce.to_bytes(8, "big")
    if vault_address is None:
        data += b"\x00"
    else:
        data += b"\x01" + bytes.fromhex(vault_address.removeprefix("0x"))
    if expires_after is not None:
        data += b"\x00" + expires_after.to_bytes(8, "big")
    return bytes(keccak(data))


def _typed_data(connection_id: bytes, mainnet: bool) -> Any:
    message = {"source": "a" if mainnet else "b", "connectionId": connection_id}
    return encode_typed_data(
        full_message={
            "domain": _DOMAIN,
            "types": _TYPES,
            "primaryType": "Agent",
            "message": message,
        }
    )


class L1Signer:
    """Signs L1 actions (orders) with one API wallet's private key."""

    def __init__(self, private_key: str, mainnet: bool) -> None:
        self._account = Account.from_key(private_key)
        self.mainnet = mainnet

    @property
    def address(self) -> str:
        """The API wallet's address (lower case), which the venue recovers from signatures."""
        return str(self._account.address).lower()

    def sign(
        self,
        action: Mapping[str, Any],
        nonce: int,
        vault_address: str | None = None,
        expires_after: int | None = None,
    ) -> Signature:
        """The signature of ``action`` at ``nonce``, in the wire form ``{r, s, v}``."""
        digest = action_hash(action, nonce, vault_address, expires_after)
        signed = self._account.sign_message(_typed_data(digest, self.mainnet))
        # to_hex of the integers, as the SDK sends them (no leading zeros).
        return Signature(r=to_hex(signed.r), s=to_hex(signed.s), v=signed.v)


def recover_signer(
    action: Mapping[str, Any],
    signature: Signature,
    nonce: int,
    mainnet: bool,
    vault_address: str | None = None,
    expires_after: int | None = None,
) -> str:
    """The address (lower case) whose key made ``signature`` over this action and nonce.

    A signature over different bytes recovers to some other address: the venue answers
    "User or API Wallet ... does not exist" rather than "bad signature".
    """
    digest = action_hash(action, nonce, vault_address, expires_after)
    address = Account.recover_message(
        _typed_data(digest, mainnet),
        vrs=(signature.v, int(signature.r, 16), int(signature.s, 16)),
    )
    return str(address).lower()


class NonceClock:
    """Nonces for one signer: the current time in ms, strictly increasing.

    The venue keeps each signer's 100 highest nonces; a new one must exceed the smallest of
    them, never repeat, and lie within (now - 2 days, now + 1 day). Its docs suggest exactly
    this: an atomic counter fast-forwarded to the unix time in ms.
    """

    def __init__(self) -> None:
        self._last = 0

    def skip_to(self, nonce: int) -> None:
        """Never issue ``nonce`` or anything below it (the venue has seen it)."""
        self._last = max(self._last, nonce)

    def next(self) -> int:
        self._last = max(self._last + 1, time.time_ns() // 1_000_000)
        return self._last
