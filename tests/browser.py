"""A real browser for the console's tests: Debian's chromium, driven by Playwright, headless.
Screenshots go to ``$RXFILL_SCREENSHOTS`` (``make pictures`` sets docs/console), else to
build/screenshots, as test artefacts."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from playwright.async_api import Browser, Page, async_playwright, expect

from tests.sites import PASSWORD, Site

CHROMIUM = os.environ.get("RXFILL_CHROMIUM", "/usr/bin/chromium")
SHOTS = Path(os.environ.get("RXFILL_SCREENSHOTS", "build/screenshots"))
SHOTS.mkdir(parents=True, exist_ok=True)
SCREEN = {"width": 1280, "height": 800}
"""The console's touch screen."""


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    """The system's chromium (``.ci/run`` installs Debian's package where it is missing)."""
    if shutil.which(CHROMIUM) is None:
        raise RuntimeError(f"no browser at {CHROMIUM}: install Debian's chromium "
                           f"(apt-get install chromium, as .ci/run does) or set RXFILL_CHROMIUM")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield browser
        finally:
            await browser.close()


async def signed_in(browser: Browser, site: Site, name: str) -> Page:
    """A new browser window (its own cookies) with ``name`` signed in, on the overview."""
    context = await browser.new_context(viewport=SCREEN)  # type: ignore[arg-type]
    page = await context.new_page()
    await page.goto(site.url + "/")
    await page.get_by_label("User name").fill(name)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_text(f"Signed in: {name}")).to_be_visible()
    return page


async def shot(page: Page, name: str) -> None:
    """Save what the page shows, as the person sees it."""
    await page.screenshot(path=SHOTS / f"{name}.png", animations="disabled")
