"""Every page of the control plane, at a desktop's width and a phone's, as an admin and as a
viewer, on a workspace with traffic, failures and a transformation: the screenshots land in
e2e/artifacts/screens/ (`make screenshots` runs just this) for reviewers to look at without
running the stack, and no page may be wider than the phone's screen."""

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from e2e.conftest import ARTIFACTS, run, send_events, sign_in
from engine import specs
from engine.control import events, workspace
from engine.db import connection
from tests.servers import GatewayProcess, WebProcess, running_worker
from tests.sink import Answer, Arrival, Sink

SCREENS = ARTIFACTS / "screens"
WIDTHS = {"desktop": (1440, 900), "mobile": (390, 844)}
KEY = "screens-website-key"
EVENTS = 40
ADMINS_ONLY = ("users", "audit")


def _refusing_some(arrival: Arrival) -> Answer:
    """The webhook's vendor refuses one user's events (a permanent error), takes the rest."""
    if arrival.json().get("userId", "").endswith("1"):
        return Answer.json(400, {"error": "unknown field <b>plan</b>"})
    return Answer()


def _workspace(sink_url: str) -> str:
    return f"""
sources: [{{name: website, write_key: {KEY}}}, {{name: ios-app, enabled: false}}]
transformations:
  - name: drop test users
    code: |
      export function transformEvent(event) {{
        if (event.userId === "test") return null;
        return event;
      }}
destinations:
  - name: orders hook
    type: webhook
    config: {{webhookUrl: "{sink_url}/in"}}
    alerts: {{failure_percent: 5, window_minutes: 15}}
  - name: product analytics
    type: amplitude
    config: {{apiKey: amp-secret-key-123}}
    enabled: false
connections:
  - {{source: website, destination: orders hook, transformation: drop test users}}
  - {{source: ios-app, destination: product analytics}}
"""


@dataclass(frozen=True)
class Stack:
    web: WebProcess
    event_path: str  # one event's own page


@pytest.fixture
def stack(
    web: WebProcess, gateway: GatewayProcess, workdir: Path, database_url: str
) -> Iterator[Stack]:
    with Sink(_refusing_some) as sink, running_worker(database_url, workdir):

        async def configure() -> str:
            async with connection(database_url) as conn:
                await workspace.apply(conn, specs.parse(_workspace(sink.url)))
            send_events(gateway, KEY, EVENTS, users=5)
            async with connection(database_url) as conn:
                newest = (await events.recent(conn, limit=1)).events[0]
            return f"/events/{newest.tx}/{newest.id}"

        event_path = run(configure())
        sink.wait_for_arrivals(EVENTS)  # every event answered: some delivered, some refused
        yield Stack(web, event_path)


def _pages(page: Page, stack: Stack) -> dict[str, str]:
    """Each page's name and path; the ids are read from the pages that link to them."""
    page.goto("/connections")

    def first(prefix: str) -> str:
        link = page.locator(f"a[href^='{prefix}']:not([href^='{prefix}new'])").first
        expect(link).to_be_attached()
        return (link.get_attribute("href") or "").split("#")[0]

    source, destination = first("/sources/"), first("/destinations/")
    page.goto(destination)
    connection_path = first("/connections/")
    page.goto("/transformations")
    transformation = first("/transformations/")
    return {
        "overview": "/", "connections": "/connections", "source": source,
        "destination": destination, "connection": connection_path,
        "destination-types": "/destinations/new", "new-webhook": "/destinations/new?type=webhook",
        "events": "/events", "event": stack.event_path, "transformations": "/transformations",
        "transformation": transformation, "stats": "/stats", "failed": "/failed",
        "rejected": "/rejected", "alerts": "/alerts", "users": "/users", "audit": "/audit",
        "password": "/account/password",
    }  # fmt: skip


def _wide(page: Page, width: int) -> str | None:
    """What sticks out past a `width` screen, or None when nothing does."""
    found: str | None = page.evaluate(
        """(width) => {
          if (document.documentElement.scrollWidth <= width) return null;
          const wide = [...document.querySelectorAll("body *")].filter((e) =>
            e.getBoundingClientRect().right > width + 1 && e.closest(".scroll") === null);
          const e = wide[wide.length - 1];
          const what = `<${e?.tagName.toLowerCase()} class="${e?.className}">`;
          return `${document.documentElement.scrollWidth} px wide, e.g. ${what}`;
        }""",
        width,
    )
    return found


def _shoot(page: Page, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(path), full_page=True)


@pytest.mark.parametrize("role", ["admin", "viewer"])
def test_every_page_at_desktop_and_mobile_width(browser: Browser, stack: Stack, role: str) -> None:
    context = browser.new_context(base_url=stack.web.url)
    page = context.new_page()
    too_wide: dict[str, str] = {}
    for width_name, (width, height) in WIDTHS.items():  # signed out: the sign-in page
        page.set_viewport_size({"width": width, "height": height})
        page.goto("/login")
        _shoot(page, SCREENS / f"login-{width_name}.png")
        if width_name == "mobile" and (wide := _wide(page, width)):
            too_wide["login"] = wide
    sign_in(page, f"{role}@example.com")
    expect(page).to_have_url(re.compile(r"/connections$"))
    paths = _pages(page, stack)
    for width_name, (width, height) in WIDTHS.items():
        page.set_viewport_size({"width": width, "height": height})
        for name, path in paths.items():
            answer = page.goto(path)
            assert answer is not None
            expected = 403 if role == "viewer" and name in ADMINS_ONLY else 200
            assert answer.status == expected, (name, path, answer.status)
            page.wait_for_load_state("networkidle")  # the parts a page loads after it
            _shoot(page, SCREENS / f"{name}-{width_name}-{role}.png")
            if width_name == "mobile" and (wide := _wide(page, width)):
                too_wide[name] = wide
    context.close()
    assert too_wide == {}, "pages wider than a 390 px screen"
