"""Credentials the service hands out: follower API keys and leader push tokens.

Only their SHA-256 is stored; the prefixes let secret scanners recognise a leaked one.
"""

from __future__ import annotations

import hashlib
import secrets

FOLLOWER_KEY_PREFIX = "ctf_"
PUSH_TOKEN_PREFIX = "ctp_"


def new_secret(prefix: str) -> str:
    """A random credential: 32 bytes of entropy, with a prefix that secret scanners can match."""
    return prefix + secrets.token_urlsafe(32)


def hash_secret(token: str) -> str:
    """SHA-256 is enough for 256-bit random keys: there is nothing to brute-force."""
    return hashlib.sha256(token.encode()).hexdigest()
