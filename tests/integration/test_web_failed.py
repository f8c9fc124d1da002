"""The Failed page, against the real app and a real PostgreSQL (in process): listing what
destinations gave up on and what they still retry, replaying batch by batch with progress,
discarding — and who may do which."""

import html
import json
import re

import psycopg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from engine import specs
from engine.control import workspace
from engine.db import connection
from tests.integration.test_failures import HOOKS, failing, states
from tests.integration.test_web_security import app_with, csrf, sign_in

HOSTILE = "<img src=x onerror=alert(1)>"


@pytest.fixture
async def app(database_url: str) -> Litestar:
    return await app_with(database_url, "editor", HOOKS, "viewer")


def hidden(fragment: str) -> dict[str, str]:
    """The hidden fields of the form a progress fragment posts next."""
    return dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', fragment))


def group_link(page: str) -> str:
    """Where the page's first group of failures opens onto its jobs."""
    found = re.search(r'<a class="jobs" href="([^"]+)"', page)
    assert found is not None
    return html.unescape(found[1])


async def test_the_list_shows_each_failure_escaped_and_a_viewer_cannot_act(
    app: Litestar, database_url: str
) -> None:
    jobs = failing(database_url, "hook-a", 2)
    failing(database_url, "hook-b", 1, state="retry")
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE job_attempts SET error = %s, response = %s WHERE job_id = %s",
            (f"HTTP 400: {HOSTILE}", f'{{"error": "{HOSTILE}"}}', jobs[0]),
        )
    async with AsyncTestClient(app) as client:
        await sign_in(client, "viewer@example.com")
        page = (await client.get("/failed")).text
        retrying = (await client.get("/failed?view=retrying")).text
        retried = (await client.get(group_link(retrying))).text  # the group's jobs
        refused = await client.post(
            "/failed/replay", data={"_csrf_token": await csrf(client), "scope": "matching"}
        )
    assert HOSTILE not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    # by kind of failure (the status and error differ), each with a sample request in full
    assert page.count('<tbody class="group"') == 2 and "2 failed jobs in 2 kinds" in page
    assert "POST https://a.example.com/in" in page
    # the summary: per destination, failed and retrying
    assert re.search(r"hook-a</td>\s*<td[^>]*><a[^>]*>2</a></td>\s*<td[^>]*><a[^>]*>0<", page)
    assert re.search(r"hook-b</td>\s*<td[^>]*><a[^>]*>0</a></td>\s*<td[^>]*><a[^>]*>1<", page)
    assert "Replay" not in page and "Discard" not in page and 'class="pick"' not in page
    assert retrying.count('<tbody class="group"') == 1
    assert retried.count('<tbody class="job"') == 1 and "Next try" in retried
    assert "Replay" not in retried and 'class="pick"' not in retried
    assert refused.status_code == 403


async def test_a_replay_of_everything_matching_goes_batch_by_batch_with_progress(
    app: Litestar, database_url: str
) -> None:
    jobs = failing(database_url, "hook-a", 150)
    others = failing(database_url, "hook-b", 2)
    htmx = {"HX-Request": "true"}
    async with AsyncTestClient(app) as client:
        await sign_in(client, "editor@example.com")
        token = await csrf(client)
        form = {"_csrf_token": token, "scope": "matching", "destination": "hook-a"}
        first = await client.post("/failed/replay", data=form, headers=htmx)
        assert first.status_code == 200
        assert first.text.strip().startswith('<div id="progress"')
        assert "Replaying… 100 of 150" in first.text and 'hx-trigger="load"' in first.text
        carried = hidden(first.text)
        assert carried["replayed"] == "100" and carried["total"] == "150"
        second = await client.post("/failed/replay", data={"_csrf_token": token, **carried},
                                   headers=htmx)  # fmt: skip
        assert "Replayed 150 failed event(s) as 150 new job(s)" in second.text
        assert 'hx-trigger="load"' not in second.text
        damaged = await client.post(
            "/failed/replay", data={"_csrf_token": token, **carried, "after_at": "yesterday"},
            headers=htmx,
        )  # fmt: skip
        # (htmx swaps only a 2xx answer: the page is told why the replay stopped)
        assert damaged.status_code == 200 and "start the replay again" in damaged.text
        assert 'role="alert">The replay stopped' in damaged.text
        audit = (await client.get("/failed")).text
    assert set(states(database_url, jobs)) == {"replayed"}
    assert set(states(database_url, others)) == {"aborted"}  # another destination's
    assert "2 failed jobs" in audit
    with psycopg.connect(database_url) as conn:
        logged = conn.execute(
            "SELECT actor, target, detail->>'jobs' FROM audit_log WHERE action = 'failed.replay'"
        ).fetchall()
    assert logged == [("editor@example.com", "hook-a", "150")]  # once, not once per batch


