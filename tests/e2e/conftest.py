"""Headless Chromium (Debian's package) driven by Playwright against pytest-django's live server."""

import os
from pathlib import Path

import pytest

from masivo.tenancy import wakeups

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"


@pytest.fixture(scope="module")
def browser():
    """One browser per module; each test gets a fresh context (cookies, storage) from `page`.

    Module- rather than session-scoped on purpose: while Playwright's sync API is open, its
    event loop counts as running in this thread, so Django's ORM needs DJANGO_ALLOW_ASYNC_UNSAFE;
    that escape must end with the browser tests and not leak into the rest of the run.
    """
    if not Path(CHROMIUM).exists():
        message = f"{CHROMIUM} is missing: install Debian's chromium package to run browser tests"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            yield chromium
            chromium.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def page(browser, live_server):
    """A page in a fresh browser context; `page.console_errors` collects errors (CSP reports)."""
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 800})
    context.set_default_timeout(10_000)
    new_page = context.new_page()
    new_page.console_errors = []
    new_page.on(
        "console",
        lambda message: (
            new_page.console_errors.append(message.text) if message.type == "error" else None
        ),
    )
    new_page.on("pageerror", lambda error: new_page.console_errors.append(str(error)))
    yield new_page
    context.close()


@pytest.fixture
def screenshot():
    """Save a full-page screenshot as test-artifacts/screenshots/<name>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(page, name: str) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


@pytest.fixture
def woken(monkeypatch) -> list[tuple[str, dict]]:
    """The tasks that services woke by name (no worker here): (task name, keyword arguments)."""
    calls = []
    monkeypatch.setattr(wakeups, "task_wake", lambda name, **kwargs: calls.append((name, kwargs)))
    return calls
