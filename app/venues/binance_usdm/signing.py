"""Binance USD-M's one signer: HMAC-SHA256 in lowercase hex over the exact query string sent
(``timestamp`` and ``recvWindow`` included), appended as ``signature``; the API key goes in
the ``X-MBX-APIKEY`` header. USER_STREAM calls (the listenKey) carry the key only. The private
stream needs no signature: the listenKey in its URL is the authentication.

https://developers.binance.com/docs/derivatives/usds-margined-futures/general-info
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from urllib.parse import urlencode

from app.security.crypto import Credential

RECV_WINDOW_MS = 10_000  # tolerates some clock drift; Binance's default is 5000


def sign(query: str, secret: str) -> str:
    """Binance's HMAC-SHA256 signature of a query string, lowercase hex."""
    return hmac.new(secret.encode(), query.encode(), hashlib.sha256).hexdigest()


class BinanceSigner:
    """Signs for one API key; the secret stays a Credential (it never prints itself)."""

    def __init__(
        self, api_key: Credential, api_secret: Credential, recv_window_ms: int = RECV_WINDOW_MS
    ) -> None:
        self._key = api_key
        self._secret = api_secret
        self.recv_window_ms = recv_window_ms

    def headers(self) -> dict[str, str]:
        """The API key header every call carries, signed or not."""
        return {"X-MBX-APIKEY": self._key.reveal()}

    def query(self, params: Mapping[str, str | int], now_ms: int) -> str:
        """The signed query string of ``params`` at ``now_ms``: the params, ``recvWindow``,
        ``timestamp``, then the ``signature`` of all that precedes it."""
        query = urlencode(dict(params))
        stamp = urlencode({"recvWindow": self.recv_window_ms, "timestamp": now_ms})
        query = f"{query}&{stamp}" if query else stamp
        return f"{query}&signature={sign(query, self._secret.reveal())}"

    def ws_params(self, params: Mapping[str, str], now_ms: int) -> dict[str, str | int]:
        """``params`` as the websocket API (ws-fapi) takes a signed request: with ``apiKey``,
        ``recvWindow`` and ``timestamp``, signed over all of them sorted by name."""
        out: dict[str, str | int] = {
            **params,
            "apiKey": self._key.reveal(),
            "recvWindow": self.recv_window_ms,
            "timestamp": now_ms,
        }
        payload = "&".join(f"{name}={out[name]}" for name in sorted(out))
        out["signature"] = sign(payload, self._secret.reveal())
        return out
