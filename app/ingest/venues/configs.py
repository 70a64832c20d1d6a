"""What POST /v1/leaders takes for each venue feed: credentials, options, base URLs.

Secret fields are ``SecretStr``: they are split off, encrypted and never returned
(``split_secrets``); everything else is stored as the feed's config and shown by the API.
Every base URL can be overridden, so testnets and local test servers work.
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
