"""The shell around every page, in Chromium: it fits a phone (the navigation folds behind a
Menu button), an action refused or unanswered says so, and viewers are not offered actions."""

import os
import re
import subprocess
import sys
from pathlib import Path

from playwright.sync_api import Browser, Page, expect

from e2e.conftest import PHONE, hooked, send_events, shot, sign_in
from tests.servers import GatewayProcess, WebProcess, running_worker, start_web
from tests.sink import Sink

WRITE_KEY = "shell-write-key-0123456789"


def wider_than_the_screen(page: Page) -> int:
    """How far the page reaches past the right edge of the screen (0: it fits)."""
    width: int = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    return width


def test_the_menu_folds_and_unfolds_by_mouse_and_keyboard(page: Page) -> None:
    page.set_viewport_size(PHONE)
    sign_in(page, "admin@example.com")
    menu = page.get_by_role("button", name="Menu")
    events = page.get_by_role("navigation", name="Main").get_by_role("link", name="Events")
    expect(menu).to_have_attribute("aria-expanded", "false")
    expect(events).to_be_hidden()
    menu.click()
    expect(menu).to_have_attribute("aria-expanded", "true")
    expect(events).to_be_visible()
    shot(page, "phone-menu-open")
    page.keyboard.press("Escape")
    expect(events).to_be_hidden()
    expect(menu).to_be_focused()
    page.keyboard.press("Enter")  # the focused button, from the keyboard
    expect(events).to_be_visible()
    page.keyboard.press("Tab")  # into the unfolded links, in order
    expect(page.get_by_role("link", name="Overview")).to_be_focused()
    events.click()
    expect(page).to_have_url(re.compile(r"/events$"))
    expect(menu).to_have_attribute("aria-expanded", "false")  # a new page starts folded

    page.set_viewport_size({"width": 1440, "height": 900})  # a wide screen: no button
    expect(menu).to_be_hidden()
    expect(events).to_be_visible()


def test_without_script_the_navigation_wraps_within_the_screen(
    browser: Browser, web: WebProcess
) -> None:
    context = browser.new_context(base_url=web.url, viewport=PHONE, java_script_enabled=False)
    page = context.new_page()
    try:
        sign_in(page, "admin@example.com")
        expect(page.get_by_role("heading", name="Connections")).to_be_visible()
        expect(page.get_by_role("button", name="Menu")).to_be_hidden()
        expect(page.get_by_role("link", name="Audit log")).to_be_visible()
        assert wider_than_the_screen(page) == 0
    finally:
        context.close()


def test_the_skip_link_jumps_past_the_navigation(page: Page) -> None:
    sign_in(page, "viewer@example.com")
    expect(page.get_by_role("heading", name="Connections")).to_be_visible()
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to the content")
    expect(skip).to_be_focused()
    expect(skip).to_be_in_viewport()
    page.keyboard.press("Enter")
    expect(page.locator("main#content")).to_be_focused()


def test_an_editor_made_a_viewer_meanwhile_is_told_why_an_action_fails(
    page: Page, browser: Browser, web: WebProcess, database_url: str
) -> None:
    hooked(database_url, WRITE_KEY, "https://hooks.example.com/orders")
    sign_in(page, "editor@example.com")
    page.get_by_role("link", name="orders hook").click()
    test = page.get_by_role("button", name="Send test event")
    expect(test).to_be_visible()
    held = page.context.new_page()  # another tab, on the source page
    held.goto("/connections")
    held.get_by_role("link", name="website").click()

    admin = browser.new_context(base_url=web.url)  # an admin, elsewhere, changes their role
    other = admin.new_page()
    try:
        sign_in(other, "admin@example.com", then="/users")
        other.get_by_label("role of editor@example.com").select_option("viewer")
        other.locator("tr", has_text="editor@example.com").get_by_role(
            "button", name="Save"
        ).click()
        expect(other.get_by_label("role of editor@example.com")).to_have_value("viewer")
    finally:
        admin.close()

    test.click()  # an htmx request, answered 403
    message = page.locator("#toast")
    expect(message).to_have_attribute("role", "alert")
    expect(message).to_contain_text(
        "You do not have permission to do this (your role: viewer; it takes editor)"
    )
    shot(page, "htmx-forbidden")
    message.get_by_role("button", name="Dismiss").click()
    expect(message).to_be_hidden()

    # a form shown before the change: the whole page refused, and a way back
    held.get_by_role("button", name="Disable source").click()
    expect(held.get_by_role("heading", name="Not allowed")).to_be_visible()
    expect(held.locator("main")).to_contain_text("your role: viewer; it takes editor")
    shot(held, "page-forbidden")
    held.get_by_role("link", name="Go back").click()
    expect(held).to_have_url(re.compile(r"/sources/[0-9a-f-]{36}$"))
    expect(held.get_by_role("button", name="Disable source")).to_have_count(0)


