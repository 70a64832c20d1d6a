"""Follower execution, measured: the real service (every role) places orders on a loopback
Binance USD-M venue (the demo's, in this process, stamping when each order arrives), against
the naive way in the same run.

    python -m bench.execution [--fills 200] [--accounts 1000] [--fan-fills 3]

- latency, 1 follower, a fill every 20 ms: push frame sent -> the order received by the
  venue (p50, p99), with the split at the follower's order stream (frame -> entry, entry ->
  venue);
- fan-out, N accounts: one fill -> the last of its N orders received by the venue.

Ours: the execute role's executors (the order socket, ws-fapi ``order.place``). The naive
way (``bench.naive_execution``, its own process): the same service sizes and enqueues the
orders of followers without an account; it reads their streams and places each order in
turn over a new connection with one signed REST request.

Uses the bench's database and Redis db (COPYTRADE_BENCH_DATABASE_URL, _REDIS_URL).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import asyncpg
import httpx
from aiohttp import web
from redis.asyncio import Redis
from websockets.asyncio.client import connect

from app.demo.venue import WS_FAPI_PATH, DemoVenue
from app.dispatch.keys import order_stream
from app.security.crypto import CredentialCipher, generate_key
from app.security.tokens import PUSH_TOKEN_PREFIX, hash_secret, new_secret
from app.venues.executor import GROUP
from bench.cpu import cpu_seconds, wait_until_idle
from bench.service import ROOT, Service
from bench.stats import Measurement, latency_summary

DATABASE_URL = os.environ.get(
    "COPYTRADE_BENCH_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/copytrade_bench"
)
REDIS_URL = os.environ.get("COPYTRADE_BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")
ADMIN = {"Authorization": "Bearer bench-admin-token-0123456789"}
# The venue listens on this many ports: the client applies Binance's per-host request weight
# (2,400 a minute; an account read weighs 35), so a thousand accounts on one port would take
# a quarter of an hour to be read before their first order.
VENUE_PORTS = 32
EQUITY = "1000000"
SEED_CONCURRENCY = 8
# Between one follower's fills: the previous order's report and account read are the same
# process's work, and a fill every 20 ms is the main bench's paced latency rate.
GAP_S = 0.02


class TimedVenue(DemoVenue):
    """The demo venue, noting when each client order id first arrives (REST or socket).

    Each follower trades on an account of its own (its own key, positions and user data
    stream), as on Binance: an order's events reach only its account's stream.
    """

    def __init__(self) -> None:
        super().__init__({"BTCUSDT": Decimal("50000")}, Decimal(EQUITY))
        self.arrived: dict[str, float] = {}
        self.changed = asyncio.Event()

    async def _order(self, request: web.Request) -> web.Response:
        if request.method == "POST":
            self._arrive(request.query.get("newClientOrderId", ""))
        return await super()._order(request)

    async def _ws_order(self, raw: Mapping[str, Any]) -> tuple[int, dict[str, Any]]:
        self._arrive(str(raw.get("newClientOrderId", "")))
        return await super()._ws_order(raw)

    def _arrive(self, client_id: str) -> None:
        """Stamped as its handler receives it, before the venue's own work on it (the
        signature check, the fill, the answer and the pushes): that is the venue's CPU, in
        this process, not the service's."""
        self.arrived.setdefault(client_id, time.perf_counter())
        self.changed.set()

    async def until(self, count: int) -> float:
        while len(self.arrived) < count:
            self.changed.clear()
            await self.changed.wait()
        return max(self.arrived.values())


