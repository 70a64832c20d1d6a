"""Bybit v5's one signer: HMAC-SHA256 in lowercase hex, over ``timestamp + api_key +
recv_window + payload`` for REST (the payload is the exact query string of a GET, the exact JSON
body of a POST) and over ``"GET/realtime" + expires`` for the private websocket's ``auth``.

https://bybit-exchange.github.io/docs/v5/guide#authentication
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from app.security.crypto import Credential

RECV_WINDOW_MS = 5000


def sign(secret: str, payload: str) -> str:
    """Bybit's HMAC_SHA256 signature: lowercase hex."""
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def query_string(params: Mapping[str, str]) -> str:
    """``k=v&...`` sorted by key, values as given: a cursor comes back from Bybit already
    percent-encoded and is signed and sent exactly as received (as Bybit's own SDK does)."""
    return "&".join(f"{key}={value}" for key, value in sorted(params.items()))


class BybitSigner:
    """Signs for one API key; the secret stays a Credential (it never prints itself)."""

    def __init__(
        self, api_key: Credential, api_secret: Credential, recv_window_ms: int = RECV_WINDOW_MS
    ) -> None:
        self._key = api_key
        self._secret = api_secret
        self.recv_window_ms = recv_window_ms

    def headers(self, payload: str, now_ms: int) -> dict[str, str]:
        """The X-BAPI-* headers of a request whose query string or body is ``payload``."""
        key = self._key.reveal()
        window = str(self.recv_window_ms)
        return {
            "X-BAPI-API-KEY": key,
            "X-BAPI-TIMESTAMP": str(now_ms),
            "X-BAPI-RECV-WINDOW": window,
            "X-BAPI-SIGN": sign(self._secret.reveal(), f"{now_ms}{key}{window}{payload}"),
        }

    def ws_auth(self, expires_ms: int) -> dict[str, Any]:
        """The websocket ``auth`` request, valid until ``expires_ms``."""
        signature = sign(self._secret.reveal(), f"GET/realtime{expires_ms}")
        return {"op": "auth", "args": [self._key.reveal(), expires_ms, signature]}
