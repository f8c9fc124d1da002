"""The overview in Chromium when a host's HTTPS certificate is close to expiring: the
certificate card shows it as a warning (and an expired one as danger), and the alert the
worker's check fires is in the banner, leading back to the card. At 1440 and 390 px."""

import re

from playwright.sync_api import Page, expect

from e2e.conftest import run, shot, sign_in
from engine.control import alerts
from engine.db import connection
from tests.integration.test_web_home import certified, day


def checked(database_url: str) -> None:
    """The alerts checked now, as the worker checks them every minute."""

    async def go() -> None:
        async with connection(database_url) as conn:
            await alerts.check(conn)

    run(go())


def test_the_overview_warns_of_a_certificate_close_to_expiring(
    page: Page, database_url: str
) -> None:
    certified(database_url, ("events-1", 10, "gateway", "1 second", 84),
              ("events-1", 11, "web", "1 second", 84), ("events-2", 12, "gateway", "1 second", 10),
              ("events-3", 13, "gateway", "1 second", -1))  # fmt: skip
    checked(database_url)
    sign_in(page, "viewer@example.com", then="/")
    card = page.locator("#certificates")
    expect(card.get_by_role("heading")).to_have_text("HTTPS certificates")
    warned = card.locator("li", has_text="events-2")
    expect(warned).to_have_class("certificate warning")
    expect(warned).to_contain_text(f"renew soon events-2 expires {day(10)}, in 10 days")
    expect(warned.locator(".badge")).to_have_css("color", "rgb(180, 83, 9)")  # --warn
    expect(card.locator("li", has_text="events-1")).to_contain_text(
        f"expires {day(84)}, in 84 days"
    )
    expired = card.locator("li", has_text="events-3")
    expect(expired.locator(".badge")).to_have_text("expired")
    expect(expired.locator(".badge")).to_have_css("color", "rgb(185, 28, 28)")  # --bad
    expect(card).to_contain_text("sluice tls install CERT KEY")
    banner = page.locator("#alert-banner [role=alert]")
    expect(banner).to_have_count(2)
    expect(banner.first).to_contain_text("the HTTPS certificate of events-")
    page.set_viewport_size({"width": 1440, "height": 900})
    shot(page, "certificate-overview-1440")
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    shot(page, "certificate-overview-390")
    banner.first.get_by_role("link", name="See the certificates").click()
    expect(page).to_have_url(re.compile(r"/#certificates$"))
    expect(page.locator("#certificates")).to_be_in_viewport()
