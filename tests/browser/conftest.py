"""A real headless Chromium (Debian's /usr/bin/chromium, installed by scripts/ensure-browser.sh)
driven by Playwright against the live server; each test's screenshots go to
test-output/<test name>/."""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright

from tests.conftest import ROOT

CHROMIUM = os.environ.get("COPYTRADE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture(scope="session")
def chromium_path() -> str:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/ensure-browser.sh (make test does)")
    return CHROMIUM


@pytest.fixture
async def browser(chromium_path: str) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=chromium_path, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest.fixture
def page_errors() -> list[str]:
    """Script and console errors of the page; a test expecting some clears them."""
    return []


@pytest.fixture
async def page(browser: Browser, page_errors: list[str]) -> AsyncIterator[Page]:
    """A fresh browser context (no shared session storage) with a desktop-sized window.

    Any script error on the page, or console error (a Content-Security-Policy violation is
    one), fails the test that caused it.
    """
    context = await browser.new_context(viewport={"width": 1360, "height": 1100})
    page = await context.new_page()
    errors = page_errors
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    try:
        yield page
    finally:
        await context.close()
    assert errors == [], errors


@pytest.fixture
def output_dir(request: pytest.FixtureRequest) -> Path:
    """test-output/<test name>/, emptied (the Makefile's clean removes test-output)."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
    path = ROOT / "test-output" / name
    path.mkdir(parents=True, exist_ok=True)
    for old in path.glob("*.png"):
        old.unlink()
    return path
