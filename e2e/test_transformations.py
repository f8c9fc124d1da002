"""The transformation editor in Chromium: write code (Tab indents), test it on a sample event,
see a thrown error's line, save it as a new version."""

from playwright.sync_api import Page, expect

from e2e.conftest import shot, sign_in

TAGGING = """export function transformEvent(event) {
event.properties = { ...event.properties, tagged: true };
log("tagged " + event.event);
return event;
}"""
THROWING = """export function transformEvent(event) {
  const unused = 1;
  throw new Error("refused " + event.event);
}"""


def test_edit_test_and_save_a_transformation(page: Page) -> None:
    sign_in(page, "editor@example.com", then="/transformations")
    page.get_by_label("New transformation name").fill("tagger")
    page.get_by_role("button", name="Add transformation").click()
    expect(page.get_by_role("heading", name="tagger")).to_be_visible()
    editor = page.get_by_label("Code", exact=True)
    editor.fill(TAGGING)
    expect(page.locator(".editor .gutter")).to_have_text("1\n2\n3\n4\n5")  # line numbers
    # Tab indents the line instead of leaving the editor
    editor.press("Control+Home")
    editor.press("ArrowDown")
    editor.press("Tab")
    assert editor.input_value().splitlines()[1].startswith("  event.properties")
    expect(editor).to_be_focused()

    page.get_by_role("button", name="Test").click()
    result = page.locator("#result")
    expect(result).to_contain_text("Output: 1 event")
    expect(result).to_contain_text('"tagged": true')
    expect(result.locator("pre").nth(1)).to_have_text("tagged Sluice Test Event")

    editor.fill(THROWING)
    page.get_by_role("button", name="Test").click()
    expect(result.get_by_role("alert")).to_contain_text("Error: refused Sluice Test Event (line 3:")
    shot(page, "transformation")

    editor.fill(TAGGING)
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_contain_text("Saved as a new version")
    expect(page.locator("#versions tbody tr")).to_have_count(2)
    page.get_by_role("link", name="what changed").first.click()
    expect(page.locator("pre.diff .added").first).to_be_visible()