@asynccontextmanager
async def serve_ports(venue: DemoVenue, count: int) -> AsyncIterator[list[int]]:
    runner = web.AppRunner(venue.app(), access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    for _ in range(count):
        await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield [int(address[1]) for address in runner.addresses]
    finally:
        await venue.close()
        await runner.cleanup()


@dataclass
class Leader:
    id: str
    push_token: str
    followers: list[str]


class Seeder:
    def __init__(self, http: httpx.AsyncClient, venue: TimedVenue, ports: list[int]) -> None:
        self.http = http
        self.venue = venue
        self.ports = ports

    async def call(self, method: str, path: str, **kw: Any) -> Any:
        for attempt in range(5):  # a 5xx (Postgres out of connections) is tried again
            response = await self.http.request(method, path, headers=ADMIN, **kw)
            if response.status_code < 500:
                break
            await asyncio.sleep(1 + attempt)
        assert response.status_code in (200, 201), response.text
        return response.json()

    async def leader(self, name: str, followers: int, *, accounts: bool) -> Leader:
        """A push leader and its followers: on venue accounts, or (naive) with posted equity."""
        body = await self.call("POST", "/v1/leaders", json={"name": name, "feed": {"kind": "push"}})
        await self.call("POST", f"/v1/leaders/{body['id']}/equity", json={"equity": "10000000"})
        slots = asyncio.Semaphore(SEED_CONCURRENCY)

        async def one(n: int) -> str:
            async with slots:
                follower = await self.call("POST", "/v1/followers", json={"name": f"{name}-{n}"})
                fid: str = follower["id"]
                await self.call(
                    "POST",
                    f"/v1/followers/{fid}/subscriptions",
                    json={"leader_id": body["id"], "multiplier": "1"},
                )
                if accounts:
                    port = self.ports[n % len(self.ports)]
                    await self.call("PUT", f"/v1/followers/{fid}/account", json=self.account(port))
                else:
                    await self.call("POST", f"/v1/followers/{fid}/equity", json={"equity": EQUITY})
                return fid

        ids = list(await asyncio.gather(*(one(n) for n in range(followers))))
        return Leader(body["id"], body["push_token"], ids)

    def account(self, port: int) -> dict[str, str]:
        """A new account of the venue's, for one follower."""
        account = self.venue.add_account()
        return {
            "kind": "binance-usdm",
            "api_key": account.api_key,
            "api_secret": account.api_secret,
            "rest_url": f"http://127.0.0.1:{port}",
            "ws_url": f"ws://127.0.0.1:{port}",
            "ws_api_url": f"ws://127.0.0.1:{port}{WS_FAPI_PATH}",
        }

    async def until_ready(self, followers: list[str]) -> None:
        """Every account read from the venue (its first order waits for that): asked of
        Postgres once a second rather than of the API per account."""
        ids = [uuid.UUID(f) for f in followers]
        conn = await asyncpg.connect(DATABASE_URL.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            for _ in range(600):
                ready = await conn.fetchval(
                    "SELECT count(*) FROM follower_account"
                    " WHERE follower_id = ANY($1::uuid[]) AND status = 'ready'",
                    ids,
                )
                if ready == len(ids):
                    return
                await asyncio.sleep(1)
        finally:
            await conn.close()
        raise RuntimeError(f"{len(ids) - ready} accounts never ready")


async def seed_direct(
    name: str,
    followers: int,
    *,
    accounts: list[dict[str, str]] | None,
    cipher: CredentialCipher,
    redis: Redis,
) -> Leader:
    """A push leader and its followers, written straight into Postgres (COPY) and Redis, as
    the API would (``accounts``: one account config each, else posted equity): a thousand
    followers made through the API took minutes on a loaded machine. The running service
    learns of them from the subscription rows' notifications, the equity trigger, the report
    reader's look for followers made elsewhere, and the execute instance's lease rounds."""
    conn = await asyncpg.connect(DATABASE_URL.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        leader_id = uuid.uuid4()
        token = new_secret(PUSH_TOKEN_PREFIX)
        ids = [uuid.uuid4() for _ in range(followers)]
        async with conn.transaction():
            await conn.execute(
                "INSERT INTO leader (id, name, feed_kind, push_token_hash)"
                " VALUES ($1, $2, 'push', $3)",
                leader_id, name, hash_secret(token),
            )  # fmt: skip
            await conn.copy_records_to_table(
                "follower",
                records=[(f, f"{name}-{n}", uuid.uuid4().hex * 2) for n, f in enumerate(ids)],
                columns=["id", "name", "api_key_hash"],
            )
            snapshots: list[tuple[uuid.UUID | None, uuid.UUID | None, Decimal]] = [
                (None, leader_id, Decimal("10000000"))
            ]
            if accounts is None:
                snapshots += [(f, None, Decimal(EQUITY)) for f in ids]
            await conn.copy_records_to_table(
                "equity_snapshot", records=snapshots, columns=["follower_id", "leader_id", "equity"]
            )
            if accounts is not None:
                async with redis.pipeline(transaction=False) as pipe:
                    for f in ids:  # open_fence: the group before the account exists
                        pipe.xgroup_create(order_stream(f), GROUP, id="$", mkstream=True)
                    await pipe.execute()
                await conn.copy_records_to_table(
                    "follower_account",
                    records=[
                        (f, "binance-usdm", json.dumps(config), cipher.encrypt(json.dumps(keys)))
                        for f, (config, keys) in zip(ids, map(_split, accounts), strict=True)
                    ],
                    columns=["follower_id", "kind", "config", "secret"],
                )
            await conn.copy_records_to_table(
                "subscription",
                records=[(uuid.uuid4(), f, leader_id, Decimal(1), "active") for f in ids],
                columns=["id", "follower_id", "leader_id", "multiplier", "status"],
            )
    finally:
        await conn.close()
    return Leader(str(leader_id), token, [str(f) for f in ids])


def _split(account: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """(stored config, secrets) of an account body."""
    secrets = {k: account[k] for k in ("api_key", "api_secret")}
    config = {k: v for k, v in account.items() if k not in secrets and k != "kind"}
    return config, secrets


def prepare() -> None:
    env = {**os.environ, "COPYTRADE_DATABASE_URL": DATABASE_URL}
    subprocess.run(
        [sys.executable, str(ROOT / "scripts/createdb.py"), DATABASE_URL], env=env, check=True
    )
    subprocess.run([sys.executable, "-m", "app.cli", "migrate"], env=env, check=True, cwd=ROOT)


async def reset() -> None:
    redis = Redis.from_url(REDIS_URL)
    await redis.flushdb()
    await redis.aclose()
    conn = await asyncpg.connect(DATABASE_URL.replace("postgresql+asyncpg://", "postgresql://"))
    await conn.execute(
        "TRUNCATE leader, follower, instrument, equity_snapshot, subscription, follower_order,"
        " leader_fill, subscription_position_vector, subscription_position_correction,"
        " leader_position, service_instance CASCADE"
    )
    await conn.close()


@asynccontextmanager
async def naive_executor(venue: TimedVenue, port: int, followers: list[str]) -> AsyncIterator[None]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.naive_execution", "--redis-url", REDIS_URL,
        "--rest-url", f"http://127.0.0.1:{port}", "--api-key", venue.api_key,
        "--api-secret", venue.api_secret, cwd=ROOT,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stdin is not None
    assert process.stdout is not None
    process.stdin.write("".join(f"{f}\n" for f in followers).encode())
    await process.stdin.drain()
    process.stdin.close()
    if (await asyncio.wait_for(process.stdout.readline(), 30)).strip() != b"ready":
        raise RuntimeError("the naive executor did not start")
    try:
        yield
    finally:
        process.kill()
        await process.wait()


class Stamps:
    """When each order entered a follower's stream (XREAD beside the consumers)."""

    def __init__(self, redis: Redis, follower_id: str) -> None:
        self.redis = redis
        self.key = order_stream(follower_id)
        self.at: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None

    async def _watch(self) -> None:
        last: bytes | str = "0-0"
        while True:
            batch: Any = await self.redis.xread({self.key: last}, block=1000)
            for _key, entries in batch:
                for entry_id, fields in entries:
                    last = entry_id
                    self.at[json.loads(fields[b"order"])["order_id"]] = time.perf_counter()

    def __enter__(self) -> Stamps:
        self._task = asyncio.create_task(self._watch())
        return self

    def __exit__(self, *_: object) -> None:
        if self._task is not None:
            self._task.cancel()


async def fills(
    ws_url: str,
    leaders: list[Leader],
    venue: TimedVenue,
    count: int,
    warm: int,
    settle_pid: int | None = None,
    cpu: list[tuple[float, float]] | None = None,
) -> list[tuple[list[float], list[tuple[float, str]]]]:
    """Send ``warm + count`` fills to each leader, the leaders taking turns (so that each
    sees the machine's load alike); per leader, the sample of each measured fill (frame sent
    -> the last of its orders at the venue) and (sent, client id) of each measured fill (the
    client id of its one order, or "" when it has several). ``cpu`` gets, per measured fill,
    the CPU seconds ``settle_pid`` spent until its last order arrived, and in all."""
    out: list[tuple[list[float], list[tuple[float, str]]]] = [([], []) for _ in leaders]
    async with contextlib.AsyncExitStack() as stack:
        sockets = [
            await stack.enter_async_context(
                connect(
                    f"{ws_url}/v1/leaders/{leader.id}/fills/ws",
                    additional_headers={"Authorization": f"Bearer {leader.push_token}"},
                )
            )
            for leader in leaders
        ]
        for n in range(warm + count):
            for leader, ws, (samples, sent) in zip(leaders, sockets, out, strict=True):
                side = "buy" if n % 2 == 0 else "sell"
                frame = {"type": "fill", "fill_id": f"{leader.id[:8]}-{n}", "symbol": "BTCUSDT",
                         "side": side, "qty": "1", "price": "50000"}  # fmt: skip
                per_fill = len(leader.followers)
                before = set(venue.arrived) if per_fill == 1 else None
                expected = len(venue.arrived) + per_fill
                cpu_before = cpu_seconds(settle_pid) if settle_pid is not None else 0.0
                started = time.perf_counter()
                await ws.send(json.dumps(frame))
                last = await asyncio.wait_for(venue.until(expected), 120)
                cpu_last = cpu_seconds(settle_pid) if settle_pid is not None else 0.0
                await ws.recv()
                if n >= warm:
                    samples.append(last - started)
                    if before is not None:
                        (client_id,) = set(venue.arrived) - before
                        sent.append((started, client_id))
                    else:
                        sent.append((started, ""))
                if settle_pid is not None:  # the accounts' aftermath (reports, reads) done
                    await wait_until_idle(settle_pid, busy_share=0.25, limit_s=30)
                    if cpu is not None and n >= warm:
                        spent = cpu_seconds(settle_pid) - cpu_before
                        cpu.append((cpu_last - cpu_before, spent))
                else:
                    await asyncio.sleep(GAP_S)
    return out


async def run(fills_n: int, accounts: int, fan_fills: int) -> list[Measurement]:
    await reset()
    venue = TimedVenue()
    redis = Redis.from_url(REDIS_URL)
    async with serve_ports(venue, VENUE_PORTS) as ports:
        # Executors in a process of their own (an execute-only instance, as README's "Running
        # only the execute role"), like the naive executor: neither takes the CPU of the
        # process that receives the fills and sizes them.
        key = generate_key()
        service = Service(DATABASE_URL, REDIS_URL, ROOT / "bench/results/execution.log")
        executor = Service(DATABASE_URL, REDIS_URL, ROOT / "bench/results/execute-role.log")
        for one, roles in ((service, "api,ingest,dispatch"), (executor, "execute")):
            one.env.update(
                COPYTRADE_ROLES=roles,
                COPYTRADE_CREDENTIALS_KEY=key,
                COPYTRADE_RATE_LIMIT_PER_S="100000",
                COPYTRADE_RATE_LIMIT_BURST="100000",
                # One instance holds every account: a lease lost to a slow heartbeat on a
                # loaded machine would stop its executors in the middle of the run.
                COPYTRADE_LEASE_TTL_S="60",
                COPYTRADE_LEASE_HEARTBEAT_S="5",
                # Postgres's connections are shared with whatever else runs on the machine.
                COPYTRADE_DB_POOL_SIZE="4",
            )
        await service.start()
        await executor.start()
        assert service.process is not None
        assert executor.process is not None
        try:
            async with httpx.AsyncClient(base_url=service.base_url, timeout=60) as http:
                seeder = Seeder(http, venue, ports)
                await seeder.call(
                    "PUT", "/v1/instruments/BTCUSDT", json={"qty_step": "0.001", "min_qty": "0.001"}
                )
                # One follower first, alone on the execute instance; then the thousand.
                single = await seeder.leader("one", 1, accounts=True)
                naive_single = await seeder.leader("n-one", 1, accounts=False)
                await seeder.until_ready(single.followers)
                await wait_until_idle(executor.process.pid, busy_share=0.25, limit_s=60)
                results = await _single(
                    service, executor.process.pid, venue, redis, ports[0], single,
                    naive_single, fills_n,
                )  # fmt: skip
                cipher = CredentialCipher([key])
                configs = [seeder.account(ports[n % len(ports)]) for n in range(accounts)]
                fan = await seed_direct(
                    "fan", accounts, accounts=configs, cipher=cipher, redis=redis
                )
                naive_fan = await seed_direct(
                    "n-fan", accounts, accounts=None, cipher=cipher, redis=redis
                )
                await seeder.until_ready(fan.followers)
            await wait_until_idle(executor.process.pid, busy_share=0.25, limit_s=60)
            results += await _fanout(
                service, executor.process.pid, venue, redis, ports[0], fan, naive_fan, fan_fills
            )
        finally:
            await executor.stop()
            await service.stop()
            await redis.aclose()
    for m in results:
        if "p50" not in m.ours:
            figures = ", ".join(f"{key} {value:.0f}" for key, value in m.ours.items())
            print(f"{m.name}: {figures} ({m.unit})", flush=True)
            continue
        ratio = m.ratios().get("p50")
        tail = f", {ratio:.1f}x naive" if ratio else ""
        print(f"{m.name}: p50 {m.ours['p50']:.2f} ms, p99 {m.ours['p99']:.2f} ms{tail}", flush=True)
    return results


async def _single(
    service: Service,
    executor_pid: int,
    venue: TimedVenue,
    redis: Redis,
    port: int,
    single: Leader,
    naive: Leader,
    fills_n: int,
) -> list[Measurement]:
    assert service.process is not None
    pids = {"service": service.process.pid, "execute": executor_pid}
    with Stamps(redis, single.followers[0]) as stamps:
        async with naive_executor(venue, port, naive.followers):
            before = {role: cpu_seconds(pid) for role, pid in pids.items()}
            (ours, sent), (base, _) = await fills(
                service.ws_url, [single, naive], venue, fills_n, warm=20
            )
            # Whatever the last fill set off (its report, the account read after it) counted.
            await asyncio.sleep(0.5)
            cpu = {role: (cpu_seconds(pid) - before[role]) for role, pid in pids.items()}
    split = [
        (stamps.at[cid] - started, venue.arrived[cid] - stamps.at[cid])
        for started, cid in sent
        if cid in stamps.at
    ]
    return [
        Measurement(
            "execution, 1 follower",
            "ms",
            latency_summary(ours),
            latency_summary(base),
            "push frame sent -> order received by a loopback venue, a fill every 20 ms, ours"
            " and the naive one's in turn; ours over the order socket, naive: a new connection"
            " and a signed REST request per order",
        ),
        Measurement(
            "  of which frame -> stream",
            "ms",
            latency_summary([a for a, _ in split]),
            notes="frame sent -> the order in the follower's stream",
        ),
        Measurement(
            "  of which stream -> venue",
            "ms",
            latency_summary([b for _, b in split]),
            notes="the order in the stream -> received by the venue (the executor)",
        ),
        Measurement(
            "CPU per fill pair, 1 follower",
            "us",
            {role: spent / (fills_n + 20) * 1e6 for role, spent in cpu.items()},
            notes="CPU time (/proc) over the run, per pair of fills (ours and naive's, each one"
            " order): service = sizing both, applying our order's report; execute = placing"
            " ours, its account reads, drift checks",
        ),
    ]


async def _fanout(
    service: Service,
    executor_pid: int,
    venue: TimedVenue,
    redis: Redis,
    port: int,
    fan: Leader,
    naive: Leader,
    fan_fills: int,
) -> list[Measurement]:
    # Each fill after the previous one's aftermath (reports, pushes, account reads) is done.
    cpu: list[tuple[float, float]] = []
    [(ours, sent)] = await fills(
        service.ws_url, [fan], venue, fan_fills, warm=1, settle_pid=executor_pid, cpu=cpu
    )
    enqueued, executed = await _fan_split(redis, venue, fan, [started for started, _ in sent])
    async with naive_executor(venue, port, naive.followers):
        [(base, _)] = await fills(service.ws_url, [naive], venue, 1, warm=0)
    n = len(fan.followers)
    return [
        Measurement(
            f"execution, 1 fill -> {n:,} accounts",
            "ms",
            latency_summary(ours),
            latency_summary(base),
            f"frame sent -> the last of {n:,} orders received, {n:,} accounts on one venue"
            f" ({VENUE_PORTS} ports); {fan_fills} fill(s), naive 1",
        ),
        Measurement(
            "  of which frame -> last enqueued",
            "ms",
            latency_summary(enqueued),
            notes="frame sent -> the last of the fill's orders in its follower's stream",
        ),
        Measurement(
            "  of which last enqueued -> last at venue",
            "ms",
            latency_summary(executed),
            notes="the last order in a stream -> the last order received by the venue",
        ),
        Measurement(
            "  executor CPU per order, to the last",
            "us",
            latency_summary([a / n * 1000 for a, _ in cpu]),
            notes="the execute instance's CPU from the frame sent to the last order received,"
            " per order",
        ),
        Measurement(
            "  executor CPU per order, in all",
            "us",
            latency_summary([b / n * 1000 for _, b in cpu]),
            notes="the same until the instance is idle again (reports, pushes, account reads)",
        ),
    ]


async def _fan_split(
    redis: Redis, venue: TimedVenue, fan: Leader, starts: list[float]
) -> tuple[list[float], list[float]]:
    """Per measured fill: (frame sent -> the last of its orders enqueued, that -> the last of
    them received by the venue), from the stream entry ids (the ms they were added at)."""
    async with redis.pipeline(transaction=False) as pipe:
        for follower in fan.followers:
            pipe.xrange(order_stream(follower))
        streams: list[Any] = await pipe.execute()
    # perf_counter -> epoch seconds
    offset = time.time() - time.perf_counter()
    measured = len(starts)
    enqueued: list[float] = []
    executed: list[float] = []
    for k in range(measured):
        # The stream's entries of the measured fills are its last ones, in fill order.
        entries = [entries[len(entries) - measured + k] for entries in streams]
        last_in = max(int(entry_id.split(b"-")[0]) / 1000 for entry_id, _ in entries)
        last_at = offset + max(
            venue.arrived[json.loads(fields[b"order"])["order_id"]] for _, fields in entries
        )
        enqueued.append(last_in - (starts[k] + offset))
        executed.append(last_at - last_in)
    return enqueued, executed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--fills", type=int, default=200)
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--fan-fills", type=int, default=3)
    args = parser.parse_args()
    prepare()
    from bench.stats import render

    print(render(asyncio.run(run(args.fills, args.accounts, args.fan_fills))))


if __name__ == "__main__":
    main()
