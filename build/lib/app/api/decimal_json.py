"""Request bodies parsed with JSON numbers as Decimal, so no amount ever passes through float."""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from decimal import Decimal
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute


class _NonFiniteNumber(ValueError):
    """NaN, Infinity or -Infinity: Python's json module accepts them, JSON does not."""


def _reject_constant(name: str) -> Any:
    raise _NonFiniteNumber(name)


class DecimalJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = await self.body()
            try:
                self._json = json.loads(
                    body, parse_float=Decimal, parse_int=int, parse_constant=_reject_constant
                )
            except _NonFiniteNumber as exc:
                # FastAPI answers a JSONDecodeError with its 422 "json_invalid" error; any other
                # exception here would become a bare 400.
                doc = body.decode("utf-8", "replace")
                name = str(exc)
                raise json.JSONDecodeError(
                    f"{name} is not a valid JSON number", doc, max(doc.find(name), 0)
                ) from exc
            except json.JSONDecodeError:
                raise
            except (ValueError, RecursionError) as exc:
                # Bytes that are not UTF-8/16/32, an integer past Python's 4300-digit limit, or
                # nesting deeper than the parser's stack: invalid JSON too, not a 400.
                doc = body.decode("utf-8", "replace")
                raise json.JSONDecodeError(f"invalid JSON: {type(exc).__name__}", doc, 0) from exc
        return self._json


class DecimalRoute(APIRoute):
    """The FastAPI-documented way to swap the Request class for a router's routes."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route_handler(request: Request) -> Response:
            return await handler(DecimalJSONRequest(request.scope, request.receive))

        return route_handler
