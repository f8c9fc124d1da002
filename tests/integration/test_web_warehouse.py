"""A warehouse in the control plane, against the real app and a real PostgreSQL (in process):
its loads card (what waits, each load, errors escaped, the schema), Sync now and Retry now for
editors only, and the lag on the home and stats pages."""

from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from engine.db import connection
from engine.warehouses import uploads
from tests.integration.test_web_activity import ids
from tests.integration.test_web_security import app_with, csrf, sign_in

HOSTILE = "<img src=x onerror=alert(1)>"
WORKSPACE = """
sources: [{name: website, write_key: warehouse-web-key}]
destinations:
  - {name: wh, type: postgres, config: {host: db.example.com, database: analytics,
     user: loader, password: "pg-secret-1234", syncFrequency: "15"}}
connections: [{source: website, destination: wh}]
"""


@pytest.fixture
async def app(database_url: str) -> Litestar:
    found = await app_with(database_url, "editor", WORKSPACE, "viewer")
    known = ids(database_url)
    wh, source = known["wh"], known["website"]
    async with connection(database_url) as conn:
        done = await uploads.create(conn, wh, source, "host-a", "website", ["k1"], 12, None)
        await uploads.start(conn, done)
        await uploads.finish(conn, done, {"tracks": 12, "order_completed": 7}, 2)
        failed = await uploads.create(conn, wh, source, "host-a", "website", ["k2"], 3, None)
        await uploads.start(conn, failed)
        await uploads.fail(conn, failed, f"loading website.tracks: {HOSTILE}", 600)
        await uploads.save_schema(conn, wh, "website", {"tracks": {"id": "string", "n": "int"}})
        oldest = datetime.now(UTC) - timedelta(minutes=7)
        await uploads.save_staged(conn, "host-a", {(wh, source): uploads.Staged(2, 40, oldest)})
    return found


async def test_the_loads_card_shows_what_waits_each_load_and_the_schema(
    app: Litestar, database_url: str
) -> None:
    wh = ids(database_url)["wh"]
    async with AsyncTestClient(app) as client:
        await sign_in(client, "viewer@example.com")
        page = (await client.get(f"/destinations/{wh}")).text
        card = await client.get(f"/destinations/{wh}/warehouse", headers={"hx-request": "true"})
        home = (await client.get("/")).text
        stats = (await client.get("/stats")).text
    assert "40 event(s) in 2 staged file(s)" in page
    assert "every 15 minutes" in page
    assert "order_completed 7" in page and "tracks 12" in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page and HOSTILE not in page
    assert "website.tracks" in page and "<code>n</code>" in page
    assert ">2 (values a column" in page  # the discards
    assert "pg-secret-1234" not in page
    assert ">Sync now</button>" not in page and ">Retry now</button>" not in page  # a viewer's
    assert card.status_code == 200 and card.text.lstrip().startswith(
        '<section class="card" id="warehouse"'
    )
    assert "40 to load, the oldest received 7 min ago" in home
    assert 'id="warehouse-lag"' in stats and ">40<" in stats


async def test_editors_sync_and_retry_and_viewers_cannot(app: Litestar, database_url: str) -> None:
    wh = ids(database_url)["wh"]
    with psycopg.connect(database_url) as conn:
        failed = conn.execute("SELECT id FROM warehouse_uploads WHERE status = 'failed'").fetchone()
    assert failed is not None
    async with AsyncTestClient(app) as client:
        await sign_in(client, "viewer@example.com")
        refused = await client.post(
            f"/destinations/{wh}/sync", data={"_csrf_token": await csrf(client)}
        )
        client.cookies.clear()
        await sign_in(client, "editor@example.com")
        page = (await client.get(f"/destinations/{wh}")).text
        token = await csrf(client)
        synced = await client.post(f"/destinations/{wh}/sync", data={"_csrf_token": token},
                                   follow_redirects=False)  # fmt: skip
        retry = f"/destinations/{wh}/loads/{failed[0]}/retry"
        retried = await client.post(retry, data={"_csrf_token": token}, follow_redirects=False)
        unknown = await client.post(f"/destinations/{wh}/loads/999999/retry",
                                    data={"_csrf_token": token})  # fmt: skip
    assert refused.status_code == 403
    assert ">Sync now</button>" in page and ">Retry now</button>" in page
    assert synced.status_code == 303 and synced.headers["location"].endswith("saved=sync#warehouse")
    assert retried.status_code == 303
    assert unknown.status_code == 404
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM warehouse_syncs").fetchone() == (1,)
        due = conn.execute("SELECT next_attempt_at <= now() FROM warehouse_uploads "
                           "WHERE id = %s", failed).fetchone()  # fmt: skip
        audit = conn.execute("SELECT action FROM audit_log WHERE action LIKE 'warehouse.%' "
                             "ORDER BY id").fetchall()  # fmt: skip
    assert due == (True,)
    assert audit == [("warehouse.sync",), ("warehouse.retry",)]


async def test_a_port_and_minutes_are_plain_text_fields(app: Litestar, database_url: str) -> None:
    # RudderStack writes them as strings ("5432", "30"); the form shows and keeps them so,
    # not as JSON to be quoted by hand.
    wh = ids(database_url)["wh"]
    async with AsyncTestClient(app) as client:
        await sign_in(client, "editor@example.com")
        page = (await client.get(f"/destinations/{wh}")).text
        saved = await client.post(f"/destinations/{wh}", follow_redirects=False, data={
            "_csrf_token": await csrf(client), "host": "db.example.com",
            "database": "analytics", "user": "loader", "port": "5433", "syncFrequency": "20",
        })  # fmt: skip
    assert 'type="text"  name="port" value="5432"' in page
    assert 'name="syncFrequency" value="15"' in page and "&#34;15&#34;" not in page
    assert saved.status_code == 303
    with psycopg.connect(database_url) as conn:
        config = conn.execute("SELECT config FROM destinations WHERE id = %s", (wh,)).fetchone()
    assert config is not None
    assert (config[0]["port"], config[0]["syncFrequency"]) == ("5433", "20")
    assert config[0]["password"] == "pg-secret-1234"  # a blank secret keeps its saved value
