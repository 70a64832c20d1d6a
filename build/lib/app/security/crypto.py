"""Encryption at rest for exchange credentials (API keys and secrets), with key rotation.

Fernet (AES-128-CBC with HMAC-SHA256, from the ``cryptography`` package) through MultiFernet:
the first key encrypts, every key decrypts. To rotate, put a new key first and keep the old
ones after it, re-encrypt stored values with ``rotate``, then drop the old keys.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

_REDACTED: Final = "**********"


class CredentialError(ValueError):
    """A stored credential that no configured key opens, or that was altered."""


class Credential:
    """A decrypted credential: the value is only reachable through ``reveal()``.

    ``repr``, ``str`` and f-strings show a mask, so logging the object leaks nothing.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The plaintext, for the one call that sends it to the venue."""
        return self._value

    def __repr__(self) -> str:
        return f"Credential('{_REDACTED}')"

    def __str__(self) -> str:
        return _REDACTED

    def __format__(self, format_spec: str) -> str:
        return _REDACTED

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Credential):
            return NotImplemented
        return self._value == other._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> tuple[object, ...]:
        # No pickling (a pickle is a plaintext copy on disk or on the wire).
        raise TypeError("a Credential cannot be pickled")


def generate_key() -> str:
    """A new random key (32 bytes, url-safe base64), for COPYTRADE_CREDENTIALS_KEY."""
    return Fernet.generate_key().decode()


def parse_keys(setting: str) -> list[str]:
    """Split a comma-separated key setting ("new,old1,old2") into keys, newest first."""
    return [key.strip() for key in setting.split(",") if key.strip()]


class CredentialCipher:
    """Encrypts with the first key; decrypts with any of them."""

    __slots__ = ("_fernet", "_key_count")

    def __init__(self, keys: Sequence[str | bytes]) -> None:
        if not keys:
            raise ValueError("credentials key: at least one key is required")
        try:
            fernets = [Fernet(key) for key in keys]
        except (ValueError, TypeError) as exc:
            # Never echo the key itself.
            raise ValueError(
                "credentials key: each key must be 32 url-safe base64-encoded bytes"
            ) from exc
        self._fernet = MultiFernet(fernets)
        self._key_count = len(fernets)

    @classmethod
    def from_setting(cls, setting: str) -> CredentialCipher:
        """Build from a comma-separated key setting, newest key first."""
        return cls(parse_keys(setting))

    def encrypt(self, plaintext: str | Credential) -> str:
        """The token to store (ASCII, with a timestamp and an HMAC inside)."""
        value = plaintext.reveal() if isinstance(plaintext, Credential) else plaintext
        return self._fernet.encrypt(value.encode()).decode("ascii")

    def decrypt(self, token: str) -> Credential:
        """Raises CredentialError when no key opens ``token`` or it was altered."""
        try:
            return Credential(self._fernet.decrypt(token.encode("ascii")).decode())
        except (InvalidToken, UnicodeError) as exc:
            raise CredentialError(
                "stored credential: not readable with the configured keys"
            ) from exc

    def rotate(self, token: str) -> str:
        """Re-encrypt ``token`` under the first key (it may have been made with any key)."""
        try:
            return self._fernet.rotate(token.encode("ascii")).decode("ascii")
        except (InvalidToken, UnicodeError) as exc:
            raise CredentialError(
                "stored credential: not readable with the configured keys"
            ) from exc

    def __repr__(self) -> str:
        return f"CredentialCipher(keys={self._key_count})"
