"""The transformation editor in Chromium: CodeMirror with highlighting (Tab indents), a test on
the sample event, on an event typed as JSON or on a real one picked from the newest received,
errors marked on their line in the gutter, saving as a new version by its author, restoring an
old version as a new one, the warning before leaving unsaved code, and what a viewer sees."""

import json
import re

import httpx
from playwright.sync_api import Dialog, Page, expect

from e2e.conftest import run, shot, sign_in
from engine import specs
from engine.control.changes import Changes
from engine.db import connection
from tests.servers import GatewayProcess

TAGGING = """export function transformEvent(event) {
event.properties = { ...event.properties, tagged: true };
log("tagged " + event.event);
return event;
}"""
THROWING = """export function transformEvent(event) {
  const unused = 1;
  throw new Error("refused " + event.event);
}"""
BROKEN = """export function transformEvent(event) {
  return event +;
}"""
CODE = "#code-form .CodeMirror"
PAYLOAD = "#payload .CodeMirror"


def _set(page: Page, editor: str, text: str) -> None:
    """Replace what a CodeMirror editor holds (as pasting over it all would)."""
    page.locator(editor).evaluate("(element, text) => element.CodeMirror.setValue(text)", text)


def _value(page: Page, editor: str) -> str:
    return str(page.locator(editor).evaluate("element => element.CodeMirror.getValue()"))


def _marks(page: Page, editor: str) -> dict[int, str]:
    """The editor's error marks: line (from 1) → the message shown on hover."""
    found = page.locator(editor).evaluate("""element => {
        const cm = element.CodeMirror, marks = {};
        cm.eachLine((line) => {
          const mark = line.gutterMarkers && line.gutterMarkers.errors;
          if (mark) marks[cm.getLineNumber(line) + 1] = mark.title;
        });
        return marks;
    }""")
    return {int(line): title for line, title in found.items()}


def _new(page: Page, name: str) -> None:
    sign_in(page, "editor@example.com", then="/transformations")
    page.get_by_label("New transformation name").fill(name)
    page.get_by_role("button", name="Add transformation").click()
    expect(page.get_by_role("heading", name=name)).to_be_visible()


