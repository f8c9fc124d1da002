"""An event's own page in Chromium: what it was, and at each destination the request made of it
and every try's answer (successes too), or why no request was made; a failed destination
replayed from the page; hostile payload text shown as text; a deleted destination's requests
not shown."""

import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import psycopg
from playwright.sync_api import Locator, Page, expect

from e2e.conftest import DESKTOP, run, shot, sign_in
from engine import specs
from engine.control import workspace
from engine.db import connection
from tests.servers import GatewayProcess, running_worker
from tests.sink import Answer, Arrival, Sink

KEY = "event-page-e2e-key"
CRM_KEY = "event-page-e2e-crm-key"
HOSTILE = "<img src=x onerror=alert(1)>"


def _workspace(sink: str) -> str:
    return f"""
sources: [{{name: website, write_key: {KEY}}}, {{name: crm, write_key: {CRM_KEY}}}]
transformations:
  - name: breaks on refunds
    code: |
      export function transformEvent(event) {{
        if (event.event === "Order Refunded") throw new Error("refunds are not mapped yet");
        return event;
      }}
destinations:
  - {{name: orders hook, type: webhook, config: {{webhookUrl: "{sink}/in"}}}}
  - {{name: strict hook, type: webhook, config: {{webhookUrl: "{sink}/strict"}}}}
  - name: flaky hook
    type: webhook
    config: {{webhookUrl: "{sink}/flaky"}}
    delivery: {{min_backoff_seconds: 1, max_backoff_seconds: 1}}
  - {{name: refunds hook, type: webhook, config: {{webhookUrl: "{sink}/refunds"}}}}
  - {{name: product analytics, type: amplitude, config: {{apiKey: amp-secret-key-123}}}}
connections:
  - {{source: website, destination: orders hook}}
  - {{source: website, destination: strict hook}}
  - {{source: website, destination: flaky hook}}
  - {{source: website, destination: refunds hook, transformation: breaks on refunds}}
  - {{source: crm, destination: product analytics}}
"""


class Vendor:
    """The sink's answers: `/strict` refuses (400) until fixed, `/flaky` fails its first try
    (500), the rest take everything."""

    def __init__(self) -> None:
        self.strict_fixed = False
        self.flaky_tries = 0

    def __call__(self, arrival: Arrival) -> Answer:
        if arrival.path == "/strict" and not self.strict_fixed:
            return Answer.json(400, {"error": f"unknown property {HOSTILE}"})
        if arrival.path == "/flaky":
            self.flaky_tries += 1
            if self.flaky_tries == 1:
                return Answer.json(500, {"error": "try again"})
        return Answer.json(200, {"accepted": 1, "receipt": "r-42"})


def _configure(database_url: str, sink: str) -> None:
    async def go() -> None:
        async with connection(database_url) as conn:
            await workspace.apply(conn, specs.parse(_workspace(sink)))

    run(go())


def _send(gateway: GatewayProcess, key: str, *events: dict[str, Any]) -> None:
    answer = httpx.post(f"{gateway.url}/v1/batch", json={"batch": list(events)}, auth=(key, ""))
    assert answer.status_code == 200, answer.text