async def test_replaying_or_discarding_the_selected_jobs_without_htmx(
    app: Litestar, database_url: str
) -> None:
    jobs = failing(database_url, "hook-a", 4)
    async with AsyncTestClient(app) as client:
        await sign_in(client, "editor@example.com")
        token = await csrf(client)
        picked = {"_csrf_token": token, "scope": "selected", "job": [str(jobs[0]), str(jobs[1])]}
        replayed = await client.post("/failed/replay", data=picked, follow_redirects=False)
        assert replayed.status_code == 303 and "replayed=2" in replayed.headers["location"]
        discard = {**picked, "job": [str(jobs[2])]}
        discarded = await client.post("/failed/discard", data=discard, follow_redirects=False)
        assert discarded.status_code == 303 and "discarded=1" in discarded.headers["location"]
        page = (await client.get(discarded.headers["location"])).text
        left = (await client.get(group_link(page))).text
    assert states(database_url, jobs) == ["replayed", "replayed", "discarded", "aborted"]
    assert "Discarded 1 failed event(s)" in page
    assert page.count('<tbody class="group"') == 1 and "1 job →" in page
    assert left.count('<tbody class="job"') == 1 and f'id="job-{jobs[3]}"' in left


async def test_what_the_page_showed_is_what_is_replayed_or_discarded(
    app: Litestar, database_url: str
) -> None:
    """A replay or a discard of "all" takes on what the page listed when it was drawn: not
    what failed after, and the same window through every batch."""
    shown = failing(database_url, "hook-a", 2)
    other = failing(database_url, "hook-b", 2)
    async with AsyncTestClient(app) as client:
        await sign_in(client, "editor@example.com")
        for destination in ("hook-a", "hook-b"):
            page = (await client.get(f"/failed?destination={destination}&window=1h")).text
            until = re.search(r'name="until" value="([^"]+)"', page)
            assert until is not None
            failing(database_url, destination, 1)  # fails after the page was drawn
            form = {"_csrf_token": await csrf(client), "scope": "matching", "window": "1h",
                    "destination": destination, "until": until[1]}  # fmt: skip
            action = "/failed/replay" if destination == "hook-a" else "/failed/discard"
            done = await client.post(action, data=form, follow_redirects=False)
            assert done.status_code == 303
            assert ("replayed=2" if action == "/failed/replay" else "discarded=2") in (
                done.headers["location"]
            )  # fmt: skip
    assert set(states(database_url, shown)) == {"replayed"}
    assert set(states(database_url, other)) == {"discarded"}
    with psycopg.connect(database_url) as conn:
        latest = conn.execute(
            "SELECT count(*) FROM job_attempts a WHERE state = 'aborted' AND NOT EXISTS"
            " (SELECT 1 FROM job_attempts b WHERE b.job_id = a.job_id AND b.attempt > a.attempt)"
        ).fetchone()
    assert latest == (2,)  # the two that failed later are still listed


async def test_a_failed_request_shows_no_header_value_nor_url_credential(
    app: Litestar, database_url: str
) -> None:
    url = (
        "https://robot:hunter2-pass@hooks.example.com/in/deep-path?team=growth-team&token=tok-1234"
    )
    async with connection(database_url) as conn:
        await workspace.apply(conn, specs.parse(f"""
destinations:
  - {{name: hook-a, type: webhook, config: {{webhookUrl: "{url}",
      headers: [{{from: X-Custom, to: custom-value-42}}]}}}}
"""))  # fmt: skip
    [job] = failing(database_url, "hook-a", 1)
    headers = {"content-type": "application/json", "x-custom": "custom-value-42"}
    request = {"method": "POST", "url": url + "/more", "headers": headers,
               "body": {"event": "Order Completed"}}  # fmt: skip
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("UPDATE jobs SET request = %s WHERE id = %s", (json.dumps(request), job))
    async with AsyncTestClient(app) as client:
        await sign_in(client, "viewer@example.com")
        page = html.unescape((await client.get("/failed")).text)
    assert "https://****@hooks.example.com/in/deep-path?team=****&token=****/more" in page
    assert "Order Completed" in page  # (the event's own data is shown)
    for value in (
        "hunter2-pass",
        "robot",
        "growth-team",
        "tok-1234",
        "custom-value-42",
    ):
        assert value not in page, value
