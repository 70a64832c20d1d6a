"""What the API takes for each venue, in both directions.

- ``POST /v1/leaders``: a venue leader feed (``VENUE_FEEDS``): credentials, options, base
  URLs. Every base URL can be overridden, so testnets and local test servers work.
- ``PUT /v1/followers/{id}/account``: a follower account (``AccountConfig``): the kinds and
  fields of the leader feeds, plus what trading needs (OKX's td_mode, Hyperliquid's agent
  key). ``rest_url`` and ``ws_url`` are optional: left out, the venue's public URLs are used;
  set, they must pass the URL rule of ``app.venues.urls`` (admin, or within the allowlist).
  So must ``ws_api_url``, the venue's websocket order API where it has its own URL (Binance
  ``ws-fapi``, Bybit's trade stream): left out, the venue's own for an account on the venue's
  public URLs, none (orders over REST) for another server.

Secret fields are ``SecretStr``: they are split off, encrypted and never returned
(``split_secrets``); everything else is stored as the config and shown by the API.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, TypeAlias

from pydantic import AfterValidator, AnyUrl, BaseModel, ConfigDict, Field, SecretStr, UrlConstraints

RestUrl = Annotated[AnyUrl, UrlConstraints(allowed_schemes=["http", "https"], max_length=2000)]
StreamUrl = Annotated[AnyUrl, UrlConstraints(allowed_schemes=["ws", "wss"], max_length=2000)]
_PRINTABLE = re.compile(r"[\x21-\x7e]+")


def _printable(value: SecretStr) -> SecretStr:
    # (pydantic cannot apply `pattern` to a SecretStr.) The message never shows the value.
    if not _PRINTABLE.fullmatch(value.get_secret_value()):
        raise ValueError("must be printable ASCII without spaces")
    return value


# Exchange keys are printable ASCII; bounded so a stored secret stays small.
Secret = Annotated[SecretStr, Field(min_length=1, max_length=256), AfterValidator(_printable)]


Category: TypeAlias = Literal["linear", "inverse"]


def _linear() -> list[Category]:
    return ["linear"]


class VenueFeed(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BinanceUsdmFeed(VenueFeed):
    kind: Literal["binance-usdm"]
    api_key: Secret
    api_secret: Secret
    rest_url: RestUrl = AnyUrl("https://fapi.binance.com")
    ws_url: StreamUrl = AnyUrl("wss://fstream.binance.com")


class BybitFeed(VenueFeed):
    kind: Literal["bybit"]
    api_key: Secret
    api_secret: Secret
    categories: list[Category] = Field(default_factory=_linear, min_length=1, max_length=2)
    # Linear positions are listed per settle coin (the venue needs a symbol or a settle coin).
    settle_coins: list[Annotated[str, Field(pattern=r"^[A-Z0-9]{2,10}$")]] = Field(
        default_factory=lambda: ["USDT", "USDC"], min_length=1, max_length=5
    )
    rest_url: RestUrl = AnyUrl("https://api.bybit.com")
    ws_url: StreamUrl = AnyUrl("wss://stream.bybit.com/v5/private")


class OkxFeed(VenueFeed):
    kind: Literal["okx"]
    api_key: Secret
    api_secret: Secret
    passphrase: Secret
    inst_type: Literal["SWAP", "FUTURES"] = "SWAP"
    # OKX's demo trading: the same hosts with the x-simulated-trading header.
    simulated: bool = False
    rest_url: RestUrl = AnyUrl("https://www.okx.com")
    ws_url: StreamUrl = AnyUrl("wss://ws.okx.com:8443/ws/v5/private")


class HyperliquidFeed(VenueFeed):
    kind: Literal["hyperliquid"]
    # Hyperliquid's streams are public per address: no secret is needed to follow a leader.
    address: str = Field(pattern=r"^0x[0-9a-fA-F]{40}$")
    rest_url: RestUrl = AnyUrl("https://api.hyperliquid.xyz")
    ws_url: StreamUrl = AnyUrl("wss://api.hyperliquid.xyz/ws")


VENUE_FEEDS = (BinanceUsdmFeed, BybitFeed, OkxFeed, HyperliquidFeed)


def split_secrets(feed: VenueFeed) -> tuple[dict[str, Any], dict[str, str]]:
    """(config to store as is, secrets to encrypt) of a validated venue feed."""
    config: dict[str, Any] = {}
    secrets: dict[str, str] = {}
    for name, value in feed:
        if name == "kind":
            continue
        if isinstance(value, SecretStr):
            secrets[name] = value.get_secret_value()
        else:
            config[name] = str(value) if isinstance(value, AnyUrl) else value
    return config, secrets


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