def _path(database_url: str, message_id: str) -> str:
    """The event's own page."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT tx::text, id, received_at FROM ingest_events WHERE message_id = %s",
            (message_id,),
        ).fetchone()
    assert row is not None
    return f"/events/{row[0]}/{row[1]}?at={quote(row[2].isoformat())}"


def _outcome(page: Page, destination: str) -> Locator:
    return page.locator(".outcome").filter(has=page.get_by_text(destination, exact=True))


def _until(page: Page, done: Callable[[], bool], timeout: float = 30) -> None:
    """Reload until `done`: a retrying destination's page does not refresh itself (it would
    fold what the reader opened), so a test reloads it as a reader would."""
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "the page never showed what was awaited"
        page.wait_for_timeout(300)
        page.reload()


def test_each_destination_shows_its_request_its_tries_and_their_answers_and_replays(
    page: Page, gateway: GatewayProcess, workdir: Path, database_url: str
) -> None:
    vendor = Vendor()
    order = {"type": "track", "event": "Order Completed", "userId": "u1",
             "messageId": "order-1",
             "properties": {"note": HOSTILE, "id": 12345678901234567890}}  # fmt: skip
    with Sink(vendor) as sink, running_worker(database_url, workdir):
        _configure(database_url, sink.url)
        _send(gateway, KEY, order)
        page.set_viewport_size(DESKTOP)
        sign_in(page, "editor@example.com")
        page.goto(_path(database_url, "order-1"))
        page.on("dialog", lambda dialog: dialog.accept())
        delivered, strict = _outcome(page, "orders hook"), _outcome(page, "strict hook")
        flaky = _outcome(page, "flaky hook")
        # the page refreshes itself while a job waits for its answer
        expect(delivered.locator(".badge")).to_have_text("delivered", timeout=20_000)
        expect(strict.locator(".badge")).to_have_text("failed")
        _until(page, lambda: flaky.locator(".badge").inner_text() == "delivered")

        # a success: its request, and the vendor's answer, kept
        expect(delivered.locator("pre.request")).to_contain_text(f"POST {sink.url}/in")
        [try_] = delivered.locator("li.try").all()
        expect(try_).to_contain_text(
            re.compile(r"Try 1 of 1 · \d\d:\d\d:\d\d · HTTP 200 · delivered")
        )
        expect(try_).to_contain_text('"receipt": "r-42"')
        # a try that failed and the one that went through, numbered, newest last
        tries = flaky.locator("li.try")
        expect(tries.nth(0)).to_contain_text(
            re.compile(r"Try 1 of 2 · .* HTTP 500 · retried after [\d.]+ s")
        )
        expect(tries.nth(0)).to_contain_text('"error": "try again"')
        expect(tries.nth(1)).to_contain_text(re.compile(r"Try 2 of 2 · .* HTTP 200 · delivered"))
        # the payload as received and the vendor's refusal: hostile text shown as text, numbers
        # as they were written
        expect(page.locator(".jv").last).to_contain_text(f'"note": "{HOSTILE}"')
        expect(page.locator(".jv").last).to_contain_text('"id": 12345678901234567890')
        expect(strict.locator("li.try")).to_contain_text(HOSTILE)
        assert page.locator("img[src=x]").count() == 0
        shot(page, "event-page-editor")

        # replayed to the destination that refused it, once the vendor's side is fixed
        vendor.strict_fixed = True
        strict.get_by_role("button", name="Replay to strict hook").click()
        expect(page.locator("p.alert.ok")).to_contain_text("Replayed")
        expect(strict.locator(".badge")).to_have_text("delivered", timeout=20_000)
        replay = strict.locator("details.job").last
        expect(replay.locator("summary")).to_contain_text("Replay 1:")
        expect(replay.locator("li.try")).to_contain_text(re.compile(r"Try 1 of 1 · .* HTTP 200"))
        expect(strict.locator("details.job").first).to_contain_text(
            re.compile(r"Replayed at \d\d:\d\d:\d\d: sent again as the job below")
        )
        assert len([a for a in sink.delivered if a.path == "/strict"]) == 1
        shot(page, "event-page-replayed")

    # a viewer sees the same, without the replay buttons
    page.context.clear_cookies()
    sign_in(page, "viewer@example.com")
    page.goto(_path(database_url, "order-1"))
    expect(_outcome(page, "strict hook").locator(".badge")).to_have_text("delivered")
    expect(page.get_by_role("button", name=re.compile("Replay"))).to_have_count(0)
    token = json.loads(page.locator("body").get_attribute("hx-headers") or "{}")["x-csrftoken"]
    refused = page.request.post(
        _path(database_url, "order-1").split("?")[0] + "/replay",
        form={"destination": "all"}, headers={"x-csrftoken": token},
    )  # fmt: skip
    assert refused.status == 403 and "it takes editor" in refused.text()  # (not only hidden)
    shot(page, "event-page-viewer")
    # the JSON viewer: the payload copied as received, objects folded and unfolded
    payload = page.locator(".jv").last
    payload.get_by_role("button", name="Copy").click()
    expect(payload.get_by_role("button", name="Copied")).to_be_visible()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert json.loads(copied)["properties"] == order["properties"]
    payload.locator(".jv-toggle").first.click()
    expect(payload.locator(".jv-folded").first).to_have_text(re.compile(r"\d+ keys }"))
    expect(payload.get_by_text('"messageId"')).to_be_hidden()
    payload.get_by_role("button", name="Unfold all").click()
    expect(payload.get_by_text('"messageId"')).to_be_visible()
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    expect(_outcome(page, "flaky hook")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    shot(page, "event-page-viewer-mobile")


def test_a_job_made_without_a_request_says_why_and_a_deleted_destination_hides_its_requests(
    page: Page, gateway: GatewayProcess, workdir: Path, database_url: str
) -> None:
    refund = {"type": "track", "event": "Order Refunded", "userId": "u2", "messageId": "refund-1"}
    group = {"type": "group", "groupId": "g1", "userId": "u3", "messageId": "group-1",
             "traits": {"name": "Initech", "plan": HOSTILE}}  # fmt: skip
    with Sink(Vendor()) as sink, running_worker(database_url, workdir):
        _configure(database_url, sink.url)
        _send(gateway, KEY, refund)
        _send(gateway, CRM_KEY, group)
        page.set_viewport_size(DESKTOP)
        sign_in(page, "admin@example.com")
        page.goto(_path(database_url, "refund-1"))
        page.on("dialog", lambda dialog: dialog.accept())
        # the connection's transformation failed: the destination exists, no request was made
        refunds = _outcome(page, "refunds hook")
        expect(refunds.locator(".badge")).to_have_text("failed", timeout=20_000)
        expect(refunds.locator("details.job").first).to_have_attribute("open", "")  # (its page)
        expect(refunds).to_contain_text("No request was made: transformation failed:")
        expect(refunds).to_contain_text("refunds are not mapped yet")
        expect(page.get_by_text("the destination was deleted")).to_have_count(0)
        expect(refunds.get_by_role("button", name="Replay to refunds hook")).to_be_visible()
        shot(page, "event-page-unsent")
        # replayed everywhere it failed (nothing fixed: each fails again, a try more to see)
        page.get_by_role("button", name="Replay to the 2 where it failed").click()
        expect(page.locator("p.alert.ok")).to_contain_text("2 failed job(s) sent again")
        expect(refunds.locator("details.job summary").last).to_contain_text(
            "Replay 1: no request made"
        )
        strict = _outcome(page, "strict hook")
        expect(strict.locator("details.job").last.locator("li.try")).to_contain_text(
            "HTTP 400 · gave up", timeout=20_000
        )

        # the event as transformed: its page leads to a test run of the transformation on it
        refunds.get_by_role("link", name="See what its code makes of this event now").click()
        expect(page.get_by_role("heading", name="breaks on refunds")).to_be_visible()
        assert '"messageId": "refund-1"' in page.locator("#t-payload").input_value()
        page.get_by_role("button", name="Test", exact=True).click()
        expect(page.locator("#result")).to_contain_text("refunds are not mapped yet")

        # an Amplitude group call with default settings: filtered, saying which settings it
        # needs, never "deleted"
        page.goto(_path(database_url, "group-1"))
        amplitude = _outcome(page, "product analytics")
        expect(amplitude.locator(".badge")).to_have_text("filtered", timeout=20_000)
        expect(amplitude).to_contain_text(re.compile(r"not sent: .*group.*groupTypeTrait"))
        expect(page.get_by_text("the destination was deleted")).to_have_count(0)
        expect(page.locator(".jv")).to_contain_text(f'"plan": "{HOSTILE}"')
        assert page.locator("img[src=x]").count() == 0

        # once a destination is deleted its requests (which may hold its secrets) are not shown
        _send(gateway, KEY, {"type": "track", "event": "Signed Up", "userId": "u4",
                             "messageId": "signup-1"})  # fmt: skip
        page.goto(_path(database_url, "signup-1"))
        signup = _outcome(page, "strict hook").locator(".badge")
        expect(signup).to_have_text("failed", timeout=20_000)

    async def delete() -> None:
        async with connection(database_url) as conn:
            await workspace.delete(conn, "destination", "strict hook")

    run(delete())
    page.reload()
    gone = _outcome(page, "(deleted destination)")
    expect(gone).to_contain_text("Not shown: the destination was deleted")
    expect(gone).to_contain_text("HTTP 400")  # (its error is shown, its answer not)
    expect(gone.locator("pre")).to_have_count(0)
    expect(page.get_by_role("button", name=re.compile("Replay"))).to_have_count(0)  # (gone)
    shot(page, "event-page-deleted")
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(_path(database_url, "refund-1"))
    expect(_outcome(page, "refunds hook")).to_contain_text("No request was made")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    shot(page, "event-page-admin-mobile")
