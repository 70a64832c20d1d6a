"""Create the database named in a SQLAlchemy URL if it does not exist yet."""

from __future__ import annotations

import asyncio
import sys
from urllib.parse import urlparse, urlunparse

import asyncpg


async def create_database(url: str) -> None:
    parsed = urlparse(url.replace("postgresql+asyncpg://", "postgresql://", 1))
    name = parsed.path.lstrip("/")
    maintenance = urlunparse(parsed._replace(path="/postgres"))
    conn = await asyncpg.connect(maintenance)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            quoted = '"' + name.replace('"', '""') + '"'
            await conn.execute(f"CREATE DATABASE {quoted}")
            print(f"created database {name}")
    finally:
        await conn.close()


if __name__ == "__main__":
    asyncio.run(create_database(sys.argv[1]))
