"""The Events page in Chromium: events arriving without a reload, and one opened to see what
became of it at the destination."""

import re
from pathlib import Path

from playwright.sync_api import Page, expect

from e2e.conftest import hooked, send_events, shot, sign_in
from tests.servers import GatewayProcess, running_worker
from tests.sink import Sink


def test_events_arrive_live_and_open_to_their_delivery(
    page: Page, gateway: GatewayProcess, workdir: Path, database_url: str
) -> None:
    with Sink() as sink, running_worker(database_url, workdir):
        hooked(database_url, "events-page-e2e-key", f"{sink.url}/in")
        sign_in(page, "viewer@example.com")
        page.get_by_role("link", name="Events").click()
        expect(page.get_by_role("heading", name="No event yet")).to_be_visible()
        send_events(gateway, "events-page-e2e-key", 4, users=2)
        rows = page.locator("tr.event")
        expect(rows).to_have_count(4, timeout=15_000)  # polled in, no reload
        expect(page.get_by_role("heading", name="No event yet")).to_be_hidden()
        sink.wait_for(4)
        first = page.locator("tr.detail details").first
        first.locator("summary").click()
        outcome = first.locator(".outcome")
        expect(outcome).to_contain_text("orders hook")
        expect(outcome.locator(".badge")).to_have_text("delivered")
        first.locator("details.job summary").click()
        expect(first.locator("details.job pre").first).to_contain_text(f"POST {sink.url}/in")
        shot(page, "events")
        kind = page.locator("tr.event .badge").last.inner_text()  # (the generator mixes calls)
        page.get_by_label("Type").select_option(kind)
        page.get_by_role("button", name="Show").click()
        expect(page).to_have_url(re.compile(rf"/events\?.*\btype={kind}\b"))
        kinds = page.locator("tr.event .badge")
        expect(kinds.first).to_be_visible()
        assert set(kinds.all_inner_texts()) == {kind}
