"""The Events page in Chromium, a live debugger: events arriving without a reload, each row's
status at each destination, one opened to see what became of it (and kept open and in place
while more arrive), pause and resume, the connection-lost banner, search, the same stream on a
source's page, Back and Forward, and the empty state of a search that found nothing."""

import re
from pathlib import Path

import httpx
from playwright.sync_api import Page, expect

from e2e.conftest import hooked, run, send_events, shot, sign_in
from engine.control import events
from engine.db import connection
from tests.servers import GatewayProcess, WebProcess, running_worker
from tests.sink import Sink

CALL = "tr.event .badge[class*='call-']"  # a row's call type (its other badges: deliveries)


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
        kind = page.locator(CALL).last.inner_text()  # (the generator mixes calls)
        page.get_by_label("Type").select_option(kind)
        page.get_by_role("button", name="Show").click()
        expect(page).to_have_url(re.compile(rf"/events\?.*\btype={kind}\b"))
        kinds = page.locator(CALL)
        expect(kinds.first).to_be_visible()
        assert set(kinds.all_inner_texts()) == {kind}


def _post(gateway: GatewayProcess, key: str, *events: dict[str, object]) -> None:
    answer = httpx.post(f"{gateway.url}/v1/batch", json={"batch": list(events)}, auth=(key, ""))
    assert answer.status_code == 200, answer.text


def _track(message_id: str, user: str, **properties: object) -> dict[str, object]:
    return {"type": "track", "event": "Plan Chosen", "messageId": message_id, "userId": user,
            "properties": properties}  # fmt: skip


def test_each_row_says_what_became_of_it_at_each_destination(
    page: Page, gateway: GatewayProcess, workdir: Path, database_url: str
) -> None:
    with Sink() as sink, running_worker(database_url, workdir):
        hooked(database_url, "chips-e2e-key", f"{sink.url}/in")
        _post(gateway, "chips-e2e-key", _track("chip-1", "u1"), _track("chip-2", "u2"))
        sink.wait_for(2)
        sign_in(page, "viewer@example.com", then="/events")
        chips = page.locator("tr.event td.chips .badge")
        expect(chips).to_have_count(2)
        expect(chips.first).to_have_text("orders hook · delivered")
        expect(chips.first).to_have_attribute("title", re.compile("accepted on try 1"))
        page.locator("tr.detail summary").first.click()
        expect(page.locator(".trace").first).to_contain_text("orders hook")
        for width, height in ((1440, 900), (390, 844)):
            page.set_viewport_size({"width": width, "height": height})
            shot(page, f"events-{width}")
            assert page.evaluate("document.documentElement.scrollWidth") <= width
        page.goto("/connections")
        page.get_by_role("link", name="website").first.click()
        expect(page.locator("#source-events tr.event")).to_have_count(2)
        shot(page, "source-events-390")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        page.set_viewport_size({"width": 1440, "height": 900})
        shot(page, "source-events-1440")


def test_a_row_waiting_for_the_worker_turns_delivered_without_a_reload(
    page: Page, gateway: GatewayProcess, workdir: Path, database_url: str
) -> None:
    with Sink() as sink:
        hooked(database_url, "settle-e2e-key", f"{sink.url}/in")
        _post(gateway, "settle-e2e-key", _track("settle-1", "u1"))
        sign_in(page, "viewer@example.com", then="/events")
        chip = page.locator("tr.event td.chips .badge")
        expect(chip).to_have_text("orders hook · waiting")  # no worker yet
        opened = page.locator("tr.detail > td > details")
        opened.locator("summary").click()
        expect(opened.locator(".trace")).to_contain_text("settle-1")
        with running_worker(database_url, workdir):
            sink.wait_for(1)
            expect(chip).to_have_text("orders hook · delivered")  # polled in, no reload
        expect(opened).to_have_attribute("open", "")  # (the line was replaced, not its details)
        expect(page.locator("tr.event")).to_have_count(1)


def test_search_by_message_id_user_property_and_text(
    page: Page, gateway: GatewayProcess, database_url: str
) -> None:
    hooked(database_url, "search-e2e-key", "http://127.0.0.1:9/unused")
    _post(gateway, "search-e2e-key",
          _track("m-alpha", "ann", plan="pro", note="a Needle here"),
          _track("m-beta", "bob", plan="free"),
          _track("m-gamma", "cid", plan="free"))  # fmt: skip
    sign_in(page, "viewer@example.com", then="/events")
    rows = page.locator("tr.event")
    expect(rows).to_have_count(3)
    search = page.get_by_label("Search")
    for text, user in (("m-beta", "bob"), ("properties.plan=pro", "ann"), ("NEEDLE", "ann")):
        search.fill(text)
        page.get_by_role("button", name="Show").click()
        expect(page).to_have_url(re.compile(r"[?&]q="))
        expect(rows).to_have_count(1)
        expect(rows.first).to_contain_text(user)
    search.fill("properties.plan=free")
    page.get_by_role("button", name="Show").click()
    expect(rows).to_have_count(2)
    page.get_by_label("User").fill("cid")
    page.get_by_role("button", name="Show").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("m-gamma")


