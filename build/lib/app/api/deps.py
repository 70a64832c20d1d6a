"""Typed dependencies: the runtime and the request's unit of work."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request

from app.db.session import UnitOfWork
from app.runtime import Runtime


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


async def get_uow(request: Request) -> AsyncIterator[UnitOfWork]:
    """The request's single commit point: commit on success, roll back on any error."""
    async with get_runtime(request).unit_of_work() as uow:
        yield uow
        await uow.commit()


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
# scope="function": commit before the response is sent, so a 2xx means "committed".
UowDep = Annotated[UnitOfWork, Depends(get_uow, scope="function")]
