"""The destination catalog and forms in Chromium: logos, a line and a category per type, search
as one types (and without JavaScript); forms with switches, tables of rows with add and remove,
every refused field at once, sources connected while creating; what a viewer sees (no dead
ends: issue 23, defect 7); and a group call Amplitude cannot take with its default settings,
filtered and explained rather than failed (defect 5)."""

from pathlib import Path

import httpx
from playwright.sync_api import Page, expect

from e2e.conftest import run, shot, sign_in
from engine import specs
from engine.control import workspace
from engine.db import connection
from engine.destinations.catalog import TYPES
from tests.servers import GatewayProcess, running_worker
from tests.sink import Sink
from tests.vendors.amplitude import AmplitudeDouble

WRITE_KEY = "destination-forms-e2e-key"


def apply(database_url: str, text: str) -> None:
    async def work() -> None:
        async with connection(database_url) as conn:
            await workspace.apply(conn, specs.parse(text))

    run(work())


def fits(page: Page, width: int = 390) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= width


def test_the_catalog_shows_logos_lines_and_groups_and_searches_as_one_types(page: Page) -> None:
    sign_in(page, "admin@example.com", then="/destinations/new")
    cards = page.locator("#catalog .typecard")
    expect(cards).to_have_count(len(TYPES))
    for kind in TYPES.values():
        card = page.locator(f"a.typecard[href='/destinations/new?type={kind.name}']")
        expect(card.locator(".desc")).to_have_text(kind.description)
        group = page.locator(".catalog-group", has=card)
        expect(group.locator("h2")).to_have_text(kind.category)
    logos = page.locator(".typecard img.logo")
    loaded = logos.evaluate_all("imgs => imgs.map(i => i.naturalWidth)")
    assert len(loaded) == len(TYPES) and all(width > 0 for width in loaded), loaded
    page.set_viewport_size({"width": 1440, "height": 900})
    shot(page, "destination-catalog-1440")
    page.get_by_label("Search destination types").press_sequentially("warehouse")
    warehouses = [k.title for k in TYPES.values() if k.category == "Warehouses"]
    expect(page.locator("#catalog .typecard:visible .name")).to_have_text(sorted(warehouses))
    expect(page.get_by_role("heading", name="Analytics")).to_be_hidden()
    page.get_by_label("Search destination types").fill("")
    page.get_by_label("Search destination types").press_sequentially("no such vendor")
    expect(page.locator("#catalog-none")).to_be_visible()
    page.goto("/destinations/new?q=product+analytics")  # the server's search, without script
    expect(page.locator("#catalog .typecard .name")).to_have_text(["Amplitude", "Mixpanel",
                                                                   "PostHog"])  # fmt: skip
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto("/destinations/new")
    shot(page, "destination-catalog-390")
    fits(page)


def test_a_viewer_meets_no_dead_end(page: Page, database_url: str) -> None:
    apply(database_url, """
sources: [{name: website}]
destinations:
  - {name: orders hook, type: webhook, config: {webhookUrl: "https://hooks.example.com/in?token=t0ken",
     headers: [{from: X-Team, to: growth}]}}
connections: [{source: website, destination: orders hook}]
""")  # fmt: skip
    sign_in(page, "viewer@example.com")
    expect(page.get_by_role("link", name="Add destination")).to_have_count(0)
    page.get_by_role("link", name="orders hook").first.click()
    expect(page.get_by_role("heading", name="orders hook")).to_be_visible()
    expect(page.get_by_role("heading", name="Send a test event")).to_have_count(0)
    settings = page.locator("#settings")
    expect(settings.locator("input, select, textarea, button")).to_have_count(0)
    expect(settings.locator("#v-headers")).to_contain_text("X-Team")
    expect(settings.locator("#v-headers")).not_to_contain_text("growth")  # private to editors
    expect(settings.locator("#v-webhookUrl")).not_to_contain_text("t0ken")
    expect(page.locator("form[action$='/delivery']")).to_have_count(0)
    page.set_viewport_size({"width": 1440, "height": 900})
    shot(page, "destination-viewer-1440")
    page.set_viewport_size({"width": 390, "height": 844})
    shot(page, "destination-viewer-390")
    fits(page)
    for path in ("/destinations/new", "/destinations/new?type=webhook"):
        page.goto(path)
        expect(page.locator("#ask-an-editor")).to_contain_text("ask one to add it")
        expect(page.locator("a.typecard")).to_have_count(0)
        expect(page.get_by_role("button", name="Create destination")).to_have_count(0)
    shot(page, "destination-catalog-viewer-390")
    page.set_viewport_size({"width": 1440, "height": 900})
    shot(page, "destination-catalog-viewer-1440")


