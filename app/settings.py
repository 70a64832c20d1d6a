"""Settings, from the environment with the COPYTRADE_ prefix, validated at start-up.

One module and one class on purpose, though past 400 lines: every variable the service reads
is here, under one prefix, and the checks that relate settings of different concerns (client
and server timeouts, lease renewal against its TTL, venue pings against the idle timeout) run
together at start-up. Its length is the fields' descriptions, from which the README's settings
table is generated (scripts/settings_table.py); the logic is a few validators.
"""

from __future__ import annotations

import json
import secrets
from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

INSECURE_TOKENS = frozenset({"", "changeme", "change-me", "admin", "secret", "token"})
MIN_ADMIN_TOKEN_LENGTH = 16

Role = Literal["api", "ingest", "dispatch", "execute"]
ROLES: tuple[Role, ...] = ("api", "ingest", "dispatch", "execute")
Venue = Literal["binance-usdm", "bybit", "okx", "hyperliquid"]
INSTRUMENT_VENUES: tuple[Venue, ...] = ("binance-usdm", "bybit", "okx", "hyperliquid")


class Settings(BaseSettings):
    """Every knob of the service. ``COPYTRADE_<NAME>`` sets ``<name>``."""

    model_config = SettingsConfigDict(env_prefix="COPYTRADE_", env_file=".env", extra="ignore")

    database_url: str = Field(
        default="postgresql+asyncpg://postgres@127.0.0.1:5432/copytrade",
        description="SQLAlchemy URL of the Postgres database (asyncpg driver).",
    )
    redis_url: str = Field(
        default="redis://127.0.0.1:6379/0", description="Redis URL, including the db number."
    )
    redis_cluster: bool = Field(
        default=False,
        description="COPYTRADE_REDIS_URL names a node of a Redis Cluster (db 0): keyed commands "
        "go through a cluster client, one hash slot per script call.",
    )
    admin_token: SecretStr = Field(
        default=SecretStr(""),
        description="Bearer token for admin routes. Required outside demo mode; generated and "
        "printed in demo mode when unset.",
    )
    credentials_key: SecretStr | None = Field(
        default=None,
        description="Fernet key(s) that encrypt exchange credentials at rest, comma-separated, "
        "newest first (python -c 'from app.security.crypto import generate_key; "
        "print(generate_key())'); keys after the first still decrypt until values are rotated.",
    )
    demo: bool = Field(
        default=False,
        description="Run the built-in demo: a simulated leader, three paper-traded followers and "
        "one with an account on a loopback venue.",
    )
    host: str = Field(default="127.0.0.1", description="Interface the HTTP server binds.")
    port: int = Field(default=8000, ge=1, le=65535, description="Port of the HTTP server.")
    public_url: str = Field(
        default="",
        description="Base URL printed in the demo banner; derived from host and port when empty.",
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        default="info", description="Log level."
    )
    log_json: bool = Field(default=True, description="Log JSON lines (false: console format).")
    shutdown_grace_s: int = Field(
        default=10,
        ge=1,
        description="On SIGTERM, how long fills in flight get to finish and be acknowledged "
        "(push sockets then close with 1012), and again how long other requests get; allow "
        "twice this + 5 s before a SIGKILL (docker-compose.yml's stop_grace_period).",
    )
    db_pool_size: int = Field(default=10, ge=1, description="Postgres connection pool size.")
    db_statement_timeout_ms: int = Field(
        default=10_000,
        ge=0,
        description="Postgres statement_timeout of every service connection: a statement "
        "running longer is cancelled (0: none). A fill fails cleanly and is resent.",
    )
    db_lock_timeout_ms: int = Field(
        default=2_000,
        ge=0,
        description="Postgres lock_timeout of every service connection: a statement waiting "
        "this long for a row lock fails (0: none), so one locked leader holds no fill slot "
        "for longer.",
    )
    db_idle_in_transaction_timeout_ms: int = Field(
        default=60_000,
        ge=0,
        description="Postgres ends a session left idle inside a transaction this long (a hung "
        "process holding row locks); 0: never.",
    )
    db_command_timeout_s: float = Field(
        default=15.0,
        gt=0,
        description="Client-side limit of each Postgres command and connect: a server that "
        "stops answering (network partition) fails the call. Above the statement timeout, "
        "so the server cancels first and the connection stays usable.",
    )
    relay_interval_s: float = Field(
        default=1.0,
        gt=0,
        description="How often the outbox relay looks for committed orders not yet in Redis.",
    )
    relay_min_age_s: float = Field(
        default=2.0,
        ge=0,
        description="Orders younger than this are left to the request that created them.",
    )
    relay_timeout_s: float = Field(
        default=5.0,
        gt=0,
        description="Longest time the outbox relay holds a batch of fills locked while it "
        "sends their orders to Redis; past it the batch is rolled back and retried.",
    )
    dispatch_timeout_s: float = Field(
        default=1.0,
        gt=0,
        description="How long a fill's ack waits for Redis to take its orders before leaving "
        "them to the outbox relay.",
    )
    fill_concurrency: int = Field(
        default=2,
        ge=1,
        description="Fills sized at once in this process; later ones wait in arrival order. "
        "Interleaving many makes each one (and its orders on the feed) finish later; with 1 "
        "the database and Redis wait while the next fill is planned.",
    )
    dedupe_ttl_s: int = Field(
        default=7 * 24 * 3600,
        ge=60,
        description="How long Redis remembers that a bucket of a fill's orders was sent (its "
        "sent marker), so that a resend within it adds nothing.",
    )
    order_ttl_s: float = Field(
        default=30.0,
        gt=0,
        description="Orders carry valid_until = fill time + this; executors drop and report "
        "later ones as expired, so a backlog after an outage fires no stale trades.",
    )
    stream_retention_s: float = Field(
        default=24 * 3600.0,
        gt=0,
        description="Order stream entries older than this are trimmed, but never one that a "
        "consumer group has not acknowledged.",
    )
    trim_interval_s: float = Field(
        default=60.0, gt=0, description="How often order streams are trimmed."
    )
    report_block_ms: int = Field(
        default=5000,
        ge=10,
        le=9000,
        description="XREADGROUP block time of the executor-report reader (below the 10 s "
        "socket timeout); a follower tracked meanwhile ends the read at once.",
    )
    report_claim_idle_ms: int = Field(
        default=30_000,
        ge=10,
        description="Executor reports read but not acknowledged for this long (their reader "
        "died) are taken over by another reader.",
    )
    report_refresh_s: float = Field(
        default=5.0,
        gt=0,
        description="How often the report reader looks for followers created elsewhere.",
    )
    equity_resync_s: float = Field(
        default=30.0,
        gt=0,
        description="Safety-net full reload of the equity cache, besides LISTEN/NOTIFY.",
    )
    reconnect_initial_s: float = Field(
        default=0.5, gt=0, description="First reconnect delay of client-mode leader feeds."
    )
    reconnect_max_s: float = Field(
        default=30.0, gt=0, description="Longest reconnect delay of client-mode leader feeds."
    )
    feed_ping_interval_s: float = Field(
        default=20.0,
        gt=0,
        description="Websocket ping interval of client-mode feeds; a pong missing for as long "
        "again drops the connection and reconnects.",
    )
    feed_idle_timeout_s: float = Field(
        default=0.0,
        ge=0,
        description="Reconnect a client-mode feed that sends no frame for this long, for feeds "
        "that promise heartbeats (0: rely on pings only).",
    )
    venue_idle_timeout_s: float = Field(
        default=45.0,
        gt=0,
        description="Reconnect a venue stream that sends nothing, not even a pong, for this long.",
    )
    venue_max_frame_bytes: int = Field(
        default=16 * 1024 * 1024,
        ge=64 * 1024,
        description="Largest message accepted from a venue stream. Venues send far larger "
        "messages than push leaders may (Hyperliquid's first userFills message is a snapshot "
        "of up to 2,000 fills, about 1 MB): COPYTRADE_MAX_FRAME_BYTES is for push frames.",
    )
    venue_resync_interval_s: float = Field(
        default=30.0,
        gt=0,
        description="How often a venue leader's positions are read over REST and compared "
        "with the tracked ones; a difference seen twice in a row is corrected (a leader "
        "resync) and the followers brought to target.",
    )
    venue_backfill_overlap_s: float = Field(
        default=5.0,
        ge=0,
        description="How far before the last recorded fill a venue backfill starts (overlaps "
        "are dropped by fill id).",
    )
    venue_equity_interval_s: float = Field(
        default=30.0,
        gt=0,
        description="How often a venue leader's equity is read over REST and stored.",
    )
    venue_rest_timeout_s: float = Field(
        default=10.0, gt=0, description="Timeout of each REST call to a venue."
    )
    lease_ttl_s: float = Field(
        default=6.0,
        gt=0,
        description="A leader's listener lease lasts this long unless renewed: the longest "
        "time before another instance takes over the leaders of a dead one.",
    )
    lease_heartbeat_s: float = Field(
        default=2.0,
        gt=0,
        description="How often an instance renews its leases and looks for leaders to run.",
    )
    account_equity_interval_s: float = Field(
        default=30.0,
        gt=0,
        description="How often a follower account's equity (margin balance) and positions are "
        "read from its venue and stored.",
    )
    venue_url_allowlist: list[str] = Field(
        default=[],
        description="Base URLs a follower may give its own account as rest_url or ws_url, as a "
        'JSON list (["https://testnet.binancefuture.com"]); only the admin may set any other. '
        "A URL is allowed when it starts with an entry (scheme, host and port compared "
        "exactly). Empty: followers use the venues' default URLs.",
    )
    exec_claim_idle_ms: int = Field(
        default=10_000,
        ge=10,
        description="Orders an executor read but did not finish for this long (it died) are "
        "taken over by the account's next executor, which asks the venue before resending.",
    )
    exec_read_shard: int = Field(
        default=1000,
        ge=1,
        description="An execute instance reads its accounts' order streams with one blocking "
        "XREADGROUP per this many accounts (1: a read per account).",
    )
    max_frame_bytes: int = Field(
        default=64 * 1024, ge=1024, description="Largest websocket frame accepted."
    )
    ws_compression: bool = Field(
        default=False,
        description="Offer permessage-deflate on websockets. Off by default: compressing "
        "each order message for each feed socket costs CPU in proportion to the sockets, "
        "for messages of about 1 KB (docs/measurements.md).",
    )
    demo_interval_s: float = Field(
        default=1.5, gt=0, description="Seconds between the demo leader's fills."
    )
    max_body_bytes: int = Field(
        default=64 * 1024,
        ge=1024,
        description="Largest REST request body accepted; a larger one answers 413.",
    )
    rate_limit_per_s: float = Field(
        default=50.0,
        gt=0,
        description="REST requests per second allowed per credential, counted in Redis "
        "across instances; past the burst they answer 429 with Retry-After.",
    )
    rate_limit_burst: int = Field(
        default=200,
        ge=1,
        description="Requests a credential may make at once before the per-second rate applies.",
    )
    unauth_rate_limit: str = Field(
        default="20/10 seconds",
        description="Requests per client address without a credential this instance has seen "
        "succeed (no token, an unknown or a wrong one), counted before any lookup and shared "
        "by every instance through Redis; past it they answer 429. Written as the limits "
        "library parses it ('20/10 seconds', '100/minute').",
    )
    feed_queue_bytes: int = Field(
        default=1024 * 1024,
        ge=64 * 1024,
        description="Feed messages one order-feed socket may have waiting, in bytes; a "
        "socket that falls further behind is closed with 1013 (too slow).",
    )
    feed_send_timeout_s: float = Field(
        default=5.0,
        gt=0,
        description="Longest a send to one order-feed socket may take; a client that stops "
        "reading is closed with 1013 after it.",
    )
    book_idle_s: float = Field(
        default=3600.0,
        gt=0,
        description="A leader's cached book (its subscriptions and positions) is dropped "
        "after this long without a fill, and read again by the next one.",
    )
    vector_sizing: bool = Field(
        default=True,
        description="Size target-mode subscriptions without caps or a price band with the "
        "vector path (numpy, whole lot steps); false: every subscription through the Decimal "
        "planner, which gives the same orders.",
    )
    report_attempts: int = Field(
        default=5,
        ge=1,
        description="Attempts, with backoff, to apply a batch of executor reports when "
        "Postgres is unreachable or times out; after them the reports stay unacknowledged "
        "and are read again (report_claim_idle_ms later). Never dead-lettered for that.",
    )
    ws_max_connections_per_key: int = Field(
        default=20,
        ge=1,
        description="Open order-feed websockets per follower key on one instance; one more is "
        "closed with 1013 (the admin token is not limited).",
    )
    ws_allowed_origins: list[str] = Field(
        default=[],
        description='Origins browsers may open websockets from, as a JSON list (["https://app.'
        'example"]); a socket from any other Origin is refused with 403. Empty: allow all '
        "(clients outside browsers send no Origin).",
    )

    instrument_venues: Annotated[list[Venue], NoDecode] = Field(
        default=list(INSTRUMENT_VENUES),
        description="Venues whose instrument rules (lot step, minimums, tick) are loaded from "
        "their public endpoints by processes with the ingest role, comma-separated (empty: "
        "none; rules then come only from PUT /v1/instruments).",
    )
    instrument_urls: dict[Venue, str] = Field(
        default={},
        description='Base URL per venue for its public instrument list, as JSON ({"okx": '
        '"https://www.okx.com"}); a venue not named uses its public API host.',
    )
    instrument_refresh_s: float = Field(
        default=24 * 3600.0, gt=0, description="How often each venue's instrument rules reload."
    )
    instrument_min_refresh_s: float = Field(
        default=60.0,
        ge=0,
        description="A reload asked for after a venue refused an order for its precision or "
        "minimums waits at least this long after the previous load of that venue.",
    )

    roles: Annotated[list[Role], NoDecode] = Field(
        default=list(ROLES),
        min_length=1,
        description="What this process runs, comma-separated: api (the /v1 REST API and the "
        "follower order feed), ingest (the leader push websocket and client-mode feed "
        "listeners), dispatch (outbox relay, executor-report reader, stream trimmer), execute "
        "(places the orders of followers with an exchange account on their venue). Every role "
        "serves /healthz, /readyz and /metrics.",
    )

    @field_validator("roles", "instrument_venues", mode="before")
    @classmethod
    def _split_roles(cls, value: Any) -> Any:
        # "api,ingest" from the environment; a JSON list or a Python list works too.
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    def has_role(self, role: Role) -> bool:
        """Tell whether this process runs ``role``."""
        return role in self.roles

    @model_validator(mode="after")
    def _admin_token_is_safe(self) -> Settings:
        token = self.admin_token.get_secret_value()
        if self.demo and self.credentials_key is None:
            # The demo's venue follower has exchange keys to store: a key for this run.
            from cryptography.fernet import Fernet

            self.credentials_key = SecretStr(Fernet.generate_key().decode())
        if self.demo and not token:
            # Demo mode with no token: make one for this run and let the banner print it.
            self.admin_token = SecretStr(secrets.token_urlsafe(24))
            return self
        if token.lower() in INSECURE_TOKENS or len(token) < MIN_ADMIN_TOKEN_LENGTH:
            raise ValueError(
                "COPYTRADE_ADMIN_TOKEN must be set to a random value of at least "
                f"{MIN_ADMIN_TOKEN_LENGTH} characters (or run with COPYTRADE_DEMO=true)"
            )
        return self

    @model_validator(mode="after")
    def _client_waits_longer_than_server(self) -> Settings:
        if self.db_statement_timeout_ms and (
            self.db_command_timeout_s * 1000 <= self.db_statement_timeout_ms
        ):
            # Else the client gives up first and throws away a connection mid-statement.
            raise ValueError(
                "COPYTRADE_DB_COMMAND_TIMEOUT_S must be above COPYTRADE_DB_STATEMENT_TIMEOUT_MS"
            )
        return self

    @field_validator("unauth_rate_limit")
    @classmethod
    def _limit_parses(cls, value: str) -> str:
        from limits import parse_many

        try:
            parse_many(value)
        except ValueError as exc:
            raise ValueError(f"not a rate limit ('20/10 seconds'): {exc}") from exc
        return value

    @model_validator(mode="after")
    def _leases_renew_in_time(self) -> Settings:
        if self.lease_heartbeat_s * 2 > self.lease_ttl_s:
            # One missed heartbeat must not cost the lease.
            raise ValueError(
                "COPYTRADE_LEASE_HEARTBEAT_S must be at most half COPYTRADE_LEASE_TTL_S"
            )
        return self

    @model_validator(mode="after")
    def _venue_pings_within_idle_timeout(self) -> Settings:
        # A venue stream pings every COPYTRADE_FEED_PING_INTERVAL_S (or sooner): a quiet
        # account's only traffic is the pong, so the idle timeout must cover two pings.
        if self.venue_idle_timeout_s < 2 * self.feed_ping_interval_s:
            raise ValueError(
                f"COPYTRADE_VENUE_IDLE_TIMEOUT_S ({self.venue_idle_timeout_s:g}) must be at "
                f"least twice COPYTRADE_FEED_PING_INTERVAL_S ({self.feed_ping_interval_s:g}): "
                "a quiet venue account would reconnect between pings"
            )
        return self

    @field_validator("instrument_urls", mode="after")
    @classmethod
    def _urls_are_http(cls, value: dict[str, str]) -> dict[str, str]:
        for venue, url in value.items():
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"instrument_urls.{venue}: must be an http(s) URL")
        return value

    @property
    def base_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        return f"http://{host}:{self.port}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return the process-wide settings (read once)."""
    return Settings()