def test_an_action_without_an_answer_says_the_server_could_not_be_reached(
    page: Page, database_url: str
) -> None:
    hooked(database_url, WRITE_KEY, "https://hooks.example.com/orders")
    sign_in(page, "editor@example.com")
    page.get_by_role("link", name="orders hook").click()
    page.route("**/test", lambda route: route.abort("connectionrefused"))
    page.get_by_role("button", name="Send test event").click()
    expect(page.get_by_role("alert")).to_contain_text("The server could not be reached")


# Counts the alert banner's polls that failed, once htmx (and app.js) has handled each, in an
# attribute of <html> (waiting on a page expression would need eval, which the CSP refuses).
COUNT_FAILED_POLLS = """document.addEventListener("htmx:afterRequest", (event) => {
  if (event.detail.elt.id !== "alert-banner" || event.detail.successful) return;
  const html = document.documentElement;
  html.dataset.failedPolls = Number(html.dataset.failedPolls || 0) + 1;
});"""


def test_a_failing_background_poll_does_not_toast_while_an_action_does(
    page: Page, database_url: str
) -> None:
    hooked(database_url, WRITE_KEY, "https://hooks.example.com/orders")
    page.add_init_script(COUNT_FAILED_POLLS)
    page.route("**/alerts/banner", lambda route: route.fulfill(status=500, body="down"))
    sign_in(page, "editor@example.com")
    page.get_by_role("link", name="orders hook").click()
    expect(page.get_by_role("button", name="Send test event")).to_be_visible()
    failed = expect(page.locator("html"))
    failed.to_have_attribute("data-failed-polls", "1")  # the banner's poll, answered 500
    page.route("**/alerts/banner", lambda route: route.abort("connectionrefused"))
    page.evaluate("htmx.trigger('#alert-banner', 'poll')")
    failed.to_have_attribute("data-failed-polls", "2")  # and unanswered
    toast = page.locator("#toast")
    expect(toast).to_be_hidden()
    broken = {"status": 500, "content_type": "text/plain", "body": "broken"}
    page.route("**/test", lambda route: route.fulfill(**broken))
    page.get_by_role("button", name="Send test event").click()
    expect(toast).to_be_visible()
    expect(toast).to_contain_text("broken")


def test_a_viewer_is_not_offered_changes_on_the_shell_pages(page: Page, database_url: str) -> None:
    hooked(database_url, WRITE_KEY, "https://hooks.example.com/orders")
    sign_in(page, "viewer@example.com")
    expect(page.get_by_role("heading", name="Connections")).to_be_visible()
    expect(page.get_by_role("button", name="Add source")).to_have_count(0)
    expect(page.get_by_role("link", name="Add destination")).to_have_count(0)
    page.get_by_role("link", name="website").click()
    expect(page.get_by_role("heading", name="website")).to_be_visible()
    for action in ("Disable source", "Delete source", "Rotate"):
        expect(page.get_by_role("button", name=action)).to_have_count(0)
    expect(page.get_by_role("link", name="Users")).to_have_count(0)
    shot(page, "viewer-source")


