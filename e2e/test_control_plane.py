"""Signing in, the connections page, users and the audit log, in Chromium."""

import re
from pathlib import Path

from playwright.sync_api import Dialog, Page, expect

from e2e.conftest import PASSWORD, run, send_events, shot, sign_in
from engine import specs
from engine.control import workspace
from engine.db import connection
from tests.servers import GatewayProcess, running_worker
from tests.sink import Sink

WORKSPACE = """
sources: [{name: website}, {name: ios-app, enabled: false}]
destinations:
  - {name: warehouse hook, type: webhook, config: {webhookUrl: "https://hooks.example.com/in"}}
  - {name: product analytics, type: amplitude, config: {apiKey: "amp-secret-key-123"}}
connections:
  - {source: website, destination: warehouse hook}
  - {source: website, destination: product analytics}
  - {source: ios-app, destination: product analytics}
"""


def configure(database_url: str) -> None:
    async def go() -> None:
        async with connection(database_url) as conn:
            await workspace.apply(conn, specs.parse(WORKSPACE))

    run(go())


def test_an_admin_signs_in_sees_the_connections_and_adds_a_user(
    page: Page, database_url: str
) -> None:
    configure(database_url)
    page.goto("/connections")
    expect(page).to_have_url(re.compile(r"/login\?next=%2Fconnections$"))
    page.get_by_label("Email").fill("admin@example.com")
    page.get_by_label("Password").fill("wrong password entirely")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("wrong email or password")
    shot(page, "login-error")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/connections$"))
    expect(page.get_by_role("heading", name="Connections")).to_be_visible()
    expect(page.locator(".node .name")).to_have_text(
        ["ios-app", "website", "product analytics", "warehouse hook"]
    )
    expect(page.locator("path.wire.live")).to_have_count(2)
    expect(page.locator("path.wire.off")).to_have_count(1)  # from the disabled source
    assert "amp-secret-key-123" not in page.content()
    shot(page, "connections")

    page.get_by_role("link", name="Users").click()
    page.get_by_label("Email").fill("newcomer@example.com")
    page.get_by_label("Role", exact=True).select_option("editor")
    page.get_by_label("First password").fill("a-first-password-123")
    page.get_by_role("button", name="Add user").click()
    expect(page.get_by_role("status")).to_contain_text("newcomer@example.com can now sign in")
    expect(page.locator("table.list")).to_contain_text("newcomer@example.com")
    shot(page, "users")

    page.get_by_role("link", name="Audit log").click()
    expect(page.locator("table.list")).to_contain_text("user.create")
    expect(page.locator("table.list")).to_contain_text("login.failed")
    shot(page, "audit")

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/login$"))
    shot(page, "login")


def test_a_new_user_changes_the_given_password_first(page: Page, database_url: str) -> None:
    sign_in(page, "admin@example.com")
    page.goto("/users")
    page.get_by_label("Email").fill("first@example.com")
    page.get_by_label("First password").fill("given-password-1234")
    page.get_by_role("button", name="Add user").click()
    page.get_by_role("button", name="Sign out").click()

    sign_in(page, "first@example.com", "given-password-1234")
    expect(page).to_have_url(re.compile(r"/account/password$"))
    expect(page.locator(".alert.info")).to_contain_text("Choose your own")
    shot(page, "password-change")
    page.get_by_label("Current password").fill("given-password-1234")
    page.locator("input[name=password]").fill("my-own-password-5678")
    page.get_by_label("New password again").fill("my-own-password-5678")
    page.get_by_role("button", name="Change password").click()
    expect(page.get_by_role("status")).to_have_text("Password changed — you are signed in.")
    expect(page).to_have_url(re.compile(r"/connections\?password=changed$"))
    expect(page.get_by_role("link", name="Users")).to_have_count(0)  # a viewer's menu


def test_a_viewer_is_told_no_on_admin_pages(page: Page) -> None:
    sign_in(page, "viewer@example.com")
    expect(page).to_have_url(re.compile(r"/$|/connections$"))
    page.goto("/users")
    expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()
    shot(page, "forbidden")


def test_an_editor_adds_a_source_copies_its_key_and_rotates_it(page: Page) -> None:
    sign_in(page, "editor@example.com")
    page.get_by_label("New source name").fill("checkout <web>")
    page.get_by_role("button", name="Add source").click()
    expect(page).to_have_url(re.compile(r"/sources/[0-9a-f-]{36}$"))
    expect(page.get_by_role("heading", name="checkout <web>")).to_be_visible()
    key = page.locator("#write-key").inner_text()
    assert re.fullmatch(r"[A-Za-z0-9]{32}", key)
    page.locator("button[data-copy='#write-key']").click()
    assert page.evaluate("navigator.clipboard.readText()") == key
    expect(page.locator("#snippet-js")).to_contain_text(f'analytics.load("{key}"')
    page.get_by_text("curl", exact=True).click()
    expect(page.locator("#snippet-curl")).to_be_visible()
    expect(page.locator("#snippet-curl")).to_contain_text(f"curl -u '{key}:'")
    shot(page, "source")

    asked: list[str] = []

    def decline(dialog: Dialog) -> None:
        asked.append(dialog.message)
        dialog.dismiss()

    page.once("dialog", decline)
    page.get_by_role("button", name="Rotate").click()
    page.wait_for_timeout(300)  # a submitted form would have loaded another page by now
    assert asked and asked[0].startswith("Make a new write key?")
    expect(page.locator("#write-key")).to_have_text(key)
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Rotate").click()
    expect(page.locator("#write-key")).not_to_have_text(key)

    page.get_by_role("button", name="Disable source").click()
    expect(page.get_by_role("button", name="Enable source")).to_be_visible()
    page.get_by_role("link", name="Connections").first.click()
    expect(page.locator(".node.off .name")).to_have_text(["checkout <web>"])


