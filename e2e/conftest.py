"""The served control plane in a real Chromium (Debian's, driven by Playwright), on a real
PostgreSQL. Screenshots of each page go to e2e/artifacts/ for a reviewer to look at."""

import asyncio
import subprocess
import sys
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, ViewportSize, sync_playwright

from engine import specs
from engine.control import accounts, workspace
from engine.db import connection
from tests.conftest import database_url, postgres_url, template_database  # noqa: F401 (fixtures)
from tests.servers import GatewayProcess, WebProcess, server_dir, start_gateway, start_web

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip
ARTIFACTS = Path(__file__).parent / "artifacts"
PASSWORD = "an-e2e-password-long-enough"
DESKTOP: ViewportSize = {"width": 1440, "height": 900}
PHONE: ViewportSize = {"width": 390, "height": 844}
T = TypeVar("T")


@pytest.fixture(scope="module")
def browser(template_database: str) -> Iterator[Browser]:  # noqa: F811
    # Playwright's sync API keeps an event loop running in this thread while it is started,
    # where asyncio.run (which made the template database, first) and async tests cannot
    # run: so it is stopped with each module.
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def workdir() -> Iterator[Path]:
    with server_dir() as path:
        yield path


@pytest.fixture
def gateway(database_url: str, workdir: Path) -> Iterator[GatewayProcess]:  # noqa: F811
    gateway = start_gateway(database_url, workdir)
    try:
        yield gateway
    finally:
        gateway.stop()


@pytest.fixture
def web(
    database_url: str,  # noqa: F811 (the fixture imported above)
    workdir: Path,
    gateway: GatewayProcess,
) -> Iterator[WebProcess]:
    """The UI (showing `gateway` as where SDKs send events), with an admin, an editor and a
    viewer who sign in with PASSWORD."""

    async def people() -> None:
        async with connection(database_url) as conn:
            for role in accounts.ROLES:
                await accounts.create(conn, f"{role}@example.com", role, PASSWORD)

    run(people())
    # (test events go to sinks on loopback here)
    web = start_web(database_url, workdir,
                    {"public_url": gateway.url, "web_test_private_hosts": "true"})  # fmt: skip
    try:
        yield web
    finally:
        web.stop()


@pytest.fixture
def page(browser: Browser, web: WebProcess) -> Iterator[Page]:
    """A fresh browser tab on the UI. Whatever the test did, no page may have broken its
    content security policy (an inline script or style the policy refused)."""
    context = browser.new_context(base_url=web.url, viewport={"width": 1366, "height": 820})
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    page = context.new_page()
    refused: list[str] = []

    def seen(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            refused.append(message.text)

    page.on("console", seen)
    yield page
    context.close()
    assert refused == [], "the content security policy refused parts of a page"


def run(work: Coroutine[Any, Any, T]) -> T:
    """Run engine work to completion from a test. In a thread of its own: Playwright's sync
    API keeps an event loop running in this one."""
    with ThreadPoolExecutor(1) as thread:
        return thread.submit(asyncio.run, work).result()


def shot(page: Page, name: str) -> None:
    """A full-page screenshot, e2e/artifacts/<name>.png."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.evaluate("window.scrollTo(0, 0)")  # else the sticky header is drawn mid-page
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def sign_in(page: Page, email: str, password: str = PASSWORD, then: str = "/connections") -> None:
    """Sign in, to land on `then` (the connections page, where most walks start)."""
    page.goto(f"/login?next={then}")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def hooked(url_of_database: str, write_key: str, url: str) -> None:
    """A `website` source with `write_key`, connected to the webhook `orders hook` at `url`."""

    async def configure() -> None:
        async with connection(url_of_database) as conn:
            await workspace.apply(conn, specs.parse(f"""
sources: [{{name: website, write_key: {write_key}}}]
destinations: [{{name: orders hook, type: webhook, config: {{webhookUrl: "{url}"}}}}]
connections: [{{source: website, destination: orders hook}}]
"""))  # fmt: skip

    run(configure())


def send_events(gateway: GatewayProcess, write_key: str, count: int, users: int = 1) -> None:
    """`count` realistic events of `users` users, with `sluice generate-events`."""
    sent = subprocess.run(
        [sys.executable, "-m", "appliance", "generate-events", "--write-key", write_key,
         "--url", gateway.url, "--count", str(count), "--users", str(users)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert sent.returncode == 0, sent.stderr
