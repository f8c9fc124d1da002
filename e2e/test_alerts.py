"""The Alerts page in Chromium: a rule set on a destination's page fires because its sink
refuses events, Slack (a local double) and email (a local SMTP server) are told, the history
shows it fired and resolved and what each target made of it; a viewer sees it all read-only,
without a target's secret."""

import json
import re
from pathlib import Path

from playwright.sync_api import Page, expect

from e2e.conftest import ARTIFACTS, hooked, run, send_events, shot, sign_in
from engine.control import alerts
from engine.db import connection
from tests.delivery import wait_until
from tests.integration.test_alerts import smtp_server
from tests.servers import GatewayProcess, running_worker
from tests.sink import Answer, Sink

KEY = "alerts-page-e2e-key"
SLACK_PATH = "/services/T0SECRET/B0SECRET/slack-token-e2e"
SMTP_PASSWORD = "smtp-password-e2e"


def firing(database_url: str) -> list[alerts.Alert]:
    """The alerts firing once the rules are checked now, as the worker checks them."""

    async def go() -> list[alerts.Alert]:
        async with connection(database_url) as conn:
            await alerts.check(conn)
            return await alerts.active(conn)

    return run(go())


def test_a_rule_fires_when_a_sink_fails_and_resolves_with_each_target_told(
    page: Page, gateway: GatewayProcess, workdir: Path, database_url: str
) -> None:
    refusing = Answer.json(400, {"error": "no such field"})
    with (
        Sink(lambda arrival: refusing) as sink,
        Sink(lambda arrival: Answer(200, body="ok")) as slack,
        smtp_server() as (mailbox, port),
        running_worker(database_url, workdir),
    ):
        hooked(database_url, KEY, f"{sink.url}/in")
        sign_in(page, "admin@example.com")
        page.get_by_role("link", name="Alerts", exact=True).click()
        expect(page.locator("#rules")).to_contain_text("No destination has an alert rule yet")
        smtp = page.locator("#smtp")
        smtp.get_by_label("Host").fill("127.0.0.1")
        smtp.get_by_label("Port").fill(str(port))
        smtp.get_by_label("Security").select_option("none")
        smtp.get_by_label("Password").fill(SMTP_PASSWORD)
        smtp.get_by_label("From").fill("sluice@example.com")
        smtp.get_by_role("button", name="Save SMTP server").click()
        expect(page.get_by_role("status")).to_contain_text("SMTP server saved")
        expect(smtp.get_by_label("Password")).to_have_attribute(
            "placeholder", "saved — leave blank to keep it"
        )
        assert SMTP_PASSWORD not in page.content()
        smtp.get_by_role("button", name="Send a test email").click()
        expect(page.get_by_role("status")).to_have_text("Test email sent to admin@example.com.")
        [(envelope, tried)] = mailbox.messages
        assert (
            envelope.rcpt_tos == ["admin@example.com"] and tried["Subject"] == "Sluice test email"
        )
        mailbox.messages.clear()

        page.get_by_role("link", name="Connections").first.click()
        page.get_by_role("link", name="orders hook").first.click()
        card = page.locator("#alerts")
        card.get_by_label("Failure share above, %").fill("50")
        card.get_by_label("Slack incoming webhook").fill(f"{slack.url}{SLACK_PATH}")
        card.get_by_label("Email to").fill("oncall@example.com")
        card.get_by_role("button", name="Save alert rule").click()
        expect(page.get_by_role("status")).to_contain_text("Alert rule saved")
        expect(card.get_by_label("Slack incoming webhook")).to_have_attribute(
            "placeholder", "saved — leave blank to keep it"
        )
        expect(card.get_by_label("Email to")).to_have_value("oncall@example.com")
        card.screenshot(path=str(ARTIFACTS / "destination-alerts-card.png"))
        destination = page.url.split("?")[0]

        send_events(gateway, KEY, 12)
        wait_until(lambda: firing(database_url), timeout=60)
        page.get_by_role("link", name="Alerts", exact=True).click()
        rule = page.locator("#rules tbody tr").first
        expect(rule).to_contain_text("orders hook")
        expect(rule).to_contain_text("over 50% failed in 15 min")
        expect(rule).to_contain_text("Slack, email (1)")
        expect(rule.locator(".badge.down")).to_have_text("firing")
        fired = page.locator("#history tbody tr").first
        # (the check may run before the last refusals are counted: 10 are enough to judge)
        expect(fired).to_contain_text(re.compile(r"orders hook: (\d+) of \1 events failed in"))
        notices = fired.locator(".notices li")
        expect(notices).to_have_text(["email fired: took it", "slack fired: took it"])
        [posted] = slack.wait_for(1)
        assert posted.path == SLACK_PATH
        assert "*Sluice alert firing*: orders hook:" in posted.json()["text"]
        assert mailbox.messages[0][0].rcpt_tos == ["oncall@example.com"]

        sink.behaviour = lambda arrival: Answer()  # fixed: 12 failed, 24 delivered is a third
        send_events(gateway, KEY, 24)
        wait_until(lambda: not firing(database_url), timeout=60)
        page.reload()
        expect(rule.locator(".badge.on")).to_have_text("ok")
        expect(fired.locator("td").nth(1)).not_to_contain_text("firing")
        expect(notices).to_have_text([
            "email fired: took it · resolved: took it", "slack fired: took it · resolved: took it",
        ])  # fmt: skip
        shot(page, "alerts-admin")
        page.set_viewport_size({"width": 390, "height": 844})
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        shot(page, "alerts-admin-390")
    assert [m["Subject"].split(":")[0] for _, m in mailbox.messages] == [
        "Sluice alert firing", "Sluice alert resolved"]  # fmt: skip

    page.context.clear_cookies()
    page.set_viewport_size({"width": 1366, "height": 820})
    sign_in(page, "viewer@example.com", then="/alerts")
    expect(page.locator("#rules tbody tr").first).to_contain_text("Slack, email (1)")
    expect(page.locator("#history .notices").first).to_contain_text("resolved: took it")
    expect(page.get_by_role("heading", name="Email (SMTP server)")).to_have_count(0)
    expect(page.get_by_role("link", name="Edit")).to_have_count(0)
    for secret in ("T0SECRET", "slack-token-e2e", SMTP_PASSWORD, "127.0.0.1:"):
        assert secret not in page.content(), secret
    shot(page, "alerts-viewer")
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    shot(page, "alerts-viewer-390")
    page.goto(destination)
    expect(page.locator("#alerts")).to_contain_text("Slack incoming webhook")
    expect(page.locator("#alerts")).to_contain_text("1 address(es)")
    expect(page.locator("#alerts form, #alerts input:not([type=hidden])")).to_have_count(0)
    expect(page.locator("#alerts")).to_contain_text("50 %")  # the rule, as text
    page.locator("#alerts").screenshot(path=str(ARTIFACTS / "destination-alerts-card-viewer.png"))
    assert "T0SECRET" not in page.content() and "slack-token-e2e" not in page.content()


def test_a_viewer_cannot_set_or_try_the_smtp_server(page: Page) -> None:
    sign_in(page, "viewer@example.com", then="/alerts")
    expect(page.get_by_role("heading", name="Alerts", exact=True)).to_be_visible()
    headers = json.loads(page.evaluate("document.body.getAttribute('hx-headers')"))
    answer = page.request.post(
        "/alerts/smtp", form={"host": "evil.example.com", "sender": "a@b.co"}, headers=headers
    )
    assert answer.status == 403
    assert page.request.post("/alerts/smtp/test", headers=headers).status == 403
