"""Browser tests: Debian's chromium driven by Playwright against a live `python main.py`.

The browser is the system's /usr/bin/chromium (installed by `.ci/run` with apt); Playwright
only drives it (`executable_path`) and never downloads a browser. Without chromium (or the
playwright package) these tests skip locally and FAIL under CI=true, like the other services.
The live server, its database and the fake Graph API come from tests/realtime/conftest.py.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.conftest import need_service
from tests.realtime.conftest import graph, live_db, make_stack  # noqa: F401  (fixtures)

CHROMIUM = os.environ.get("DANA_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-dev-shm-usage"]
# The README's pictures: written into docs/screenshots only when DANA_SCREENSHOTS=1 (so a plain
# test run leaves the work tree clean); otherwise into the test session's temporary folder.
SCREENSHOTS = (Path(__file__).resolve().parents[2] / "docs" / "screenshots"
               if os.environ.get("DANA_SCREENSHOTS") == "1"
               else Path(tempfile.gettempdir()) / "dana-screenshots")

# Never let Playwright fetch a browser of its own, whatever runs these tests.
os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")


@pytest.fixture(scope="session")
def chromium():
    """One headless chromium for the session (each test gets its own context)."""
    try:
        from playwright.sync_api import sync_playwright  # optional: requirements-dev.txt
    except ImportError as exc:
        need_service("playwright", str(exc))
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        need_service("chromium", f"{CHROMIUM} not found (apt-get install chromium)")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class Tab:
    """A page of its own browser context (own cookies), recording console errors."""

    def __init__(self, browser, base_url: str, **context_args):
        self.context = browser.new_context(base_url=base_url, **context_args)
        self.context.set_default_timeout(30_000)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))

    def sign_in(self, email: str, password: str = "correct horse battery") -> None:
        self.page.goto("/login")
        self.page.get_by_label("E-mail").fill(email)
        self.page.get_by_label("Password").fill(password)
        self.page.get_by_role("button", name="Sign in").click()
        self.page.wait_for_url("**/app")

    def screenshot(self, name: str) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SCREENSHOTS / name), full_page=True)

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def tabs(chromium):
    """Open browser tabs (each its own context); closed at the end of the test."""
    opened: list[Tab] = []

    def _open(base_url: str, **context_args) -> Tab:
        tab = Tab(chromium, base_url, **context_args)
        opened.append(tab)
        return tab

    yield _open
    for tab in opened:
        tab.close()
