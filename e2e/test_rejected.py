"""Messages the gateway refused, in Chromium: counted on Stats, listed with what was sent."""

import time

import httpx
from playwright.sync_api import Page, expect

from e2e.conftest import hooked, shot, sign_in
from tests.servers import GatewayProcess

HOSTILE = "<img src=x onerror=alert(1)>"


def test_an_oversized_message_is_listed_with_what_was_sent(
    page: Page, gateway: GatewayProcess, database_url: str
) -> None:
    hooked(database_url, "rejected-e2e-key", "http://127.0.0.1:9/in")
    fits = {"type": "track", "userId": "u", "event": "Fits"}
    big = {"type": "track", "userId": "u", "event": HOSTILE, "properties": {"blob": "x" * 40_000}}
    answer = httpx.post(
        f"{gateway.url}/v1/batch", json={"batch": [fits, big]}, auth=("rejected-e2e-key", "")
    )
    assert answer.status_code == 200  # the message that fits is stored
    sign_in(page, "viewer@example.com", then="/stats?window=hour")
    link = page.get_by_role("link", name="rejected at the gateway")
    deadline = time.monotonic() + 30
    while link.count() == 0:  # the gateway stores what it refused once a second
        assert time.monotonic() < deadline, "the refused message was never counted"
        page.wait_for_timeout(500)
        page.reload()
    expect(page.locator("#rejected-count")).to_contain_text("1 message over the size limit")
    link.click()
    expect(page.get_by_role("heading", name="Rejected at the gateway")).to_be_visible()
    rows = page.locator("#rejected tbody tr:not(.detail)")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("message 1 of the batch is")
    expect(rows.first).to_contain_text("website")
    page.get_by_text("bytes as sent").click()
    expect(page.locator("#rejected pre")).to_contain_text(HOSTILE)  # as text, never as markup
    shot(page, "rejected-1440")
    page.set_viewport_size({"width": 390, "height": 844})
    shot(page, "rejected-390")
