"""The second wave of destinations in the UI: each is in the catalog, its settings form stars
the required fields, offers choices as selects and has a line of help under every field, and
one is created from its form and sent a test event that reaches (a double of) its vendor."""

from playwright.sync_api import Page, expect

from e2e.conftest import shot, sign_in
from engine.destinations.catalog import TYPES
from tests.sink import Sink
from tests.vendors.posthog import PostHogDouble
from ui import forms

WAVE = ("braze", "hs", "customerio", "intercom", "klaviyo", "iterable", "posthog", "slack",
        "tiktok_ads", "pinterest_tag", "snapchat_conversion")  # fmt: skip
KEY = "phc_e2eTestProjectKey0123456789"


def test_each_destination_has_a_form_with_help_required_fields_and_choices(page: Page) -> None:
    sign_in(page, "admin@example.com", then="/destinations/new")
    for kind in WAVE:
        card = page.locator(f"a.typecard[href='/destinations/new?type={kind}']")
        expect(card).to_contain_text(TYPES[kind].title)
    shot(page, "destination-catalog")
    for kind in WAVE:
        plugin = TYPES[kind]
        page.goto(f"/destinations/new?type={kind}")
        for field in forms.fields(plugin, {}):
            row = page.locator(".field", has=page.locator(f"#f-{field.key}"))
            expect(row.locator(f"#h-{field.key}")).to_have_text(plugin.help[field.key])
            expect(row.locator(".req")).to_have_count(1 if field.required else 0)
            if field.kind == "choice":
                assert field.choices, field  # (an optional Literal's choices were once lost)
                options = page.locator(f"select#f-{field.key} option")
                unset = field.value not in field.choices  # (an optional setting without default)
                expect(options).to_have_count(len(field.choices) + unset)
                expect(page.locator(f"select#f-{field.key}")).to_have_value(field.value)
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto("/destinations/new?type=slack")
    shot(page, "destination-new-slack-390")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390


def test_a_posthog_destination_is_created_from_its_form_and_sent_a_test_event(
    page: Page,
) -> None:
    double = PostHogDouble(KEY)
    with Sink(double) as sink:
        sign_in(page, "admin@example.com", then="/destinations/new?type=posthog")
        page.get_by_label("Name").fill("product analytics")
        page.locator("#f-teamApiKey").fill(KEY)
        page.locator("#f-endpoint").fill(sink.url)
        page.get_by_role("button", name="Create destination").click()
        expect(page.get_by_role("heading", name="product analytics")).to_be_visible()
        page.get_by_role("button", name="Send test event").click()
        result = page.locator("#test-result")
        expect(result).to_contain_text("delivered")
        expect(result).to_contain_text(f"POST {sink.url}/batch")
        expect(result).not_to_contain_text(KEY)  # the key travels in the body: masked
        shot(page, "destination-posthog-tested")
        sink.wait_for(1)
    [event] = double.events
    assert event["event"] == "Sluice Test Event"
