"""Signing in, the connections page, users and the audit log, in Chromium."""

import re

from playwright.sync_api import Page, expect

from e2e.conftest import PASSWORD, run, shot, sign_in
from engine import workspace
from engine.db import connection

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
            await workspace.apply(conn, workspace.parse(WORKSPACE))

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
    expect(page).to_have_url(re.compile(r"/connections$"))
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

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Rotate").click()
    expect(page.locator("#write-key")).not_to_have_text(key)

    page.get_by_role("button", name="Disable source").click()
    expect(page.get_by_role("button", name="Enable source")).to_be_visible()
    page.get_by_role("link", name="Connections").first.click()
    expect(page.locator(".node.off .name")).to_have_text(["checkout <web>"])