def test_edit_test_and_save_a_transformation(page: Page) -> None:
    _new(page, "tagger")
    editor = page.locator(CODE)
    expect(editor).to_be_visible()
    expect(page.locator("textarea#code")).to_be_hidden()  # (the form field, kept up to date)
    expect(editor.locator(".cm-keyword").first).to_have_text("export")  # highlighted
    _set(page, CODE, TAGGING)
    expect(editor.locator(".CodeMirror-linenumber").filter(has_text="5")).to_be_visible()
    # Tab indents the line instead of leaving the editor
    editor.evaluate(
        "element => { element.CodeMirror.focus(); element.CodeMirror.setCursor(1, 0); }"
    )
    page.keyboard.press("Tab")
    assert _value(page, CODE).splitlines()[1].startswith("  event.properties")
    expect(editor).to_have_class(re.compile(r"\bCodeMirror-focused\b"))

    page.get_by_role("button", name="Test").click()
    result = page.locator("#result")
    expect(result).to_contain_text("Output: 1 event")
    expect(result).to_contain_text('"tagged": true')
    expect(result.locator("pre").nth(1)).to_have_text("tagged Sluice Test Event")
    assert _marks(page, CODE) == {}

    # a thrown error: its line is marked in the gutter, the message on hover
    _set(page, CODE, THROWING)
    page.get_by_role("button", name="Test").click()
    expect(result.get_by_role("alert")).to_contain_text("Error: refused Sluice Test Event (line 3:")
    expect(editor.locator(".error-mark")).to_have_count(1)
    assert _marks(page, CODE) == {3: result.get_by_role("alert").inner_text()}
    expect(editor.locator(".error-line")).to_have_count(1)
    shot(page, "transformation")

    # code that does not compile is not saved: the page says where, and keeps the code
    _set(page, CODE, BROKEN)
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("alert")).to_contain_text("line 2: SyntaxError")
    assert _value(page, CODE) == BROKEN
    expect(page.locator(CODE).locator(".error-mark")).to_have_count(1)
    assert list(_marks(page, CODE)) == [2]

    _set(page, CODE, TAGGING)
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_contain_text("Saved as a new version")
    rows = page.locator("#versions tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0).locator("td").nth(2)).to_have_text("editor@example.com")
    expect(rows.nth(1).locator("td").nth(2)).to_have_text("editor@example.com")
    assert _value(page, CODE) == TAGGING
    page.get_by_role("link", name="what changed").first.click()
    expect(page.locator("pre.diff .added").first).to_be_visible()


def test_a_custom_or_real_event_to_test_on(
    page: Page, gateway: GatewayProcess, database_url: str
) -> None:
    run(_apply(database_url, "sources: [{name: shop, write_key: shop-key}]"))
    order = {"type": "track", "event": "Order Completed", "messageId": "order-77",
             "userId": "user-77", "properties": {"total": 77}}  # fmt: skip
    answer = httpx.post(f"{gateway.url}/v1/batch", json={"batch": [order]}, auth=("shop-key", ""))
    assert answer.status_code == 200, answer.text
    sign_in(page, "editor@example.com", then="/events")
    expect(page.locator("tr.event")).to_have_count(1)  # received: in the log
    page.goto("/transformations")
    page.get_by_label("New transformation name").fill("tagger")
    page.get_by_role("button", name="Add transformation").click()
    _set(page, CODE, TAGGING)
    result = page.locator("#result")

    # prefilled with the sample event, which may be edited
    assert '"event": "Sluice Test Event"' in _value(page, PAYLOAD)
    _set(page, PAYLOAD, '{"type": "track", "event": "Signed Up", "userId": "u-1"}')
    page.get_by_role("button", name="Test").click()
    expect(result).to_contain_text("tagged Signed Up")

    # invalid JSON is said so, its line marked; so is JSON that is not one event
    _set(page, PAYLOAD, '{"type": "track",\n  "event": }')
    page.get_by_role("button", name="Test").click()
    alert = result.get_by_role("alert")
    expect(alert).to_have_text(
        "The test event is not valid JSON: Expecting value (line 2, column 12)"
    )
    expect(page.locator(PAYLOAD).locator(".error-mark")).to_have_count(1)  # (marked once settled)
    assert _marks(page, PAYLOAD) == {2: alert.inner_text()}
    shot(page, "transformation-invalid-payload")
    _set(page, PAYLOAD, "[1, 2]")
    page.get_by_role("button", name="Test").click()
    expect(alert).to_have_text("The test event must be one JSON object, in {…}")

    # a real event: one of the newest, or a source's newest
    picker = page.get_by_label("Test event", exact=True)
    newest = page.locator("optgroup[label='One of the newest events'] option")
    expect(newest).to_have_count(1)
    expect(newest).to_contain_text("track “Order Completed” · shop")
    picker.select_option(newest.get_attribute("value"))
    expect(page.locator(PAYLOAD)).to_contain_text('"messageId": "order-77"')
    expect(page.locator(PAYLOAD).locator(".error-mark")).to_have_count(0)
    assert _marks(page, PAYLOAD) == {}  # (the error was about the event replaced)
    page.get_by_role("button", name="Test").click()
    expect(result).to_contain_text("tagged Order Completed")
    expect(result).to_contain_text('"total": 77')
    picker.select_option("sample")
    expect(page.locator(PAYLOAD)).to_contain_text("Sluice Test Event")
    picker.select_option(label="shop")
    expect(page.locator(PAYLOAD)).to_contain_text('"userId": "user-77"')


def test_restore_an_earlier_version(page: Page) -> None:
    _new(page, "tagger")
    first = _value(page, CODE)
    _set(page, CODE, TAGGING)
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_contain_text("Saved as a new version")
    rows = page.locator("#versions tbody tr")
    expect(rows.first.get_by_role("button", name="Restore this version")).to_have_count(0)
    asked: list[str] = []

    def answer(dialog: Dialog) -> None:
        asked.append(dialog.message)
        if len(asked) == 1:
            dialog.dismiss()
        else:
            dialog.accept()

    page.on("dialog", answer)
    oldest = rows.nth(1)
    version = oldest.locator("td").first.inner_text()
    oldest.get_by_role("button", name="Restore this version").click()
    expect(rows).to_have_count(2)  # declined: nothing changed
    oldest.get_by_role("button", name="Restore this version").click()
    expect(page.get_by_role("status")).to_have_text(
        f"Version {version}'s code is saved as a new version: connections run it from their "
        "next event."
    )
    assert asked[0].startswith(f"Restore version {version}?")
    expect(rows).to_have_count(3)  # a new version: the history stays
    assert _value(page, CODE) == first
    expect(rows.first.locator("td").nth(2)).to_have_text("editor@example.com")
    expect(rows.first).to_contain_text("running")
    page.set_viewport_size({"width": 1440, "height": 900})
    shot(page, "transformation-restored")


def test_leaving_unsaved_code_asks_first(page: Page) -> None:
    _new(page, "tagger")
    asked: list[str] = []

    def stay(dialog: Dialog) -> None:
        asked.append(dialog.type)
        dialog.dismiss()

    page.on("dialog", stay)
    page.locator(CODE).click()
    page.keyboard.type("// changed\n")
    page.get_by_role("link", name="Connections").click()
    expect(page.get_by_role("heading", name="tagger")).to_be_visible()
    assert asked == ["beforeunload"]  # and staying keeps the edit
    assert "// changed\n" in _value(page, CODE)
    page.get_by_role("button", name="Save").click()  # saving does not ask
    expect(page.get_by_role("status")).to_contain_text("Saved as a new version")
    page.locator(CODE).click()
    page.get_by_role("link", name="Connections").click()
    expect(page).to_have_url(re.compile(r"/connections$"))
    assert asked == ["beforeunload"]


def test_what_a_viewer_sees(page: Page, database_url: str) -> None:
    run(_apply(database_url, f"transformations: [{{name: tagger, code: {json.dumps(TAGGING)}}}]"))
    sign_in(page, "viewer@example.com", then="/transformations")
    page.get_by_role("link", name="tagger").click()
    editor = page.locator(CODE)
    expect(editor).to_be_visible()
    assert editor.evaluate("element => element.CodeMirror.getOption('readOnly')") is True
    editor.click()
    page.keyboard.type("x")
    assert _value(page, CODE) == TAGGING
    for action in ("Save", "Delete transformation", "Restore this version"):
        expect(page.get_by_role("button", name=action)).to_have_count(0)
    expect(page.locator("#versions tbody td").nth(2)).to_have_text("cli")
    # a viewer may test (it changes and sends nothing): an answer, not a silent 403
    page.get_by_role("button", name="Test").click()
    expect(page.locator("#result")).to_contain_text("tagged Sluice Test Event")
    page.set_viewport_size({"width": 1440, "height": 900})
    shot(page, "transformation-viewer")
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    shot(page, "transformation-viewer-mobile")


def test_the_editor_at_390_px(page: Page) -> None:
    _new(page, "tagger")
    page.set_viewport_size({"width": 390, "height": 844})
    _set(page, CODE, THROWING)
    page.get_by_role("button", name="Test").click()
    expect(page.locator("#result").get_by_role("alert")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    shot(page, "transformation-mobile")
    page.set_viewport_size({"width": 1440, "height": 900})
    shot(page, "transformation-1440")


async def _apply(url_of_database: str, text: str) -> None:
    """As `sluice config apply` does it."""
    async with connection(url_of_database) as conn:
        await Changes(conn, "cli").apply(specs.parse(text), action="config.apply", target="test")