def test_pause_counts_new_events_and_resume_shows_them(
    page: Page, gateway: GatewayProcess, database_url: str
) -> None:
    hooked(database_url, "pause-e2e-key", "http://127.0.0.1:9/unused")
    _post(gateway, "pause-e2e-key", _track("p-1", "u"), _track("p-2", "u"))
    sign_in(page, "viewer@example.com", then="/events")
    rows = page.locator("#event-rows tr.event")
    expect(rows).to_have_count(2)
    page.get_by_role("button", name="Pause").click()
    expect(page.locator("#live")).to_contain_text("Paused")
    _post(gateway, "pause-e2e-key", _track("p-3", "u"), _track("p-4", "u"), _track("p-5", "u"))
    resume = page.get_by_role("button", name="3 new events — resume")
    expect(resume).to_be_visible(timeout=15_000)
    expect(rows).to_have_count(2)  # counted, not shown
    shot(page, "events-paused")
    resume.click()
    expect(rows).to_have_count(5)
    expect(rows.first).to_contain_text("p-5")
    expect(resume).to_be_hidden()
    expect(page.get_by_role("button", name="Pause")).to_be_visible()
    _post(gateway, "pause-e2e-key", _track("p-6", "u"))
    expect(rows).to_have_count(6)  # live again


def test_paused_through_more_events_than_a_poll_brings(
    page: Page, gateway: GatewayProcess, database_url: str
) -> None:
    hooked(database_url, "burst-e2e-key", "http://127.0.0.1:9/unused")
    _post(gateway, "burst-e2e-key", _track("b-0", "u"))
    sign_in(page, "viewer@example.com", then="/events")
    rows = page.locator("#event-rows tr.event")
    expect(rows).to_have_count(1)
    page.get_by_role("button", name="Pause").click()
    _post(gateway, "burst-e2e-key", *(_track(f"b-{n}", "u") for n in range(1, 61)))
    resume = page.get_by_role("button", name="50+ new events — resume")
    expect(resume).to_be_visible(timeout=15_000)  # the newest 50, and word of more
    resume.click()
    expect(rows).to_have_count(51)
    expect(rows.first).to_contain_text("b-60")
    expect(page.get_by_text("More events arrived meanwhile than are shown above")).to_be_visible()


def test_bursts_leave_one_gap_row_the_newest(
    page: Page, gateway: GatewayProcess, database_url: str
) -> None:
    hooked(database_url, "gaps-e2e-key", "http://127.0.0.1:9/unused")
    _post(gateway, "gaps-e2e-key", _track("g-0", "u"))
    sign_in(page, "viewer@example.com", then="/events")
    rows = page.locator("#event-rows tr.event")
    gaps = page.locator("#event-rows tr.gap")
    expect(rows).to_have_count(1)
    _post(gateway, "gaps-e2e-key", *(_track(f"g-1-{n}", "u") for n in range(60)))
    expect(rows).to_have_count(51, timeout=15_000)  # a poll's newest 50, and a gap row
    expect(gaps).to_have_count(1)
    _post(gateway, "gaps-e2e-key", *(_track(f"g-2-{n}", "u") for n in range(60)))
    expect(rows).to_have_count(101, timeout=15_000)
    expect(gaps).to_have_count(1)  # the newest: under the second burst's 50 rows (100 lines)
    expect(page.locator("#event-rows > tr").nth(100)).to_have_class("gap")
    # paused through a burst, then resumed: the held gap row is the only one
    page.get_by_role("button", name="Pause").click()
    _post(gateway, "gaps-e2e-key", *(_track(f"g-3-{n}", "u") for n in range(60)))
    page.get_by_role("button", name="50+ new events — resume").click(timeout=15_000)
    expect(rows).to_have_count(151)
    expect(gaps).to_have_count(1)
    expect(page.locator("#event-rows > tr").nth(100)).to_have_class("gap")


def test_a_failing_poll_shows_the_connection_lost_until_one_succeeds(
    page: Page, web: WebProcess
) -> None:
    sign_in(page, "viewer@example.com", then="/events")
    lost = page.get_by_text("Connection lost — retrying…")
    expect(page.locator("#live")).to_be_visible()
    expect(lost).to_be_hidden()
    page.route("**/events/live*", lambda route: route.abort())  # the network is down
    expect(lost).to_be_visible()
    page.unroute("**/events/live*")
    expect(lost).to_be_hidden()
    page.route("**/events/live*", lambda route: route.fulfill(status=500, body="down"))
    expect(lost).to_be_visible()
    shot(page, "events-connection-lost")
    page.unroute("**/events/live*")
    expect(lost).to_be_hidden()
    web.stop()  # the server itself goes away
    expect(lost).to_be_visible()


