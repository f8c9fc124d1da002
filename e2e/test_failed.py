"""The Failed page in Chromium: a destination refusing events, fixed, and the events replayed."""

import time
from pathlib import Path

from playwright.sync_api import Page, expect

from e2e.conftest import hooked, send_events, shot, sign_in
from tests.servers import GatewayProcess, running_worker
from tests.sink import Answer, Sink

HOSTILE = "<img src=x onerror=alert(1)>"


def test_refused_events_are_listed_then_replayed_once_the_sink_is_fixed(
    page: Page, gateway: GatewayProcess, workdir: Path, database_url: str
) -> None:
    refusing = Answer.json(400, {"error": f"unknown field {HOSTILE}"})
    with Sink(lambda arrival: refusing) as sink, running_worker(database_url, workdir):
        hooked(database_url, "failed-page-e2e-key", f"{sink.url}/in")
        send_events(gateway, "failed-page-e2e-key", 3)
        sign_in(page, "editor@example.com")
        page.get_by_role("link", name="Failed").click()
        rows = page.locator("tbody.job")
        deadline = time.monotonic() + 30
        while rows.count() < 3:  # a 400 aborts at once; the page shows what has been recorded
            assert time.monotonic() < deadline, "the refused events never showed as failed"
            page.wait_for_timeout(500)
            page.reload()
        expect(page.locator("table.failed td.error").first).to_have_text("HTTP 400")
        page.locator("tbody.job summary").first.click()
        answer = page.locator("tbody.job details pre").nth(1)
        expect(answer).to_contain_text(HOSTILE)  # shown as text: the payload did not run
        assert page.locator("img[src=x]").count() == 0
        shot(page, "failed")

        sink.behaviour = lambda arrival: Answer()  # the vendor's side is fixed
        page.get_by_role("button", name="Replay all 3").click()
        expect(page.locator("#progress")).to_contain_text(
            "Replayed 3 failed event(s) as 3 new job(s)"
        )
        shot(page, "failed-replayed")
        delivered = sink.wait_for(3)
    assert len({a.json()["messageId"] for a in delivered}) == 3
    page.get_by_role("link", name="Refresh the list").click()
    expect(page.get_by_role("heading", name="Nothing has failed")).to_be_visible()
