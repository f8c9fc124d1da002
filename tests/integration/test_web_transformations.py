"""Transformation pages against the real app and a real PostgreSQL (in process): the editor,
versions and what each changed, testing code on a sample or a source's newest event, and who
may do what."""

import asyncio
import html
import re

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.integration.test_events import WORKSPACE, stored, track
from tests.integration.test_web_activity import ids
from tests.integration.test_web_api import bearer
from tests.integration.test_web_security import app_with, csrf, sign_in
from tests.servers import server_dir, start_web
from ui.pages.transformations import TRIALS_AT_ONCE

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
    assert 'data-line="1">line 1: SyntaxError: Function statements require' in broken.text
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


async def test_testing_code_on_an_event_given_and_on_a_sources_newest_event(
    app: Litestar, database_url: str
) -> None:
    stored(database_url, "web", track(1, "Checkout Started"))
    web = ids(database_url)["web"]
    async with AsyncTestClient(app) as client:
        await sign_in(client, "editor@example.com")
        token = await csrf(client)
        made = await client.post("/transformations", data={"_csrf_token": token, "name": "t"},
                                 follow_redirects=False)  # fmt: skip
        page = made.headers["location"]
        editor = (await client.get(page)).text
        htmx = {"HX-Request": "true"}
        sample = re.search(r'name="payload"[^>]*>([^<]*)</textarea>', editor)
        assert sample is not None

        async def test(code: str, payload: str) -> str:
            tried = await client.post(f"{page}/test", headers=htmx, data={
                "_csrf_token": token, "code": code, "payload": html.unescape(payload),
            })  # fmt: skip
            return tried.text

        tagged = await test(TAGGING, sample[1])
        newest = (await client.get(f"{page}/payload?pick=source:{web}", headers=htmx)).text
        real = re.search(r'name="payload"[^>]*>([^<]*)</textarea>', newest)
        assert real is not None
        tagged_real = await test(TAGGING, real[1])
        thrown = await test(THROWING, sample[1])
        invalid = await test(TAGGING, '{"type": "track",\n "event": }')
        listed = await test(TAGGING, "[]")
        deep = await test(TAGGING, "[" * 100_000)
        unknown = await client.get(f"{page}/payload?pick=source:nonsense", headers=htmx)
        too_big = await client.get(f"{page}/payload?pick=event:{10**30}:1:x", headers=htmx)
        gone = (await client.get(f"{page}/payload?pick=event:1:1:x", headers=htmx)).text
    assert "Output: 1 event" in tagged and "&#34;tagged&#34;: true" in tagged
    assert "tagged Sluice Test Event" in tagged
    assert "Checkout Started" in newest and "tagged Checkout Started" in tagged_real
    assert re.search(r'data-error-for="code" data-line="3" data-column="\d+">'
                     r"Error: no Sluice Test Event \(line 3:\d+\)", thrown)  # fmt: skip
    assert ('data-error-for="t-payload" data-line="2" data-column="11">The test event is not '
            "valid JSON: Expecting value (line 2, column 11)") in invalid  # fmt: skip
    assert "The test event must be one JSON object" in listed
    assert "The test event is too large or too deeply nested" in deep
    assert unknown.status_code == 404 and too_big.status_code == 404
    assert "That event is gone" in gone and "Sluice Test Event" in gone


