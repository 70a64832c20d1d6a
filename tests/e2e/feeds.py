"""Generic leader feeds served by the test: every fill so far on each connection, then live."""

from __future__ import annotations

import contextlib
from collections import Counter, defaultdict

from websockets.asyncio.server import Server, ServerConnection, serve


class ReplayingFeeds:
    """One generic feed per path: every fill so far on connect, then new ones live.

    A generic feed has no backfill API, so it replays: an instance that takes a leader over
    receives what it missed, and the database drops what was already recorded.
    """

    def __init__(self) -> None:
        self.fills: dict[str, list[str]] = defaultdict(list)
        self.sockets: dict[str, set[ServerConnection]] = defaultdict(set)
        # Connections ever made per path, and each one's replay sent: a new owner is
        # listening once its count goes up and its replay is out.
        self.connections: Counter[str] = Counter()
        self.replayed: Counter[str] = Counter()
        self.server: Server | None = None
        self.port = 0

    async def start(self) -> None:
        self.server = await serve(self._handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    def url(self, name: str) -> str:
        return f"ws://127.0.0.1:{self.port}/{name}"

    async def _handle(self, ws: ServerConnection) -> None:
        name = ws.request.path.strip("/") if ws.request else ""
        self.sockets[name].add(ws)
        self.connections[name] += 1
        try:
            for frame in list(self.fills[name]):
                await ws.send(frame)
            self.replayed[name] += 1
            await ws.wait_closed()
        finally:
            self.sockets[name].discard(ws)

    async def publish(self, name: str, frame: str) -> None:
        self.fills[name].append(frame)
        for ws in list(self.sockets[name]):
            # A socket closing now gets the fill on its next connect.
            with contextlib.suppress(Exception):
                await ws.send(frame)

    async def close(self) -> None:
        if self.server:
            self.server.close()
            await self.server.wait_closed()
