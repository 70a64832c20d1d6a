"""Fixtures of the integration tests that drive a Runtime in-process."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from app.runtime import Runtime
from tests.conftest import make_settings


@pytest.fixture
async def live(clean: None) -> AsyncIterator[Runtime]:
    """A runtime with its connections open but nothing started: no LISTEN, no relay, no
    listeners. Equity reaches its cache only through ``live.equity.reload()``."""
    runtime = Runtime(make_settings())
    await runtime.open()
    yield runtime
    await runtime.stop()
