"""A small client of the v1 REST API for the commands: errors become readable exits."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Annotated, Any, NoReturn

import httpx
import typer

from app.cli.common import fail

DEFAULT_API_URL = "http://127.0.0.1:8000"

ApiUrl = Annotated[
    str,
    typer.Option(
        "--api-url",
        envvar="COPYTRADE_API_URL",
        help="Base URL of the Copytrade service.",
        show_default=True,
    ),
]
Token = Annotated[
    str | None,
    typer.Option(
        "--token",
        envvar="COPYTRADE_ADMIN_TOKEN",
        help="Bearer token: the admin token (default: $COPYTRADE_ADMIN_TOKEN), or a follower's "
        "API key for its own follower.",
        show_default=False,
    ),
]
# Where the request body's fields sit in 422 locations: the field name is what a user typed.
_LOCATION_PREFIXES = ("body", "query", "path")


def describe_error(response: httpx.Response) -> str:
    """One readable line per problem the API reported, naming the field where it did."""
    try:
        detail: Any = response.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    if isinstance(detail, list):
        lines = []
        for item in detail:
            loc = [str(part) for part in item.get("loc", ())]
            if loc and loc[0] in _LOCATION_PREFIXES:
                loc = loc[1:]
            field = ".".join(loc)
            lines.append(f"{field}: {item.get('msg')}" if field else str(item.get("msg")))
        return "; ".join(lines)
    if detail:
        return str(detail)
    return response.reason_phrase or "no detail"


class ApiClient:
    """Calls one service; every failure prints what went wrong and exits non-zero."""

    def __init__(self, base_url: str, token: str | None, timeout_s: float = 10.0) -> None:
        if not token:
            fail("no token: pass --token or set COPYTRADE_ADMIN_TOKEN", code=2)
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout_s,
        )

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self._http.close()

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """Send one request; return the decoded JSON body (None when empty)."""
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            self._unreachable(exc)
        if response.status_code >= 400:
            self._refused(method, path, response)
        return response.json() if response.content else None

    def stream_lines(self, method: str, path: str, **kwargs: Any) -> Iterator[Any]:
        """Send one request whose answer is NDJSON; yield each decoded line as it arrives."""
        try:
            with self._http.stream(method, path, timeout=None, **kwargs) as response:
                if response.status_code >= 400:
                    response.read()
                    self._refused(method, path, response)
                for line in response.iter_lines():
                    if line.strip():
                        yield json.loads(line)
        except httpx.HTTPError as exc:
            self._unreachable(exc)

    def _unreachable(self, exc: httpx.HTTPError) -> NoReturn:
        fail(
            f"cannot reach the API at {self.base_url} ({type(exc).__name__}: {exc}); "
            "is the service running? (--api-url or COPYTRADE_API_URL)"
        )

    def _refused(self, method: str, path: str, response: httpx.Response) -> NoReturn:
        hint = ""
        if response.status_code in (401, 403):
            hint = " (check --token or COPYTRADE_ADMIN_TOKEN)"
        fail(f"{method} {path} answered {response.status_code}: {describe_error(response)}{hint}")

    def pages(self, path: str, page_size: int = 500) -> list[Any]:
        """GET every page of a list endpoint (``limit``/``offset``)."""
        items: list[Any] = []
        while True:
            page = self.call("GET", path, params={"limit": page_size, "offset": len(items)})
            items.extend(page)
            if len(page) < page_size:
                return items