def test_source_to_webhook_from_scratch_with_an_event_delivered(
    page: Page, gateway: GatewayProcess, workdir: Path, database_url: str
) -> None:
    """The issue's walk-through: sign in, create a source, copy its key, create a webhook
    destination with a bad URL (inline error) then a good one, connect them, send events with
    `sluice generate-events`, see them delivered."""
    with Sink() as sink, running_worker(database_url, workdir):
        sign_in(page, "admin@example.com")
        page.get_by_label("New source name").fill("website")
        page.get_by_role("button", name="Add source").click()
        page.locator("button[data-copy='#write-key']").click()
        key = page.evaluate("navigator.clipboard.readText()")
        expect(page.locator("#gateway-url")).to_have_text(gateway.url)

        page.get_by_role("link", name="Connections").first.click()
        page.get_by_role("link", name="Add destination").click()
        shot(page, "destination-types")
        page.get_by_role("link", name="Webhook").click()
        page.get_by_label("Name").fill("order hook")
        page.get_by_label("Webhook url").fill("ftp://not-a-web-address")
        page.get_by_role("button", name="Create destination").click()
        error = page.locator("#e-webhookUrl")
        expect(error).to_contain_text("is not an http(s) URL")
        expect(page.get_by_label("Webhook url")).to_have_attribute("aria-invalid", "true")
        shot(page, "destination-invalid")
        page.get_by_label("Webhook url").fill(f"{sink.url}/in")
        page.get_by_role("button", name="Create destination").click()
        expect(page.get_by_role("heading", name="order hook")).to_be_visible()
        destination_url = page.url

        page.get_by_label("Source to connect").select_option(label="website")
        page.get_by_role("button", name="Connect source").click()
        expect(page.locator("ul.plain")).to_contain_text("website")

        page.get_by_role("button", name="Send test event").click()
        result = page.locator("#test-result")
        expect(result).to_contain_text("delivered")
        expect(result).to_contain_text("HTTP 200")
        expect(result).to_contain_text(f"POST {sink.url}/in")
        shot(page, "destination")
        [test] = sink.wait_for(1)
        assert test.json()["event"] == "Sluice Test Event"

        send_events(gateway, key, 5, users=2)
        delivered = sink.wait_for(6)
        # the page, left open, shows them delivered (it refreshes its activity card itself)
        expect(page.locator("#activity td.delivered")).to_have_text("5", timeout=15_000)
        expect(page.locator("#activity td").last).to_have_text("just now")
        shot(page, "destination-delivered")
        page.get_by_role("link", name="Overview").click()
        for role in ("gateway", "worker", "web"):  # every process beats
            expect(page.locator(f"#role-{role} .badge")).to_have_text("up", timeout=15_000)
        expect(page.locator(".tile .figure.ok").first).to_have_text("up to date")
        shot(page, "overview")
        page.get_by_role("link", name="Stats").click()
        hook = page.locator("section", has_text="order hook").last
        expect(hook.locator(".legend strong").first).to_have_text("5")  # delivered
        shot(page, "stats")
        page.goto(destination_url)
    assert len({a.json()["messageId"] for a in delivered}) == 6
    page.get_by_role("link", name="website").first.click()
    expect(page.locator("#activity .figure.received")).to_have_text("5")
    page.goto("/connections")
    expect(page.locator("path.wire.live")).to_have_count(1)
    expect(page.locator(".node .delivered")).to_have_text("5 delivered")
    shot(page, "connections-after")


def test_a_connection_gets_a_transformation_and_event_filters(
    page: Page, database_url: str
) -> None:
    configure(database_url)

    async def add_transformation() -> None:
        async with connection(database_url) as conn:
            await workspace.apply(conn, specs.parse(
                "transformations: [{name: tag-orders, code: 'export function transformEvent(e)"
                " { e.properties = {...e.properties, tagged: true}; return e; }'}]"
            ))  # fmt: skip

    run(add_transformation())
    sign_in(page, "editor@example.com")
    page.locator("a.name", has_text="warehouse hook").click()
    page.get_by_role("link", name="transformation and filters").click()
    expect(page.get_by_role("heading", name="website → warehouse hook")).to_be_visible()
    page.get_by_label("Run on each event before it is sent").select_option("tag-orders")
    page.get_by_label("only the track events named below").check()
    page.get_by_label("Event names, one per line").fill("Order Completed\nCheckout Started\n")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_contain_text("Saved")
    expect(page.get_by_label("Event names, one per line")).to_have_value(
        "Order Completed\nCheckout Started"
    )
    shot(page, "connection")

    async def saved() -> specs.WorkspaceSpec:
        async with connection(database_url) as conn:
            return await workspace.export(conn)

    spec = run(saved())
    hook = next(d for d in spec.destinations if d.name == "warehouse hook")
    assert hook.config["eventFilteringOption"] == "whitelistedEvents"
    assert hook.config["whitelistedEvents"] == [
        {"eventName": "Order Completed"},
        {"eventName": "Checkout Started"},
    ]
    assert hook.config["webhookUrl"] == "https://hooks.example.com/in"
    link = next(c for c in spec.connections if c.destination == "warehouse hook")
    assert link.transformation == "tag-orders"
