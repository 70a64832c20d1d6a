"""OKX v5's one signer: Base64 of HMAC-SHA256 with the secret key.

REST: over ``timestamp + METHOD + requestPath + body`` (the path with its query string, the
exact JSON body sent), timestamp in ISO 8601 UTC with milliseconds, sent as the OK-ACCESS-KEY,
-SIGN, -TIMESTAMP and -PASSPHRASE headers. Websocket login: over ``timestamp + "GET" +
"/users/self/verify"``, timestamp in Unix seconds.

https://www.okx.com/docs-v5/en/#overview-rest-authentication-signature
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime
from typing import Any

from app.security.crypto import Credential

VERIFY_PATH = "/users/self/verify"


def sign(secret: str, prehash: str) -> str:
    digest = hmac.new(secret.encode(), prehash.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def rest_timestamp(at: datetime) -> str:
    """OK-ACCESS-TIMESTAMP, e.g. ``2020-12-08T09:08:57.715Z``."""
    at = at.astimezone(UTC)
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


class OkxSigner:
    """Signs for one API key; secrets stay Credentials (they never print themselves)."""

    def __init__(
        self,
        api_key: Credential,
        api_secret: Credential,
        passphrase: Credential,
        simulated: bool = False,
    ) -> None:
        self._key = api_key
        self._secret = api_secret
        self._passphrase = passphrase
        self._simulated = simulated

    def headers(self, method: str, request_path: str, body: str, at: datetime) -> dict[str, str]:
        stamp = rest_timestamp(at)
        headers = {
            "OK-ACCESS-KEY": self._key.reveal(),
            "OK-ACCESS-SIGN": sign(self._secret.reveal(), f"{stamp}{method}{request_path}{body}"),
            "OK-ACCESS-TIMESTAMP": stamp,
            "OK-ACCESS-PASSPHRASE": self._passphrase.reveal(),
        }
        if self._simulated:  # demo trading: the same hosts, this header
            headers["x-simulated-trading"] = "1"
        return headers

    def ws_login(self, unix_s: int) -> dict[str, Any]:
        return {
            "op": "login",
            "args": [
                {
                    "apiKey": self._key.reveal(),
                    "passphrase": self._passphrase.reveal(),
                    "timestamp": str(unix_s),
                    "sign": sign(self._secret.reveal(), f"{unix_s}GET{VERIFY_PATH}"),
                }
            ],
        }
