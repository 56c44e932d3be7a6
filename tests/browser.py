"""Headless Debian Chromium driven by Playwright, for tests that check a page in a real browser.

Playwright's own browser download cannot run here, so the system chromium (`make system-deps` installs it)
is launched instead. A missing browser FAILS the test: skipping would hide that a check never ran.

    from browser import chromium, watched_page  # noqa: F401  (pytest fixtures)

    def test_page(watched_page):
        watched_page.page.goto(url)
        assert watched_page.requests == [url]
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from playwright.sync_api import Browser, Dialog, Page, sync_playwright

CHROMIUM_PATH = "/usr/bin/chromium"
# --no-sandbox: Chromium refuses to start as root with its sandbox; the rest keep it off the network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1280, "height": 900}


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    """One browser per test module (starting it takes about a second). Not per session: Playwright's sync API
    keeps an asyncio loop running while it is open, which breaks later code that calls asyncio.run (Dagster)."""
    if not os.access(CHROMIUM_PATH, os.X_OK):
        pytest.fail(
            f"Chromium not found at {CHROMIUM_PATH}: the browser tests need Debian's chromium. "
            "Install it with `make system-deps` (or `apt-get install -y chromium`).",
            pytrace=False,
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM_PATH, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@dataclass
class WatchedPage:
    """A fresh page plus everything it did: every request URL (also those a Content-Security-Policy then
    blocked), dialog message, console message (CSP violations land there) and uncaught JS error."""

    page: Page
    requests: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@pytest.fixture
def watched_page(chromium: Browser) -> Iterator[WatchedPage]:
    """A page in its own browser context (no shared cache or storage) that records what it does."""
    context = chromium.new_context(viewport=VIEWPORT)
    watched = WatchedPage(context.new_page())

    def on_dialog(dialog: Dialog) -> None:
        watched.dialogs.append(dialog.message)
        dialog.dismiss()  # an undismissed dialog would block the page

    context.on("request", lambda request: watched.requests.append(request.url))
    watched.page.on("dialog", on_dialog)
    watched.page.on("console", lambda message: watched.console.append(message.text))
    watched.page.on("pageerror", lambda error: watched.errors.append(str(error)))
    yield watched
    context.close()