def test_an_opened_row_stays_open_and_in_place_while_events_arrive(
    page: Page, gateway: GatewayProcess, database_url: str
) -> None:
    hooked(database_url, "open-e2e-key", "http://127.0.0.1:9/unused")
    _post(gateway, "open-e2e-key", *(_track(f"o-{i}", "u", n=i) for i in range(3)))
    sign_in(page, "viewer@example.com", then="/events")
    rows = page.locator("#event-rows tr.event")
    expect(rows).to_have_count(3)
    first = rows.first.get_attribute("id")
    opened = page.locator(f"#{first} + tr.detail details")
    opened.locator("summary").click()
    expect(opened.locator(".trace")).to_contain_text("o-2")
    top = opened.bounding_box()
    _post(gateway, "open-e2e-key", *(_track(f"new-{i}", "u") for i in range(4)))
    expect(rows).to_have_count(7)
    expect(opened).to_have_attribute("open", "")
    page.wait_for_function("window.scrollY > 0")  # the page scrolled by the new rows
    assert top is not None and (after := opened.bounding_box()) is not None
    assert abs(after["y"] - top["y"]) < 1


def test_the_source_page_streams_its_own_events(
    page: Page, gateway: GatewayProcess, database_url: str
) -> None:
    hooked(database_url, "stream-e2e-key", "http://127.0.0.1:9/unused")
    _post(gateway, "stream-e2e-key", _track("s-1", "u"))
    sign_in(page, "viewer@example.com")
    page.get_by_role("link", name="website").first.click()
    stream = page.locator("#source-events")
    expect(stream.locator("tr.event")).to_have_count(1)
    _post(gateway, "stream-e2e-key", _track("s-2", "u"))
    expect(stream.locator("tr.event")).to_have_count(2)  # live
    expect(stream.locator("tr.event").first).to_contain_text("s-2")
    stream.locator("tr.detail summary").first.click()
    expect(stream.locator(".trace").first).to_contain_text("s-2")
    shot(page, "source-events")


def test_back_and_forward_show_the_filters_of_the_url(
    page: Page, gateway: GatewayProcess, database_url: str
) -> None:
    """Without data-mirror-url (app.js) Back would show "identify" still chosen: Chromium's
    form restoring puts back what was last chosen, not what the address says."""
    hooked(database_url, "history-e2e-key", "http://127.0.0.1:9/unused")
    _post(gateway, "history-e2e-key", _track("h-1", "u"),
          {"type": "identify", "userId": "u", "messageId": "h-2"})  # fmt: skip
    sign_in(page, "viewer@example.com", then="/events")
    kind = page.get_by_label("Type")
    kind.select_option("identify")
    page.get_by_label("Search").fill("h-2")
    page.get_by_role("button", name="Show").click()
    expect(page).to_have_url(re.compile(r"type=identify"))
    expect(page.locator("tr.event")).to_have_count(1)
    page.go_back()
    expect(page).to_have_url(re.compile(r"/events$"))
    expect(kind).to_have_value("")
    expect(page.get_by_label("Search")).to_have_value("")
    expect(page.locator("tr.event")).to_have_count(2)
    page.go_forward()
    expect(kind).to_have_value("identify")
    expect(page.get_by_label("Search")).to_have_value("h-2")


def test_a_search_matching_nothing_says_how_far_back_it_looked(
    page: Page, gateway: GatewayProcess, database_url: str
) -> None:
    hooked(database_url, "empty-e2e-key", "http://127.0.0.1:9/unused")
    stored = events.SCAN + 500
    run(_stored(database_url, stored))
    sign_in(page, "viewer@example.com", then="/events?type=alias")
    empty = page.locator(".empty")
    expect(empty).to_contain_text("No event matches these filters")
    expect(empty).to_contain_text(f"None of the {events.SCAN:,} newest events matches (back to")
    page.get_by_role("link", name="Search further back →").click()
    expect(empty).to_contain_text("None of the 500 remaining events matches")
    expect(empty).to_contain_text("the oldest kept")
    expect(empty).not_to_contain_text("point an SDK")
    shot(page, "events-searched-back")
    page.get_by_role("link", name="Clear the filters").click()
    expect(page).to_have_url(re.compile(r"/events$"))
    expect(page.locator("tr.event")).to_have_count(50)


async def _stored(url: str, count: int) -> None:
    """`count` track events of the one source, stored as the gateway would."""
    async with connection(url) as conn:
        await conn.execute(
            """INSERT INTO ingest_events (source_id, partition, received_at, message_id, payload)
               SELECT (SELECT id FROM sources), i %% 64, now() - (%s - i) * interval '1 ms',
                      'bulk-' || i, json_build_object('type', 'track', 'event', 'Bulk',
                                                      'userId', 'u' || i %% 50)
               FROM generate_series(1, %s) i""",
            (count, count),
        )