def test_first_run_the_password_is_kept_in_a_file_until_it_is_changed(
    browser: Browser, database_url: str, workdir: Path
) -> None:
    env = {**os.environ, "SLUICE_DATABASE_URL": database_url, "SLUICE_DATA_DIR": str(workdir),
           "SLUICE_CONFIG": str(workdir / "none.toml")}  # fmt: skip
    (workdir / "none.toml").touch()
    setup = subprocess.run([sys.executable, "-m", "appliance", "setup"], env=env,
                           capture_output=True, text=True, timeout=120, check=True)  # fmt: skip
    kept = workdir / "initial-admin-password"
    password = kept.read_text().splitlines()[0]
    assert kept.stat().st_mode & 0o777 == 0o600
    # framed by rules of its own, the password alone on its line
    assert re.search(rf"^={{72}}\n.*one-time password.*\n {{4}}{password}\n.*{kept}.*\n={{72}}$",
                     setup.stdout, re.M), setup.stdout  # fmt: skip

    web = start_web(database_url, workdir)
    context = browser.new_context(base_url=web.url, viewport=PHONE)
    page = context.new_page()
    try:
        sign_in(page, "admin@localhost", password)
        expect(page).to_have_url(re.compile(r"/account/password$"))
        page.get_by_label("Current password").fill(password)
        page.locator("input[name=password]").fill("the-admins-own-password")
        page.get_by_label("New password again").fill("the-admins-own-password")
        page.get_by_role("button", name="Change password").click()
        expect(page.get_by_role("status")).to_have_text("Password changed — you are signed in.")
        assert not kept.exists()
        # the `default` source setup made: the next step is a destination
        steps = page.locator("#first-steps")
        expect(steps.get_by_role("heading")).to_have_text("Get your first event delivered")
        expect(steps.locator("li.done")).to_have_text([re.compile("Add a source")])
        expect(steps.get_by_role("link", name="Add a destination")).to_be_visible()
        assert wider_than_the_screen(page) == 0
        shot(page, "phone-first-run")
    finally:
        context.close()
        web.stop()


def test_an_empty_workspace_leads_to_a_first_delivered_event(
    page: Page, database_url: str, gateway: GatewayProcess, workdir: Path
) -> None:
    sign_in(page, "editor@example.com")
    steps = page.locator("#first-steps")
    expect(steps.get_by_role("heading")).to_have_text("Add your first source")
    shot(page, "first-steps-empty")
    steps.get_by_role("link", name="Add your first source").click()
    expect(page.get_by_label("New source name")).to_be_focused()
    page.keyboard.type("website")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/sources/[0-9a-f-]{36}$"))
    page.get_by_role("link", name="Connections").first.click()
    expect(steps.locator("li.done")).to_have_count(1)
    expect(steps.get_by_role("link", name="Add a destination")).to_be_visible()

    with Sink() as sink, running_worker(database_url, workdir):
        hooked(database_url, WRITE_KEY, sink.url)  # a destination, connected to `website`
        page.reload()
        expect(steps.locator("li.done")).to_have_count(3)
        expect(steps.get_by_role("link", name="The source's snippets")).to_be_visible()
        send_events(gateway, WRITE_KEY, 1)
        sink.wait_for(1)
        page.get_by_role("link", name="orders hook").click()  # its activity refreshes itself
        expect(page.locator("#activity td.delivered")).to_have_text("1", timeout=15_000)
        page.get_by_role("link", name="Connections").first.click()
        expect(page.get_by_role("heading", name="Connections")).to_be_visible()
        expect(page.locator("#first-steps")).to_have_count(0)


def test_a_viewer_sees_the_first_steps_without_their_buttons(page: Page) -> None:
    sign_in(page, "viewer@example.com")
    steps = page.locator("#first-steps")
    expect(steps).to_contain_text("Adding sources and destinations takes an editor or an admin")
    expect(steps.get_by_role("link")).to_have_count(0)
    page.goto("/")
    expect(page.locator("main")).to_contain_text("An editor or an admin adds sources")