async def test_restoring_a_version_saves_its_code_again_by_its_author(app: Litestar) -> None:
    async with AsyncTestClient(app) as client:
        await sign_in(client, "editor@example.com")
        token = await csrf(client)
        made = await client.post("/transformations", data={"_csrf_token": token, "name": "t"},
                                 follow_redirects=False)  # fmt: skip
        page = made.headers["location"]
        await client.post(f"{page}/code", data={"_csrf_token": token, "code": TAGGING})
        first, second = re.findall(r"\?version=(\d+)#versions", (await client.get(page)).text)[::-1]
        restored = await client.post(
            f"{page}/restore?version={first}", data={"_csrf_token": token}, follow_redirects=False
        )
        again = await client.post(
            f"{page}/restore?version={first}", data={"_csrf_token": token}, follow_redirects=False
        )
        elsewhere = await client.post(f"{page}/restore?version=999999",
                                      data={"_csrf_token": token})  # fmt: skip
        current = (await client.get(page)).text
    assert restored.headers["location"] == f"{page}?restored={first}"
    assert again.headers["location"] == f"{page}?saved=unchanged"  # the newest code already
    assert elsewhere.status_code == 404
    versions = re.findall(r"\?version=(\d+)#versions", current)
    assert len(versions) == 3 and versions[1] == second
    assert current.count("<td>editor@example.com</td>") == 3
    assert (
        "transformEvent(event, metadata)" in current.split('name="code"')[1].split("</textarea")[0]
    )


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
        restore = await client.post(f"{page[1]}/restore?version=1",
                                    data={"_csrf_token": await csrf(client)})  # fmt: skip
        tested = await client.post(f"{page[1]}/test", headers={"HX-Request": "true"}, data={
            "_csrf_token": await csrf(client), "code": TAGGING, "payload": '{"event": "x"}',
        })  # fmt: skip
        client.cookies.clear()
        await sign_in(client, "editor@example.com")
        in_use = await client.post(f"{page[1]}/delete", data={"_csrf_token": await csrf(client)})
    assert "readonly" in view and ">Save<" not in view
    assert refused.status_code == 403 and restore.status_code == 403
    assert "Restore this version" not in view
    assert tested.status_code == 200 and "tagged x" in tested.text  # testing changes nothing
    assert in_use.status_code == 400 and "connections use it: web → dropped" in in_use.text


async def test_a_version_saved_through_the_config_api_is_by_its_token(
    app: Litestar, database_url: str
) -> None:
    async with AsyncTestClient(app) as client:
        client.headers.update(await bearer(database_url, "editor", "deploy"))
        saved = await client.put("/api/v1/transformations/tagger", json={"code": TAGGING})
        client.headers.pop("Authorization")
        await sign_in(client, "viewer@example.com")
        listed = (await client.get("/transformations")).text
        page = re.search(r'href="(/transformations/[0-9a-f-]{36})">tagger<', listed)
        assert saved.status_code == 200 and page is not None
        view = (await client.get(page[1])).text
    assert "<td>token deploy</td>" in view


async def test_test_runs_at_once_are_bounded_and_a_refused_one_says_to_try_again(
    app: Litestar, database_url: str
) -> None:
    """Each test run starts a sandbox process; anyone signed in may ask for one, so a web
    process runs TRIALS_AT_ONCE at a time and refuses more (429) rather than queue them. (A
    served process: the in-process test client takes requests one at a time.)"""
    slow = """export function transformEvent(event) {
  let n = 0;
  for (let i = 0; i < 400000000; i++) n += i;
  return event;
}
"""
    with server_dir() as workdir:
        web = start_web(database_url, workdir)
        try:
            async with httpx.AsyncClient(base_url=web.url, follow_redirects=True) as client:
                await sign_in(client, "viewer@example.com")  # type: ignore[arg-type]
                listed = (await client.get("/transformations")).text
                page = re.search(r'href="(/transformations/[0-9a-f-]{36})"', listed)
                assert page is not None
                form = {"_csrf_token": await csrf(client), "code": slow,  # type: ignore[arg-type]
                        "payload": '{"type": "track"}'}  # fmt: skip
                answers = await asyncio.gather(*[
                    client.post(f"{page[1]}/test", data=form, headers={"HX-Request": "true"})
                    for _ in range(TRIALS_AT_ONCE + 1)
                ])  # fmt: skip
        finally:
            web.stop()
    assert sorted(a.status_code for a in answers) == [200] * TRIALS_AT_ONCE + [429]
    [refused] = [a for a in answers if a.status_code == 429]
    assert refused.text == f"{TRIALS_AT_ONCE} tests are running here already: try again in a moment"
    assert refused.headers["retry-after"] == "2"
