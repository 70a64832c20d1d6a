"""The error responses each route declares, so the OpenAPI schema lists every status it answers."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ErrorOut(BaseModel):
    """FastAPI's error body: a message, or (for request validation) a list of errors."""

    detail: str | list[dict[str, Any]] = Field(
        description="What was wrong: a message naming the field or the rule."
    )


_DESCRIPTIONS = {
    401: "Missing or invalid bearer token",
    403: "Admin token required",
    404: "Not found (or not this follower's)",
    409: "Conflict with the current state",
    422: "Invalid request, or a rule of the resource refused it",
    429: "Rate limit exceeded: retry after Retry-After seconds",
}
# The rate limit (app.api.limits) applies to every /v1 route, whatever else it answers.
_ALWAYS = (429,)


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` entry for these error statuses.

    Declaring 422 here replaces FastAPI's default list-only validation body: use it only where
    the route itself also answers 422 with a message.
    """
    return {
        code: {"model": ErrorOut, "description": _DESCRIPTIONS[code]}
        for code in sorted({*codes, *_ALWAYS})
    }
