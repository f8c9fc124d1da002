"""The Failed page in Chromium: failures grouped by destination and error, a group's jobs, a
replay confirmed and accounted for, the counts everywhere else once it delivered, network errors
in words, the filter after Back, and what a viewer is (not) offered."""

import re
import socket
import time
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

from playwright.sync_api import Dialog, Page, expect

from e2e.conftest import DESKTOP, PHONE, hooked, run, send_events, shot, sign_in
from engine import specs
from engine.control import failures, workspace
from engine.db import connection
from tests.integration.test_failure_groups import counted_at
from tests.integration.test_failures import HOOKS, Untouched, failing
from tests.servers import GatewayProcess, running_worker
from tests.sink import Answer, Sink

HOSTILE = "<img src=x onerror=alert(1)>"


def reload_until(page: Page, selector: str, count: int) -> None:
    """Reload until the page lists `count` of `selector`: the worker records as it goes."""
    deadline = time.monotonic() + 30
    while page.locator(selector).count() < count:
        assert time.monotonic() < deadline, f"never {count} of {selector}"
        page.wait_for_timeout(500)
        page.reload()


def test_refused_events_are_grouped_replayed_once_fixed_and_stop_counting_as_failed(
    page: Page, gateway: GatewayProcess, workdir: Path, database_url: str
) -> None:
    refusing = Answer.json(400, {"error": f"unknown field {HOSTILE}"})
    with Sink(lambda arrival: refusing) as sink, running_worker(database_url, workdir):
        hooked(database_url, "failed-page-e2e-key", f"{sink.url}/in")
        send_events(gateway, "failed-page-e2e-key", 3)
        sign_in(page, "editor@example.com")
        page.get_by_role("link", name="Failed").click()
        reload_until(page, "tbody.group", 1)
        group = page.locator("tbody.group").first
        expect(group.locator("a.jobs")).to_have_text("3 jobs →")  # once all three are recorded
        expect(group.locator("td.error")).to_have_text("HTTP 400")
        group.locator("summary").click()  # the sample: the latest one's request and answer
        expect(group.locator("details pre").nth(1)).to_contain_text(HOSTILE)  # text: it did not run
        assert page.locator("img[src=x]").count() == 0
        shot(page, "failed-groups")
        counted_as_failed(page, 3)

        page.goto("/failed")
        page.get_by_role("link", name="3 jobs →").click()
        expect(page.locator("tbody.job")).to_have_count(3)
        expect(page.locator("h2.group-title")).to_have_text("orders hook · HTTP 400")
        shot(page, "failed-group")
        page.locator("tbody.job td a").first.click()  # each job opens its event
        expect(page).to_have_url(re.compile(r"/events/\d+/\d+\?at="))
        page.go_back()

        sink.behaviour = lambda arrival: Answer()  # the vendor's side is fixed
        asked: list[str] = []

        def agree(dialog: Dialog) -> None:
            asked.append(dialog.message)
            dialog.accept()

        page.on("dialog", agree)
        page.get_by_role("button", name="Replay all 3").click()
        expect(page.locator("#progress")).to_contain_text(
            "Replayed 3 failed event(s) as 3 new job(s)"
        )
        expect(page.locator("tbody.job")).to_have_count(0)  # the replayed left the list
        assert len(asked) == 1  # asked once (by htmx; the form's own question is not asked)
        assert asked[0].startswith("Replay all 3 failed events in this group?")
        expect(page.locator("#outcomes")).to_contain_text(
            "3 replayed → 3 delivered, 0 failed again, 0 still sending", timeout=30_000
        )
        shot(page, "failed-replayed")
        page.remove_listener("dialog", agree)
        page.set_viewport_size(PHONE)
        shot(page, "failed-replayed-phone")
        page.set_viewport_size(DESKTOP)
        delivered = sink.wait_for(3)
    assert len({a.json()["messageId"] for a in delivered}) == 3
    page.get_by_role("link", name="Refresh the list").first.click()
    expect(page.get_by_role("heading", name="Nothing has failed")).to_be_visible()
    counted_as_failed(page, 0)


def counted_as_failed(page: Page, failed: int) -> None:
    """What the overview, Connections, the source page and Stats say failed (issue 23, 4)."""
    page.goto("/")
    banner = page.locator(".alert.error", has_text="failed in the last hour")
    expect(banner).to_have_count(1 if failed else 0)
    page.goto("/connections")
    node = page.locator(".node", has_text="orders hook")
    expect(node.locator(".bad")).to_have_count(1 if failed else 0)
    if failed:
        expect(node.locator(".bad")).to_have_text(f"{failed} failed")
    page.locator(".column a.name", has_text="website").click()
    expect(page.locator("span.bad", has_text="failed")).to_have_count(1 if failed else 0)
    page.goto("/stats?window=hour")
    card = page.locator("section[id^=stats-]", has_text="orders hook")
    expect(card.locator("figcaption span", has_text="failed")).to_contain_text(f"failed {failed}")
    if not failed:
        expect(card).to_contain_text("3 failed, then replayed")