def test_a_form_refuses_every_wrong_field_at_once_and_connects_sources_as_it_creates(
    page: Page, database_url: str
) -> None:
    apply(database_url, "sources: [{name: website}, {name: ios app}, {name: backend}]")
    sign_in(page, "admin@example.com", then="/destinations/new?type=webhook")
    rows = page.locator("#f-headers tbody tr")
    expect(rows).to_have_count(1)  # one empty row to fill
    page.get_by_role("button", name="Add row").click()
    page.get_by_role("button", name="Add row").click()
    expect(rows).to_have_count(3)
    rows.nth(0).get_by_label("Headers: From").fill("X-Team")
    rows.nth(0).get_by_label("Headers: To").fill("growth")
    rows.nth(1).get_by_label("Headers: From").fill("X-Drop")
    rows.nth(2).get_by_label("Headers: From").fill("X-Env")
    rows.nth(2).get_by_label("Headers: To").fill("prod")
    rows.nth(1).get_by_role("button", name="Remove this row").click()
    expect(rows).to_have_count(2)
    page.get_by_label("website").check()
    page.get_by_label("backend").check()
    page.get_by_role("button", name="Create destination").click()  # no name, no URL
    summary = page.locator("#form-errors")
    expect(summary).to_contain_text("2 fields need attention")
    expect(summary.get_by_role("link")).to_have_text(["Name", "Webhook url"])
    expect(page.locator("#e-name")).to_be_visible()
    expect(page.locator("#e-webhookUrl")).to_contain_text("required")
    expect(rows).to_have_count(3)  # what was typed stays, and a row to add another
    expect(page.get_by_label("website")).to_be_checked()
    expect(page.get_by_label("ios app")).not_to_be_checked()
    page.set_viewport_size({"width": 1440, "height": 900})
    shot(page, "destination-form-errors-1440")
    page.set_viewport_size({"width": 390, "height": 844})
    shot(page, "destination-form-errors-390")
    fits(page)
    summary.get_by_role("link", name="Webhook url").click()
    page.get_by_label("Name").fill("team hook")
    page.locator("#f-webhookUrl").fill("https://hooks.example.com/in")
    page.get_by_role("button", name="Create destination").click()
    expect(page.get_by_role("heading", name="team hook")).to_be_visible()
    linked = page.locator("section", has=page.get_by_role("heading", name="Sources sending here"))
    expect(linked.locator("li > a[href^='/sources/']")).to_have_text(["backend", "website"])
    saved = page.locator("#f-headers input[name='headers:from']")
    assert saved.evaluate_all("inputs => inputs.map(i => i.value)") == ["X-Team", "X-Env", ""]


def test_booleans_are_switches_that_save(page: Page, database_url: str) -> None:
    apply(database_url, """
destinations: [{name: amp, type: amplitude, config: {apiKey: amp-key-123456}}]
""")  # fmt: skip
    sign_in(page, "admin@example.com")
    page.get_by_role("link", name="amp", exact=True).first.click()
    switch = page.get_by_role("switch", name="Track products once")
    expect(switch).not_to_be_checked()
    switch.check()
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_role("status")).to_contain_text("Settings saved")
    expect(page.get_by_role("switch", name="Track products once")).to_be_checked()
    page.set_viewport_size({"width": 1440, "height": 900})
    shot(page, "destination-amplitude-admin-1440")
    page.set_viewport_size({"width": 390, "height": 844})
    shot(page, "destination-amplitude-admin-390")
    fits(page)


def test_a_group_call_amplitude_cannot_take_is_filtered_and_the_setting_named(
    page: Page, gateway: GatewayProcess, workdir: Path, database_url: str
) -> None:
    double = AmplitudeDouble("amp-key-123456")
    with Sink(double) as sink, running_worker(database_url, workdir):
        apply(database_url, f"""
sources: [{{name: website, write_key: {WRITE_KEY}}}]
destinations: [{{name: amp, type: amplitude, config: {{apiKey: amp-key-123456,
                 endpoint: "{sink.url}"}}}}]
connections: [{{source: website, destination: amp}}]
""")  # fmt: skip
        batch = [
            {"type": "group", "userId": "u1", "groupId": "g1", "messageId": "m-group",
             "traits": {"name": "Acme"}},
            {"type": "track", "userId": "u1", "event": "Signed Up", "messageId": "m-track"},
        ]  # fmt: skip
        answer = httpx.post(f"{gateway.url}/v1/batch", json={"batch": batch},
                            auth=(WRITE_KEY, ""))  # fmt: skip
        assert answer.status_code == 200
        sink.wait_for(1)
        sign_in(page, "admin@example.com", then="/events?q=m-group")
        row = page.locator("tr.detail details").first
        row.locator("summary").click()
        outcome = row.locator(".outcome")
        expect(outcome.locator(".badge")).to_have_text("filtered", timeout=15_000)
        expect(outcome).to_contain_text("group calls need the settings `groupTypeTrait`")
        shot(page, "event-group-filtered")
    page.goto("/connections")
    page.get_by_role("link", name="amp", exact=True).first.click()
    expect(page.locator("#h-groupTypeTrait")).to_contain_text("enables group calls")
    assert [e["event_type"] for e in double.events] == ["Signed Up"]
