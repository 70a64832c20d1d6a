"""What PUT /v1/followers/{id}/account takes for each venue: the kinds and fields of the
venue leader feeds, plus what trading needs (OKX's td_mode, Hyperliquid's agent key).

Secret fields are ``SecretStr``: split off, encrypted and never returned (``split_secrets``).
``rest_url`` and ``ws_url`` are optional: left out, the venue's public URLs are used; set,
they must pass the URL rule of ``app.venues.urls`` (admin, or within the allowlist). So must
``ws_api_url``, the venue's websocket order API where it has its own URL (Binance ``ws-fapi``,
Bybit's trade stream): left out, the venue's own for an account on the venue's public URLs,
none (orders over REST) for another server.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from app.ingest.venues.configs import RestUrl, Secret, StreamUrl, VenueFeed, split_secrets

__all__ = ["ACCOUNT_KINDS", "DEFAULT_URLS", "AccountConfig", "split_secrets"]

# The venues' public production URLs, used when an account names none.
DEFAULT_URLS: dict[str, tuple[str, str]] = {
    "binance-usdm": ("https://fapi.binance.com", "wss://fstream.binance.com"),
    "bybit": ("https://api.bybit.com", "wss://stream.bybit.com/v5/private"),
    "okx": ("https://www.okx.com", "wss://ws.okx.com:8443/ws/v5/private"),
    "hyperliquid": ("https://api.hyperliquid.xyz", "wss://api.hyperliquid.xyz/ws"),
}


class _Account(VenueFeed):
    rest_url: RestUrl | None = None
    ws_url: StreamUrl | None = None
    ws_api_url: StreamUrl | None = None


class BinanceUsdmAccount(_Account):
    kind: Literal["binance-usdm"]
    api_key: Secret
    api_secret: Secret


class BybitAccount(_Account):
    kind: Literal["bybit"]
    api_key: Secret
    api_secret: Secret


class OkxAccount(_Account):
    kind: Literal["okx"]
    api_key: Secret
    api_secret: Secret
    passphrase: Secret
    td_mode: Literal["cross", "isolated"] = "cross"


class HyperliquidAccount(_Account):
    kind: Literal["hyperliquid"]
    address: str = Field(pattern=r"^0x[0-9a-fA-F]{40}$")
    # An API wallet's private key: it can trade, never withdraw.
    agent_key: Secret


AccountConfig = Annotated[
    BinanceUsdmAccount | BybitAccount | OkxAccount | HyperliquidAccount,
    Field(discriminator="kind"),
]
ACCOUNT_KINDS = tuple(DEFAULT_URLS)


def stored_config(account: _Account) -> tuple[dict[str, Any], dict[str, str]]:
    """(config to store, secrets to encrypt), the base URLs filled in with the defaults."""
    config, secrets = split_secrets(account)
    rest, ws = DEFAULT_URLS[str(getattr(account, "kind", ""))]
    config["rest_url"] = config.get("rest_url") or rest
    config["ws_url"] = config.get("ws_url") or ws
    return config, secrets