def test_a_network_error_is_a_sentence_naming_host_and_port(
    page: Page, gateway: GatewayProcess, workdir: Path, database_url: str
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]  # closed again: nothing listens there
    with running_worker(database_url, workdir):
        hooked(database_url, "failed-network-key", f"http://127.0.0.1:{port}/in?token=hush")
        send_events(gateway, "failed-network-key", 1)
        sign_in(page, "editor@example.com", then="/failed?view=retrying")
        reload_until(page, "tbody.group", 1)
    error = page.locator("tbody.group td.error")
    expect(error).to_have_text(f"could not connect to 127.0.0.1:{port}: connection refused")
    shot(page, "failed-network-error")


def test_back_and_forward_leave_the_filter_as_the_address_says(page: Page) -> None:
    """Chromium puts back the choice last made in the form on Back (its form restoring); the
    page's data-mirror-url (app.js) sets it to what the address says again."""
    sign_in(page, "viewer@example.com", then="/failed")
    show = page.get_by_label("Show")
    expect(show).to_have_value("aborted")
    show.select_option("retrying")
    page.get_by_role("button", name="Show").click()
    expect(page).to_have_url(re.compile(r"view=retrying"))
    expect(page.get_by_role("heading", name="Nothing is being retried")).to_be_visible()
    page.go_back()
    expect(page.get_by_role("heading", name="Nothing has failed")).to_be_visible()
    expect(show).to_have_value("aborted")
    page.go_forward()
    expect(page.get_by_role("heading", name="Nothing is being retried")).to_be_visible()
    expect(show).to_have_value("retrying")
    page.goto("/failed?window=ever")  # not a choice: the page shows all time, and so does the form
    expect(page.get_by_label("Failed in")).to_have_value("all")


def test_a_long_group_pages_and_a_viewer_is_offered_no_action(
    page: Page, database_url: str
) -> None:
    run(configure(database_url))
    failing(database_url, "hook-a", 105)
    failing(database_url, "hook-b", 2)
    sign_in(page, "admin@example.com", then="/failed")
    expect(page.locator("tbody.group")).to_have_count(2)
    expect(page.get_by_role("button", name="Replay all 107")).to_be_visible()
    for size, name in ((DESKTOP, "desktop"), (PHONE, "phone")):
        page.set_viewport_size(size)
        shot(page, f"failed-groups-admin-{name}")
    no_wider_than_the_screen(page)
    page.get_by_role("link", name="105 jobs →").click()
    expect(page.locator("tbody.job")).to_have_count(100)
    expect(page.locator("input.pick")).to_have_count(100)
    page.get_by_role("link", name="Next 100 →").click()
    expect(page.locator("tbody.job")).to_have_count(5)
    page.get_by_role("link", name="← First page").click()
    expect(page.locator("tbody.job")).to_have_count(100)
    for size, name in ((DESKTOP, "desktop"), (PHONE, "phone")):
        page.set_viewport_size(size)
        shot(page, f"failed-group-admin-{name}")
    no_wider_than_the_screen(page)

    page.context.clear_cookies()
    sign_in(page, "viewer@example.com", then="/failed")
    expect(page.locator("tbody.group")).to_have_count(2)
    shot(page, "failed-groups-viewer-phone")
    no_wider_than_the_screen(page)
    page.set_viewport_size(DESKTOP)
    shot(page, "failed-groups-viewer-desktop")
    assert page.get_by_role("button", name=re.compile("Replay|Discard")).count() == 0
    page.get_by_role("link", name="105 jobs →").click()
    expect(page.locator("tbody.job")).to_have_count(100)
    assert page.locator("input[type=checkbox]").count() == 0
    assert page.get_by_role("button", name=re.compile("Replay|Discard")).count() == 0
    shot(page, "failed-group-viewer-desktop")


