"""Transformation pages against the real app and a real PostgreSQL (in process): the editor,
versions and what each changed, testing code on a sample or a source's newest event, and who
may do what."""

import html
import re

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.integration.test_events import WORKSPACE, stored, track
from tests.integration.test_web_activity import ids
from tests.integration.test_web_security import app_with, csrf, sign_in

TAGGING = """export function transformEvent(event) {
  event.properties = { ...event.properties, tagged: true };
  log("tagged " + event.event);
  return event;
}
"""
THROWING = """export function transformEvent(event) {
  const x = 1;
  throw new Error("no " + event.event);
}
"""
HOSTILE = "// </textarea><script>alert(1)</script>\n"


@pytest.fixture
async def app(database_url: str) -> Litestar:
    return await app_with(database_url, "editor", WORKSPACE, "viewer")


async def test_edit_save_version_diff_and_refuse_what_does_not_compile(app: Litestar) -> None:
    async with AsyncTestClient(app) as client:
        await sign_in(client, "editor@example.com")
        token = await csrf(client)
        made = await client.post("/transformations", data={"_csrf_token": token, "name": "tagger"},
                                 follow_redirects=False)  # fmt: skip
        page = made.headers["location"]
        assert made.status_code == 303 and re.fullmatch(r"/transformations/[0-9a-f-]{36}", page)
        assert "export function transformEvent(event, metadata)" in (await client.get(page)).text
        saved = await client.post(f"{page}/code", data={"_csrf_token": token,
                                                        "code": HOSTILE + TAGGING})  # fmt: skip
        same = await client.post(f"{page}/code", data={"_csrf_token": token,
                                                       "code": HOSTILE + TAGGING})  # fmt: skip
        broken = await client.post(f"{page}/code", data={"_csrf_token": token,
                                                         "code": "export function ("})  # fmt: skip
        current = (await client.get(page)).text
        newest = re.findall(r"\?version=(\d+)#versions", current)
        diff = (await client.get(f"{page}?version={newest[0]}")).text
        listed = (await client.get("/transformations")).text
    assert "Saved as a new version" in saved.text and "Nothing changed" in same.text
    assert broken.status_code == 400
    assert 'role="alert">line 1: SyntaxError: Function statements require' in broken.text
    assert "export function (</textarea>" in broken.text  # what was typed is kept
    assert len(newest) == 2  # the starter and the tagging code; the broken one was refused
    assert "<script>alert(1)</script>" not in current
    assert html.escape(HOSTILE.strip()) in current
    assert '<span class="added">+  log(&#34;tagged &#34; + event.event);</span>' in diff
    assert (
        '<span class="removed">-  // Change the event and return it; return null to drop it.</span>'
        in diff
    )
    assert re.search(r'tagger</a></td><td class="num">2</td>', listed)


async def test_testing_code_on_a_sample_and_on_a_sources_newest_event(
    app: Litestar, database_url: str
) -> None:
    stored(database_url, "web", track(1, "Checkout Started"))
    web = ids(database_url)["web"]
    async with AsyncTestClient(app) as client:
        await sign_in(client, "editor@example.com")
        token = await csrf(client)
        made = await client.post("/transformations", data={"_csrf_token": token, "name": "t"},
                                 follow_redirects=False)  # fmt: skip
        test = f"{made.headers['location']}/test"
        htmx = {"HX-Request": "true"}
        sample = await client.post(test, data={"_csrf_token": token, "code": TAGGING,
                                               "sample": "sample"}, headers=htmx)  # fmt: skip
        real = await client.post(test, data={"_csrf_token": token, "code": TAGGING,
                                             "sample": str(web)}, headers=htmx)  # fmt: skip
        thrown = await client.post(test, data={"_csrf_token": token, "code": THROWING,
                                               "sample": "sample"}, headers=htmx)  # fmt: skip
    assert "Output: 1 event" in sample.text and "&#34;tagged&#34;: true" in sample.text
    assert "tagged Sluice Test Event" in sample.text and "Input: the sample event" in sample.text
    assert "tagged Checkout Started" in real.text and "the source&#39;s newest event" in real.text
    assert re.search(r'role="alert">Error: no Sluice Test Event \(line 3:\d+\)', thrown.text)


async def test_a_viewer_reads_code_and_cannot_change_or_delete_it_in_use(
    app: Litestar, database_url: str
) -> None:
    async with AsyncTestClient(app) as client:
        await sign_in(client, "viewer@example.com")
        listed = (await client.get("/transformations")).text
        page = re.search(r'href="(/transformations/[0-9a-f-]{36})"', listed)
        assert page is not None
        view = (await client.get(page[1])).text
        refused = await client.post(f"{page[1]}/code", data={"_csrf_token": await csrf(client),
                                                             "code": TAGGING})  # fmt: skip
        client.cookies.clear()
        await sign_in(client, "editor@example.com")
        in_use = await client.post(f"{page[1]}/delete", data={"_csrf_token": await csrf(client)})
    assert "readonly" in view and ">Save<" not in view
    assert refused.status_code == 403
    assert in_use.status_code == 400 and "connections use it: web → dropped" in in_use.text
