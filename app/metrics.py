"""Prometheus metrics, exposed at /metrics.

Label values speak the API's vocabulary: an order counted ``dispatched`` is one the API and the
dashboard show as dispatched. Every label value known in advance is created at import, at
zero, so that a rule over it (``increase(...) > 0``) has a series to evaluate before the first
event rather than nothing (deploy/prometheus/alerts.yml; the README lists each metric).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from app.domain.model import SkipReason
from app.domain.quarantine import QuarantineReason

FILLS = Counter("copytrade_fills_total", "Leader fills received", ["status"])
ORDERS = Counter(
    "copytrade_orders_total",
    "Follower orders created: dispatched (sent to the follower's stream) or skipped (reason)",
    ["status", "reason"],
)
FRAMES_REJECTED = Counter(
    "copytrade_frames_rejected_total", "Feed frames dropped as malformed or unknown", ["source"]
)
RECONNECTS = Counter("copytrade_feed_reconnects_total", "Client-mode feed reconnects")
LEADER_RESYNCS = Counter(
    "copytrade_leader_resyncs_total",
    "Leader positions corrected to the venue's, and their followers brought to target",
    ["venue"],
)
VENUE_ROWS_QUARANTINED = Counter(
    "copytrade_venue_rows_quarantined_total",
    "Venue rows (live or backfill) that could not be read, kept aside while the rest applied",
    ["venue", "reason"],
)
FILLS_BACKFILLED = Counter(
    "copytrade_fills_backfilled_total",
    "Venue fills recovered over REST after a (re)connect",
    ["venue"],
)
LEASES_OWNED = Gauge("copytrade_feed_leases_owned", "Leader listeners this instance owns")
LOOP_ERRORS = Counter("copytrade_loop_errors_total", "Errors caught by supervised loops", ["loop"])
DISPATCH_ERRORS = Counter(
    "copytrade_dispatch_errors_total", "Enqueue attempts that failed (the relay retries)"
)
RELAYED = Counter("copytrade_relayed_orders_total", "Orders sent to Redis by the outbox relay")
LISTENERS_CONNECTED = Gauge("copytrade_listeners_connected", "Client-mode feeds connected now")
FEED_SOCKETS = Gauge("copytrade_feed_sockets", "Open order-feed websockets")
FILL_LATENCY = Histogram(
    "copytrade_fill_seconds",
    "Fill received to its orders enqueued",
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
)
OUTBOX_BACKLOG = Gauge("copytrade_outbox_backlog", "Orders the relay found pending last time")
REPORTS = Counter(
    "copytrade_reports_total",
    "Executor reports read: applied, or dead_lettered (malformed or contradicting its order, "
    "moved to copytrade:reports-dead:{follower})",
    ["outcome"],
)
STAGE_LATENCY = Histogram(
    "copytrade_stage_seconds",
    "Time per stage of a fill: sized (all subscriptions planned), committed (received -> "
    "durable), enqueued (committed -> in the followers' streams)",
    ["stage"],
    buckets=(0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
)
FILLS_QUARANTINED = Counter(
    "copytrade_fills_quarantined_total",
    "Leader fills too absurd to size, kept in quarantined_fill instead",
    ["reason"],
)
AUTH_LOOKUPS = Counter(
    "copytrade_auth_lookups_total", "Credentials looked up in Postgres (follower keys, push tokens)"
)
RATE_LIMITED = Counter(
    "copytrade_rate_limited_total", "Requests refused with 429 (or 1013 for a handshake)", ["limit"]
)
RATE_LIMIT_ERRORS = Counter(
    "copytrade_rate_limit_errors_total", "Rate-limit checks that failed (Redis); let through"
)
FEED_SLOW_CLOSED = Counter(
    "copytrade_feed_slow_closed_total",
    "Order-feed sockets closed with 1013 for falling behind",
    ["reason"],
)
DB_TIMEOUTS = Counter(
    "copytrade_db_timeouts_total",
    "Postgres statements that hit a timeout (statement, lock or client-side)",
    ["where"],
)
REPORT_RETRIES = Counter(
    "copytrade_report_retries_total", "Batches of executor reports retried after a transient error"
)
BOOKS_EVICTED = Counter("copytrade_books_evicted_total", "Idle leaders' books dropped from memory")
INSTRUMENT_ROWS_SKIPPED = Counter(
    "copytrade_instrument_rows_skipped_total",
    "Instrument rows from a venue's public list refused as malformed (their neighbours kept)",
    ["venue"],
)
INSTRUMENT_LOADS = Counter(
    "copytrade_instrument_loads_total",
    "Loads of a venue's instrument rules, by outcome (ok, error)",
    ["venue", "outcome"],
)
READY = Gauge(
    "copytrade_ready",
    "1 when this instance answers /readyz with 200 (Postgres, Redis, listeners up, not draining)",
)
DRAINING = Gauge("copytrade_draining", "1 once this instance has begun its SIGTERM drain")

for _status in ("accepted", "duplicate"):
    FILLS.labels(status=_status)
ORDERS.labels(status="dispatched", reason="")
for _reason in SkipReason:
    ORDERS.labels(status="skipped", reason=_reason.value)
for _outcome in ("applied", "dead_lettered"):
    REPORTS.labels(outcome=_outcome)
for _quarantine in QuarantineReason:
    FILLS_QUARANTINED.labels(reason=_quarantine.value)
FOLLOWER_DRIFT = Gauge(
    "copytrade_follower_drift",
    "A follower's drift from its target (venue position - target - adopted) in notional terms, "
    "as a fraction of its equity; 0 while within its drift_tolerance. Set by the instance "
    "whose executor holds the follower's account.",
    ["follower", "symbol"],
)