def test_failures_either_side_of_a_minute_are_discarded_at_once_and_stop_counting(
    page: Page, database_url: str
) -> None:
    run(configure(database_url))
    jobs = failing(database_url, "hook-a", 4)
    # the last two failed a moment into the next minute, counted by a transaction begun before
    counted_at(database_url, jobs, ["10", "59.9", "60.1", "60.2"], {"0": 4})
    sign_in(page, "editor@example.com", then="/stats?window=hour")
    card = page.locator("section[id^=stats-]", has_text="hook-a")
    expect(card.locator("figcaption span", has_text="failed")).to_contain_text("failed 4")
    page.goto("/failed")
    page.on("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Discard all").click()
    expect(page.get_by_role("status")).to_have_text(
        "Discarded 4 failed event(s): they will not be sent."
    )  # (it was an error, and again at every try: the batch wrote one counter twice)
    expect(page.get_by_role("heading", name="Nothing has failed")).to_be_visible()
    page.goto("/stats?window=hour")
    expect(card.locator("figcaption span", has_text="failed")).to_contain_text("failed 0")
    expect(card).to_contain_text("4 failed, then discarded")  # (they were nowhere)
    shot(page, "stats-discarded")
    page.set_viewport_size(PHONE)
    shot(page, "stats-discarded-phone")
    no_wider_than_the_screen(page)


def test_a_replays_jobs_settled_since_are_named_so_and_a_long_replay_is_followed_no_more(
    page: Page, database_url: str
) -> None:
    run(configure(database_url))
    failing(database_url, "hook-a", 4)
    sign_in(page, "editor@example.com", then="/failed")
    page.on("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Replay all 4").click()
    outcomes = page.locator("#outcomes")
    expect(outcomes).to_contain_text("4 replayed → 0 delivered, 0 failed again, 4 still sending")
    asked = parse_qs(urlsplit(outcomes.get_attribute("hx-get") or "").query)
    since = datetime.fromisoformat(asked["since"][0])
    made = (int(asked["first_job"][0]), int(asked["last_job"][0]))

    # a replay begun long ago is followed no more, its jobs being sent or not
    long_ago = {**{k: v[0] for k, v in asked.items()}, "since": (since - timedelta(minutes=11))}
    page.goto(f"/failed?{urlencode(long_ago)}")
    expect(outcomes).to_contain_text("4 still sending")
    expect(outcomes).to_contain_text("No longer followed: the replay began over 10 minutes ago.")
    expect(outcomes).not_to_have_attribute("hx-get", re.compile(".*"))
    shot(page, "failed-outcomes-followed-no-more")

    page.goto(f"/failed?{urlencode({k: v[0] for k, v in asked.items()})}")
    expect(outcomes).to_contain_text("4 still sending")
    run(settle_again(database_url, made))
    expect(outcomes).to_have_text(
        re.compile(
            r"4 replayed → 1 delivered, 1 failed again, 1 failed again and replayed again,"
            r"\s+1 failed again and discarded,\s+0 still sending\."
        )
    )  # (all three that failed were "failed again")
    expect(outcomes).not_to_have_attribute("hx-get", re.compile(".*"))
    for size, name in ((DESKTOP, "desktop"), (PHONE, "phone")):
        page.set_viewport_size(size)
        shot(page, f"failed-outcomes-{name}")
    no_wider_than_the_screen(page)


def test_what_failed_after_the_page_was_drawn_is_left_for_the_next_replay(
    page: Page, database_url: str
) -> None:
    run(configure(database_url))
    failing(database_url, "hook-a", 2)
    sign_in(page, "editor@example.com", then="/failed")
    replay_all = page.get_by_role("button", name="Replay all 2")
    expect(replay_all).to_be_visible()
    failing(database_url, "hook-a", 1)  # after the page was drawn: not what it offers
    page.on("dialog", lambda dialog: dialog.accept())
    replay_all.click()
    expect(page.locator("#progress")).to_contain_text("Replayed 2 failed event(s) as 2 new job(s)")
    page.get_by_role("link", name="Refresh the list").first.click()
    expect(page.get_by_role("button", name="Replay all 1")).to_be_visible()


async def settle_again(database_url: str, made: tuple[int, int]) -> None:
    """A replay's jobs: one delivered, three failed again, of which someone replays one and
    discards another."""
    async with connection(database_url) as conn:
        await conn.set_autocommit(True)
        cur = await conn.execute("SELECT id FROM jobs WHERE id > %s AND id <= %s ORDER BY id", made)
        again = [row[0] for row in await cur.fetchall()]
        for job, state in zip(again, ["delivered", "aborted", "aborted", "aborted"], strict=True):
            await conn.execute(
                "INSERT INTO job_attempts (job_id, job_created_at, destination_id, attempt, state)"
                " SELECT id, created_at, destination_id, 1, %s FROM jobs WHERE id = %s",
                (state, job),
            )
        await failures.replay(conn, Untouched(), failures.Selection(job_ids=(again[2],)))
        await failures.discard(conn, failures.Selection(job_ids=(again[3],)))


async def configure(database_url: str) -> None:
    async with connection(database_url) as conn:
        await workspace.apply(conn, specs.parse(HOOKS))


def no_wider_than_the_screen(page: Page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert page.viewport_size is not None and width <= page.viewport_size["width"]
