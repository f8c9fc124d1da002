"""Alerts in the control plane, against the real app and a real PostgreSQL (in process): the
rule on a destination's page, and the banner every page loads while an alert fires."""

import re
import socket
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from engine.control import settings
from engine.db import connection
from tests.integration.test_events import WORKSPACE
from tests.integration.test_web_activity import ids
from tests.integration.test_web_security import app_with, csrf, sign_in

HOSTILE = "<img src=x onerror=alert(1)>"
WEBHOOK = "https://hooks.example.com/T000/B000/secret-part"


@pytest.fixture
async def app(database_url: str) -> Litestar:
    return await app_with(database_url, "editor", WORKSPACE, "viewer")


async def test_an_editor_sets_a_rule_and_a_viewer_never_sees_the_webhook(
    app: Litestar, database_url: str
) -> None:
    hook = ids(database_url)["hook"]
    page = f"/destinations/{hook}"
    async with AsyncTestClient(app) as client:
        await sign_in(client, "editor@example.com")
        token = await csrf(client)
        form = {"_csrf_token": token, "failure_percent": "5", "window_minutes": "30",
                "silence_minutes": "", "webhook_url": WEBHOOK}  # fmt: skip
        saved = await client.post(f"{page}/alerts", data=form, follow_redirects=False)
        assert saved.status_code == 303 and saved.headers["location"].endswith(
            "saved=alerts#alerts"
        )
        # left blank, the webhook stays; a bad number is said beside the form
        kept = await client.post(f"{page}/alerts", data={**form, "webhook_url": ""})
        # saving the destination's settings keeps the rule
        settings = await client.post(
            page, data={"_csrf_token": token, "webhookUrl": "https://hook.example.com/v2"}
        )
        assert settings.status_code == 200, settings.text
        refused = await client.post(f"{page}/alerts", data={**form, "silence_minutes": "2"})
        editor_view = (await client.get(page)).text
        client.cookies.clear()
        await sign_in(client, "viewer@example.com")
        viewer_view = (await client.get(page)).text
        viewer_post = await client.post(
            f"{page}/alerts", data={**form, "_csrf_token": await csrf(client)}
        )
    assert kept.status_code == 200 and "Alert rule saved" in kept.text
    assert refused.status_code == 400 and "the silence is 5 minutes to 7 days" in refused.text
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT failure_percent::float8, window_minutes, silence_minutes, webhook_url"
            " FROM alert_rules"
        ).fetchone()
    assert row == (5.0, 30, None, WEBHOOK)
    with psycopg.connect(database_url) as conn:
        url = conn.execute("SELECT config->>'webhookUrl' FROM destinations WHERE id = %s", (hook,))
        assert url.fetchone() == ("https://hook.example.com/v2",)
    assert 'name="failure_percent" value="5.0"' in editor_view
    for shown in (editor_view, viewer_view):
        assert WEBHOOK not in shown and "secret-part" not in shown
    assert re.search(
        r'<label for="a-webhook">Webhook</label>\s*<p class="meta">set</p>', viewer_view
    )
    assert viewer_post.status_code == 403


async def test_the_banner_shows_what_fires_as_text(app: Litestar, database_url: str) -> None:
    hook = ids(database_url)["hook"]
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO alerts (destination_id, kind, message) VALUES (%s, 'failures', %s)",
            (hook, f"hook: 9 of 10 events failed {HOSTILE}"),
        )
        conn.execute(
            "INSERT INTO alerts (destination_id, kind, message, ended_at)"
            " VALUES (%s, 'silence', 'resolved long ago', now())",
            (hook,),
        )
    async with AsyncTestClient(app) as client:
        await sign_in(client, "viewer@example.com")
        page = (await client.get("/connections")).text
        banner = (await client.get("/alerts/banner", headers={"HX-Request": "true"})).text
        plain = await client.get("/alerts/banner", follow_redirects=False)
    assert 'hx-get="/alerts/banner"' in page  # every page loads it
    assert banner.count('role="alert"') == 1 and "resolved long ago" not in banner
    assert HOSTILE not in banner and "&lt;img src=x onerror=alert(1)&gt;" in banner
    assert f'href="/destinations/{hook}#alerts"' in banner
    assert plain.status_code == 303


async def test_a_test_email_holds_no_database_connection_while_the_server_is_waited_for(
    database_url: str,
) -> None:
    app = await app_with(database_url, "admin", WORKSPACE)
    with socket.create_server(("127.0.0.1", 0)) as silent:  # takes connections, says nothing
        silent.settimeout(10)
        server = settings.Smtp(host="127.0.0.1", port=silent.getsockname()[1], security="none",
                               sender="sluice@example.com")  # fmt: skip

        def called() -> dict[str, int]:
            """The pool's figures while the send awaits a greeting; then hang up on it."""
            caller, _ = silent.accept()
            with caller:
                return dict(app.state.pool.get_stats())

        async with connection(database_url) as conn:
            await settings.set_smtp(conn, server)
        async with AsyncTestClient(app) as client:
            await sign_in(client, "admin@example.com")
            form = {"_csrf_token": await csrf(client)}
            with ThreadPoolExecutor(1) as watching:  # (the client may block this event loop)
                stats = watching.submit(called)
                answer = await client.post("/alerts/smtp/test", data=form)
    assert stats.result()["pool_size"] == stats.result()["pool_available"]  # none lent out
    assert answer.status_code == 200
    assert "the SMTP server did not take it" in answer.text


async def test_a_certificate_alert_in_the_banner_and_the_history(
    app: Litestar, database_url: str
) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO alerts (kind, host, message) VALUES ('certificate', %s, %s)",
            (HOSTILE, f"the HTTPS certificate of {HOSTILE} expires 2026-12-17, in 10 days"),
        )
        conn.execute(
            "INSERT INTO alerts (kind, host, message, ended_at) VALUES ('certificate', 'gw-1',"
            " 'the HTTPS certificate of gw-1 expired 2026-11-01, 1 day ago', now())"
        )
    async with AsyncTestClient(app) as client:
        await sign_in(client, "viewer@example.com")
        banner = (await client.get("/alerts/banner", headers={"HX-Request": "true"})).text
        page = (await client.get("/alerts")).text
    assert banner.count('role="alert"') == 1 and 'href="/#certificates"' in banner
    assert "expires 2026-12-17, in 10 days" in banner and HOSTILE not in banner
    history = page[page.index('id="history"') :]
    messages = re.findall(r'<td class="message">(.*?)</td>', history)
    assert messages == [
        "the HTTPS certificate of gw-1 expired 2026-11-01, 1 day ago",
        "the HTTPS certificate of &lt;img src=x onerror=alert(1)&gt; expires 2026-12-17, in 10"
        " days",
    ]
    assert "Built in, with no rule to set: a host's HTTPS certificate 14 days or fewer" in page
