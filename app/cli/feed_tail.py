"""``copytrade orders tail`` through the API: the follower's order feed websocket."""

from __future__ import annotations

import asyncio
import json
import signal
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from app.cli.api_client import describe_error
from app.cli.common import err, fail, out
from app.cli.orders import HISTORY, cells, print_row, row_table

POLICY_VIOLATION = 1008  # the feed's answer to a credential it does not accept


class FeedTail:
    """Prints a follower's orders from its feed: the history first if asked, then live."""

    def __init__(self, api_url: str, token: str, follower_id: UUID, as_json: bool) -> None:
        self.api_url = api_url.rstrip("/")
        scheme, sep, rest = self.api_url.partition("://")
        ws_scheme = {"http": "ws", "https": "wss"}.get(scheme, scheme)
        self.ws_url = f"{ws_scheme}{sep}{rest}/v1/followers/{follower_id}/orders/ws"
        self.headers = {"Authorization": f"Bearer {token}"}
        self.follower_id = follower_id
        self.as_json = as_json
        self.seen: set[str] = set()
        self.shown = 0

    async def run(self, from_start: bool, count: int | None) -> int:
        """Follow until Ctrl-C (or TERM), or ``count`` orders; return how many were shown."""
        loop, stop = asyncio.get_running_loop(), asyncio.Event()
        # Installed explicitly: a shell's background job inherits SIGINT ignored.
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        try:
            # A REST call first: a bad token or follower id gets the API's own error line.
            await self._get(f"/v1/followers/{self.follower_id}")
            async with connect(self.ws_url, additional_headers=self.headers, open_timeout=10) as ws:
                err.print(
                    f"Following the order feed of follower {self.follower_id} at {self.api_url} "
                    f"from {'its newest orders' if from_start else 'now'} (Ctrl-C to stop)"
                )
                if not self.as_json:
                    out.print(row_table(show_header=True))
                # Connected first, then the history: nothing falls between the two (an order in
                # both is shown once).
                if from_start:
                    for order in reversed(await self._history()):
                        if count is not None and self.shown >= count:
                            break
                        self._order(order, order["status"], order.get("skip_reason"), order)
                await self._follow(ws, stop, count)
        except ConnectionClosed as exc:
            if exc.rcvd is not None and exc.rcvd.code == POLICY_VIOLATION:
                fail(f"the feed refused the token ({exc.rcvd.reason or 'policy violation'})")
            fail(f"the feed closed: {exc}")
        except InvalidStatus as exc:
            fail(f"the feed at {self.ws_url} answered {exc.response.status_code}")
        except (OSError, InvalidHandshake, TimeoutError, httpx.TransportError) as exc:
            fail(
                f"cannot reach the API at {self.api_url} ({type(exc).__name__}: {exc}); "
                "is the service running? (--api-url or COPYTRADE_API_URL)"
            )
        finally:
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)
        if stop.is_set():
            err.print("stopped")
        return self.shown

    async def _follow(self, ws: ClientConnection, stop: asyncio.Event, count: int | None) -> None:
        stopped = asyncio.ensure_future(stop.wait())
        try:
            while count is None or self.shown < count:
                received = asyncio.ensure_future(ws.recv())
                done, _ = await asyncio.wait(
                    {received, stopped}, return_when=asyncio.FIRST_COMPLETED
                )
                if received not in done:
                    received.cancel()  # websockets' recv() is cancellation-safe
                    return
                self._message(received.result())
        finally:
            stopped.cancel()

    async def _history(self) -> list[dict[str, Any]]:
        orders: list[dict[str, Any]] = await self._get(
            f"/v1/followers/{self.follower_id}/orders", limit=HISTORY
        )
        return orders

    async def _get(self, path: str, **params: Any) -> Any:
        async with httpx.AsyncClient(base_url=self.api_url, headers=self.headers) as http:
            response = await http.get(path, params=params)
        if response.status_code >= 400:
            hint = (
                " (check --token or COPYTRADE_ADMIN_TOKEN)" if response.status_code == 401 else ""
            )
            fail(f"GET {path} answered {response.status_code}: {describe_error(response)}{hint}")
        return response.json()

    def _message(self, raw: str | bytes) -> None:
        try:
            message = json.loads(raw)
        except ValueError:
            err.print("the feed sent a frame that is not JSON; skipped")
            return
        kind = message.get("type")
        if kind == "order":
            order = message.get("order") or {}
            self._order(order, message.get("status", ""), message.get("skip_reason"), message)
        elif kind == "order_status":
            self._status(message)

    def _order(
        self, order: dict[str, Any], status: str, reason: str | None, raw: dict[str, Any]
    ) -> None:
        order_id = str(order.get("order_id", ""))
        if order_id in self.seen:
            return
        self.seen.add(order_id)
        self.shown += 1
        if self.as_json:
            out.print(json.dumps(raw), markup=False, highlight=False, soft_wrap=True)
        else:
            print_row(cells(order, status, reason, datetime.now(UTC)))
        out.file.flush()

    def _status(self, message: dict[str, Any]) -> None:
        if self.as_json:
            out.print(json.dumps(message), markup=False, highlight=False, soft_wrap=True)
        else:
            status = message.get("status", "")
            reason = message.get("reason")
            price = message.get("avg_price")
            print_row(
                [
                    str(message.get("at", ""))[:23],
                    str(message.get("order_id", "")),
                    "",
                    "",
                    str(message.get("filled_qty", "")),
                    f"@ {price}" if price else "",
                    "",
                    "",
                    "",
                    f"{status}: {reason}" if reason else str(status),
                ]
            )
        out.file.flush()
