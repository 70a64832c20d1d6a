"""What the fakes' websocket order APIs share: the connection, and the faults a test sets.

``down`` refuses the handshake (the client falls back to REST); ``drop_after_place`` closes
the socket without answering once an order was placed (an unknown outcome);
``freeze_after_place`` leaves it open but answers nothing more on it (a half-open connection:
the venue gone, no FIN), while new connections are served; ``refuse_next`` answers the next
order requests with the venue's own socket-level codes (code, message) unplaced. Each venue's
subclass answers one text frame (``reply``), keeping per-connection state (a login) in
``session``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect


class Drop(Exception):
    """Placed: close the socket without an answer."""


class Freeze(Exception):
    """Placed: keep the socket open and answer nothing more on it."""


@dataclass
class FakeOrderSocket:
    down: bool = False
    drop_after_place: int = 0
    freeze_after_place: int = 0
    # Seconds the handshake takes (a venue gateway slow to accept).
    accept_delay_s: float = 0.0
    refuse_next: list[tuple[Any, str]] = field(default_factory=list)
    connections: int = 0
    # Each order request as received.
    orders: list[dict[str, Any]] = field(default_factory=list)

    def reply(self, venue: Any, raw: str, session: dict[str, Any]) -> str:
        """The answer to one frame; raise Drop to close unanswered."""
        raise NotImplementedError

    def placed(self) -> None:
        """An order was placed: raise Drop if the test wants its answer lost."""
        if self.drop_after_place > 0:
            self.drop_after_place -= 1
            raise Drop
        if self.freeze_after_place > 0:
            self.freeze_after_place -= 1
            raise Freeze

    def serve(self, venue: Any) -> Callable[[WebSocket], Awaitable[None]]:
        async def endpoint(ws: WebSocket) -> None:
            if self.down:
                await ws.close(code=1013)  # before accept: the handshake is refused
                return
            if self.accept_delay_s:
                await asyncio.sleep(self.accept_delay_s)
            await ws.accept()
            self.connections += 1
            session: dict[str, Any] = {}
            frozen = False
            try:
                while True:
                    raw = await ws.receive_text()
                    if frozen:
                        continue
                    try:
                        answer = self.reply(venue, raw, session)
                    except Drop:
                        await ws.close(code=1011)
                        return
                    except Freeze:
                        frozen = True
                        continue
                    await ws.send_text(answer)
            except WebSocketDisconnect:
                pass

        return endpoint
