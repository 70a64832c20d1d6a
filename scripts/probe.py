"""Print the names of the services (postgres, redis) that do not answer at the given URLs."""

from __future__ import annotations

import asyncio
import sys

import asyncpg
from redis.asyncio import Redis


async def postgres_up(url: str) -> bool:
    # Any answer from the server counts, even "database does not exist": it is up.
    dsn = url.replace("postgresql+asyncpg://", "postgresql://", 1)
    try:
        conn = await asyncpg.connect(dsn, timeout=3)
    except asyncpg.InvalidCatalogNameError:
        return True
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return False
    await conn.close()
    return True


async def redis_up(url: str) -> bool:
    client = Redis.from_url(url, socket_connect_timeout=3)
    try:
        return bool(await client.ping())
    except Exception:
        return False
    finally:
        await client.aclose()


async def main(db_url: str, redis_url: str) -> None:
    pg, rd = await asyncio.gather(postgres_up(db_url), redis_up(redis_url))
    print(" ".join(name for name, ok in (("postgres", pg), ("redis", rd)) if not ok))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
