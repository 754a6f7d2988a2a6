"""Debian's Chromium driven by Playwright (never a downloaded browser), and what the UI tests share.

Screenshots go to test-artifacts/ (and, when UPDATE_DOCS_SCREENSHOTS=1, to docs/ for the README).
"""

import os
import shutil
from pathlib import Path

import pytest

from platform_assets_tests.e2e.dagster_server import REPO

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]


def chromium():
    """A headless Chromium for the length of a test (a generator for a pytest fixture)."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (make test and .ci/run do)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def shoot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name))
    if os.environ.get("UPDATE_DOCS_SCREENSHOTS") == "1":
        shutil.copy(ARTIFACTS / name, REPO / "docs" / name)


def dismiss_welcome(page) -> None:
    """A new browser profile is greeted by a sign-up dialog that may render after the page settles.

    Wait for it and skip it (the choice is kept for the rest of the session); go on if it never shows.
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.get_by_role("button", name="Skip").click(timeout=15_000)
    except PlaywrightTimeout:
        pass
