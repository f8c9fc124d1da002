"""The audit log in Chromium: who changed what and when, filtered and paged, each change's values
before and after with secrets masked; admins only."""

from playwright.sync_api import Page, expect

from e2e.conftest import run, shot, sign_in
from engine import specs
from engine.control import audit, workspace
from engine.control.changes import Changes
from engine.db import connection

OLD_KEY, NEW_KEY = "old-amplitude-key-1", "new-amplitude-key-2"


def history(database_url: str) -> str:
    """An Amplitude destination, switched off and on by the editor, and 60 key rotations by an
    API token before that; the destination's id."""

    async def go() -> str:
        async with connection(database_url) as conn:
            for _ in range(60):
                await audit.record(conn, "token ci", "source.rotate_key", "website")
            await workspace.apply(conn, specs.parse(f"""
destinations: [{{name: product analytics, type: amplitude, config: {{apiKey: {OLD_KEY}}}}}]
"""))  # fmt: skip
            found = await workspace.id_of(conn, "destination", "product analytics")
            assert found is not None
            editor = Changes(conn, "editor@example.com")
            await editor.switch("destination", found, False)
            await editor.switch("destination", found, True)
            return str(found)

    return run(go())


def test_filters_by_who_what_and_when_and_changes_show_before_and_after_masked(
    page: Page, database_url: str
) -> None:
    destination = history(database_url)
    sign_in(page, "admin@example.com", then=f"/destinations/{destination}")
    page.locator("#f-apiKey").fill(NEW_KEY)
    page.locator("#f-groupTypeTrait").fill("company_type")
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_role("status")).to_contain_text("Settings saved")

    page.get_by_role("link", name="Audit log").click()
    rows = page.locator("#audit > tbody > tr")
    expect(rows).to_have_count(50)  # a page
    latest = rows.first
    expect(latest).to_contain_text("destination.update")
    expect(latest).to_contain_text("product analytics")
    changes = latest.locator("table.changes tbody tr")
    # (the form also stores the defaults the API had left out: those show as changes too)
    expect(changes.filter(has_text="apiKey")).to_have_text("apiKey********")
    expect(changes.filter(has_text="groupTypeTrait")).to_have_text(
        "groupTypeTrait(not set)company_type"
    )
    assert OLD_KEY not in page.content() and NEW_KEY not in page.content()
    shot(page, "audit-admin")

    page.get_by_label("Who").select_option("editor@example.com")
    page.get_by_role("button", name="Show").click()
    expect(rows).to_have_count(2)
    expect(rows.locator("> td:nth-child(3)")).to_have_text(["destination.enable",
                                                          "destination.disable"])  # fmt: skip
    expect(rows.first.locator("table.changes tbody tr")).to_have_text(["enabledfalsetrue"])

    page.get_by_label("Who").select_option("")
    page.get_by_label("What").select_option("destination")
    page.get_by_label("When").select_option("hour")
    page.get_by_role("button", name="Show").click()
    expect(rows).to_have_count(3)
    assert "what=destination" in page.url and "period=hour" in page.url

    page.get_by_label("What").select_option("")
    page.get_by_label("When").select_option("")
    page.get_by_label("From", exact=True).fill("2000-01-01T00:00")
    page.get_by_label("to", exact=True).fill("2000-01-02T00:00")
    page.get_by_role("button", name="Show").click()
    expect(rows).to_have_text(["Nothing matches these filters."])

    page.get_by_role("link", name="Clear").click()
    expect(rows).to_have_count(50)
    page.get_by_role("link", name="Older entries →").click()
    expect(rows).to_have_count(14)  # 60 rotations, the editor's 2, a sign-in and the update: 64
    expect(rows.last).to_contain_text("token ci")
    expect(page.get_by_role("link", name="Older entries →")).to_have_count(0)
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.get_by_role("link", name="← Newest").click()
    expect(rows).to_have_count(50)
    shot(page, "audit-admin-390")


def test_the_audit_log_is_for_admins_only(page: Page) -> None:
    sign_in(page, "viewer@example.com")
    expect(page.get_by_role("link", name="Audit log")).to_have_count(0)
    answer = page.goto("/audit")
    assert answer is not None and answer.status == 403


def test_an_apply_through_the_api_shows_each_value_it_changed_secrets_masked(
    page: Page, database_url: str
) -> None:
    async def applied() -> None:
        async with connection(database_url) as conn:
            for key, limit in ((OLD_KEY, 100), (NEW_KEY, 250)):
                await Changes(conn, "token deploy").apply(specs.parse(f"""
sources: [{{name: web, write_key: web-write-key-1, rate_limit: {limit}}}]
destinations:
  - {{name: product analytics, type: amplitude, config: {{apiKey: {key}}},
     alerts: {{failure_percent: 5, slack_url: "https://hooks.slack.com/services/T0/B0/s3cr3t"}}}}
"""), action="api.apply", target="workspace")  # fmt: skip

    run(applied())
    sign_in(page, "admin@example.com", then="/audit?who=token+deploy")
    rows = page.locator("#audit > tbody > tr")
    expect(rows).to_have_count(2)
    changes = rows.first.locator("table.changes tbody tr")
    expect(changes).to_have_text([
        "destination product analytics: apiKey********",
        "source web: rate_limit100250",
    ])  # fmt: skip
    created = rows.nth(1).locator("table.changes tbody tr")
    expect(created.filter(has_text="source web: write_key")).to_have_text(
        "source web: write_key(not set)****"
    )
    expect(created.filter(has_text="destination product analytics: alerts")).to_contain_text(
        '"slack_url": "****"'
    )
    for secret in (OLD_KEY, NEW_KEY, "web-write-key-1", "s3cr3t"):
        assert secret not in page.content(), secret
