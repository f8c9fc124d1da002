"""The config API under /api/v1, against the real app and a real PostgreSQL (in process)."""

import re
from datetime import timedelta
from typing import Any

import msgspec
import psycopg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from engine import specs
from engine.control import tokens, workspace
from engine.db import connection
from tests.integration.test_web_security import SECRET, app_with, csrf, sign_in

WORKSPACE = f"""
sources: [{{name: web, write_key: web-write-key-0123456789}}]
destinations:
  - {{name: amp, type: amplitude, config: {{apiKey: "{SECRET}"}}}}
connections: [{{source: web, destination: amp}}]
"""


@pytest.fixture
async def app(database_url: str) -> Litestar:
    return await app_with(database_url, "admin", WORKSPACE, "editor")


async def bearer(database_url: str, role: str, name: str | None = None) -> dict[str, str]:
    async with connection(database_url) as conn:
        secret, _ = await tokens.create(conn, name or f"{role}-token", role, "test")
    return {"Authorization": f"Bearer {secret}"}


async def test_without_a_valid_token_the_api_answers_401_in_json(
    app: Litestar, database_url: str
) -> None:
    async with AsyncTestClient(app) as client:
        for headers in ({}, {"Authorization": "Bearer slc_not-a-real-token"},
                        {"Authorization": "Basic YWRtaW46eA=="}):  # fmt: skip
            answer = await client.get("/api/v1/workspace", headers=headers)
            assert answer.status_code == 401, headers
            assert answer.json()["error"] == "unauthenticated"
            assert answer.headers["WWW-Authenticate"].startswith("Bearer")
        # a signed-in browser's cookies are not credentials for the API
        assert (await sign_in(client, "admin@example.com")).status_code == 303
        assert (await client.get("/api/v1/workspace")).status_code == 401
        put = await client.put("/api/v1/sources/sneaky", json={})
        assert put.status_code == 401


async def test_a_viewer_token_reads_without_secrets_and_cannot_write(
    app: Litestar, database_url: str
) -> None:
    headers = await bearer(database_url, "viewer")
    async with AsyncTestClient(app) as client:
        client.headers.update(headers)
        answer = await client.get("/api/v1/workspace")
        assert answer.status_code == 200
        assert SECRET not in answer.text and "web-write-key-0123456789" not in answer.text
        assert answer.json()["sources"][0]["write_key"] == "****6789"
        assert answer.json()["destinations"][0]["config"]["apiKey"] == "****"
        refused = await client.put("/api/v1/sources/other", json={})
        assert refused.status_code == 403 and refused.json()["error"] == "forbidden"
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM sources").fetchone() == (1,)


async def test_an_editor_token_builds_a_workspace_entry_by_entry(
    app: Litestar, database_url: str
) -> None:
    headers = await bearer(database_url, "editor", "ci")
    async with AsyncTestClient(app) as client:
        client.headers.update(headers)
        made = await client.put("/api/v1/sources/ios", json={"rate_limit": 500})
        assert made.status_code == 200
        assert made.json()["changes"] == [["source", "ios", "created"]]
        key = made.json()["new_write_keys"]["ios"]
        assert re.fullmatch(r"[A-Za-z0-9]{32}", key)

        bad = await client.put(
            "/api/v1/destinations/hook",
            json={"type": "webhook", "config": {"webhookUrl": "ftp://nope"}},
        )
        assert bad.status_code == 400 and bad.json()["error"] == "invalid"
        assert "is not an http(s) URL" in bad.json()["message"]
        unknown = await client.put("/api/v1/destinations/hook", json={"typo": 1})
        assert unknown.status_code == 400

        good = await client.put(
            "/api/v1/destinations/hook",
            json={"type": "webhook", "config": {"webhookUrl": "https://example.com/in"}},
        )
        assert good.json()["changes"] == [["destination", "hook", "created"]]
        linked = await client.put(
            "/api/v1/connections", json={"source": "ios", "destination": "hook"}
        )
        assert linked.json()["changes"] == [["connection", "ios → hook", "created"]]
        code = "export function transformEvent(event) { return event; }"
        saved = await client.put("/api/v1/transformations/pass", json={"code": code})
        assert saved.json()["changes"] == [["transformation", "pass", "created"]]

        one = (await client.get("/api/v1/sources/ios")).json()
        assert one == {"name": "ios", "write_key": key, "rate_limit": 500}
        assert (await client.get("/api/v1/sources/nope")).status_code == 404
        listed = (await client.get("/api/v1/connections")).json()
        assert {"source": "ios", "destination": "hook"} in listed
        whole = (await client.get("/api/v1/workspace")).json()
    assert whole["destinations"][0]["config"]["apiKey"] == SECRET  # editors get it all
    async with connection(database_url) as conn:
        exported = await workspace.export(conn)
    assert whole == _plain(exported)
    with psycopg.connect(database_url) as conn:
        actors = conn.execute(
            "SELECT DISTINCT actor, action FROM audit_log WHERE action = 'api.apply'"
        ).fetchall()
    assert actors == [("token ci", "api.apply")]


def _plain(spec: specs.WorkspaceSpec) -> Any:
    return msgspec.to_builtins(spec)


async def test_putting_the_whole_workspace_applies_it_and_reports(
    app: Litestar, database_url: str
) -> None:
    headers = await bearer(database_url, "admin")
    document = {
        "sources": [{"name": "web", "enabled": False, "write_key": "web-write-key-0123456789"}]
    }
    async with AsyncTestClient(app) as client:
        client.headers.update(headers)
        answer = await client.put("/api/v1/workspace", json=document)
        assert answer.json()["changes"] == [["source", "web", "updated"]]
        again = await client.put("/api/v1/workspace", json=document)
        assert again.json()["changes"] == [["source", "web", "unchanged"]]


async def test_a_revoked_token_stops_working(app: Litestar, database_url: str) -> None:
    headers = await bearer(database_url, "editor", "temporary")
    async with AsyncTestClient(app) as client:
        assert (await client.get("/api/v1/sources", headers=headers)).status_code == 200
        await sign_in(client, "admin@example.com")
        page = (await client.get("/users")).text
        token_id = re.search(r"/users/tokens/([0-9a-f-]{36})/revoke", page)
        assert token_id is not None
        revoked = await client.post(f"/users/tokens/{token_id[1]}/revoke",
                                    data={"_csrf_token": await csrf(client)})  # fmt: skip
        assert revoked.status_code == 200
        assert (await client.get("/api/v1/sources", headers=headers)).status_code == 401


async def test_an_admin_makes_a_token_on_the_users_page_and_sees_it_once(
    app: Litestar,
) -> None:
    async with AsyncTestClient(app) as client:
        await sign_in(client, "admin@example.com")
        made = await client.post(
            "/users/tokens",
            data={"_csrf_token": await csrf(client), "name": "deploy", "role": "editor"},
        )
        secret = re.search(r'<code id="new-token">(slc_[^<]+)</code>', made.text)
        assert secret is not None
        assert secret[1] not in (await client.get("/users")).text  # never shown again
        answer = await client.get(
            "/api/v1/sources", headers={"Authorization": f"Bearer {secret[1]}"}
        )
    assert answer.status_code == 200 and answer.json()[0]["name"] == "web"


async def test_a_token_stops_working_when_it_expires(app: Litestar, database_url: str) -> None:
    async with AsyncTestClient(app) as client:
        await sign_in(client, "admin@example.com")
        token = await csrf(client)
        form = {"_csrf_token": token, "name": "quarterly", "role": "viewer", "days": "90"}
        made = await client.post("/users/tokens", data=form)
        secret = re.search(r'<code id="new-token">(slc_[^<]+)</code>', made.text)
        assert secret is not None
        odd = await client.post("/users/tokens", data={**form, "name": "odd", "days": "-3"})
        assert odd.status_code == 400 and "a token lasts one of" in odd.text
        await client.post("/users/tokens", data={**form, "name": "forever", "days": "0"})
        unsaid = {"_csrf_token": token, "name": "unsaid", "role": "viewer"}
        await client.post("/users/tokens", data=unsaid)
        headers = {"Authorization": f"Bearer {secret[1]}"}
        assert (await client.get("/api/v1/sources", headers=headers)).status_code == 200
        with psycopg.connect(database_url, autocommit=True) as conn:
            lifetimes: dict[str, timedelta | None] = dict(
                conn.execute("SELECT name, expires_at - created_at FROM api_tokens").fetchall()
            )
            assert lifetimes["quarterly"] == lifetimes["unsaid"] == timedelta(days=90)
            assert lifetimes["forever"] is None and "odd" not in lifetimes
            conn.execute("UPDATE api_tokens SET expires_at = now() - interval '1 second'")
        expired = await client.get("/api/v1/sources", headers=headers)
        assert expired.status_code == 401
        listed = (await client.get("/users")).text
    assert re.search(r"quarterly</td>.*?>expired<", listed, re.S)


async def test_the_openapi_document_is_served_and_covers_the_api_only(app: Litestar) -> None:
    async with AsyncTestClient(app) as client:
        answer = await client.get("/api/v1/openapi/openapi.json")
    assert answer.status_code == 200
    paths = answer.json()["paths"]
    assert {"/api/v1/workspace", "/api/v1/sources/{name}", "/api/v1/connections"} <= set(paths)
    assert not [p for p in paths if not p.startswith("/api/v1/")]
    assert answer.json()["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


async def test_a_put_keeps_what_it_does_not_mention(app: Litestar, database_url: str) -> None:
    headers = await bearer(database_url, "editor")
    async with AsyncTestClient(app) as client:
        client.headers.update(headers)
        await client.put("/api/v1/sources/web", json={"rate_limit": 100})
        await client.put("/api/v1/sources/web", json={"enabled": False})
        source = (await client.get("/api/v1/sources/web")).json()
        assert source["rate_limit"] == 100 and source["enabled"] is False
        assert source["write_key"] == "web-write-key-0123456789"
        await client.put("/api/v1/destinations/amp", json={"enabled": False})
        amp = (await client.get("/api/v1/destinations/amp")).json()
        assert amp["enabled"] is False and amp["config"]["apiKey"] == SECRET
        new = await client.put("/api/v1/destinations/new", json={"config": {}})
        assert new.status_code == 400 and "needs its type" in new.json()["message"]


RUDDERSTACK = {
    "ws-1": {
        "workspaceId": "ws-1",
        "sources": [
            {
                "id": "src-1", "name": "shop", "writeKey": "2AbCdEfGhIjKlMnOpQrStUvWxYz",
                "enabled": True, "sourceDefinition": {"name": "Javascript"},
                "destinations": [
                    {"id": "d-1", "name": "orders hook", "enabled": True,
                     "config": {"webhookUrl": "https://hooks.example.com/in",
                                "webhookMethod": "POST"},
                     "destinationDefinition": {"name": "WEBHOOK", "displayName": "Webhook"},
                     "transformations": [{"versionId": "v-1"}]},
                    {"id": "d-2", "name": "analytics", "enabled": False,
                     "config": {"apiKey": "am-key-1"},
                     "destinationDefinition": {"name": "AM", "displayName": "Amplitude"}},
                    {"id": "d-3", "name": "crm", "enabled": True, "config": {},
                     "destinationDefinition": {"name": "HS", "displayName": "HubSpot"}},
                ],
            },
            {
                "id": "src-2", "name": "app", "writeKey": "3ZyXwVuTsRqPoNmLkJiHgFeDcBa",
                "enabled": False,
                "destinations": [
                    {"id": "d-2", "name": "analytics", "enabled": False,
                     "config": {"apiKey": "am-key-1"},
                     "destinationDefinition": {"name": "AM", "displayName": "Amplitude"}},
                ],
            },
        ],
    }
}  # fmt: skip


async def test_a_rudderstack_workspace_config_is_imported(app: Litestar, database_url: str) -> None:
    headers = await bearer(database_url, "editor")
    async with AsyncTestClient(app) as client:
        client.headers.update(headers)
        answer = await client.post("/api/v1/workspace/import", json=RUDDERSTACK)
        assert answer.status_code == 200, answer.text
        report = answer.json()
        assert ["source", "shop", "created"] in report["changes"]
        assert ["connection", "app → analytics", "created"] in report["changes"]
        assert report["new_write_keys"] == {}  # their keys came along
        assert report["skipped"] == [
            "destination 'orders hook' of source 'shop': its transformation (the file holds "
            "no code: add it in Sluice)",
            "destination 'crm' of source 'shop': Sluice does not deliver to HubSpot yet",
        ]
        junk = await client.post("/api/v1/workspace/import", json={"nothing": []})
        assert junk.status_code == 400 and "sources" in junk.json()["message"]
    async with connection(database_url) as conn:
        spec = await workspace.export(conn)
    shop = next(s for s in spec.sources if s.name == "shop")
    assert shop.write_key == "2AbCdEfGhIjKlMnOpQrStUvWxYz"
    assert not next(s for s in spec.sources if s.name == "app").enabled
    types = {d.name: (d.type, d.enabled) for d in spec.destinations}
    assert types["orders hook"] == ("webhook", True) and types["analytics"] == ("amplitude", False)
    assert "crm" not in types


async def test_deleting_entries_and_what_happens_to_their_jobs(
    app: Litestar, database_url: str
) -> None:
    headers = await bearer(database_url, "editor")
    with psycopg.connect(database_url) as conn:
        ids = conn.execute("SELECT s.id, d.id FROM sources s, destinations d").fetchone()
        assert ids is not None
        waiting = conn.execute(
            "INSERT INTO jobs (destination_id, source_id, partition, user_key, ingest_tx,"
            " ingest_id, received_at, message_id, event_type, request)"
            " VALUES (%s, %s, 0, 'u', '1', 1, now(), 'm', 'track', 'null') RETURNING id",
            (ids[1], ids[0]),
        ).fetchone()
    assert waiting is not None
    code = "export function transformEvent(event) { return event; }"
    async with AsyncTestClient(app) as client:
        client.headers.update(headers)
        await client.put("/api/v1/transformations/pass", json={"code": code})
        await client.put("/api/v1/connections", json={"source": "web", "destination": "amp",
                                                      "transformation": "pass"})  # fmt: skip
        used = await client.delete("/api/v1/transformations/pass")
        assert used.status_code == 400 and "connections use it: web → amp" in used.json()["message"]
        link = {"source": "web", "destination": "amp"}
        gone = await client.delete("/api/v1/connections", params=link)
        assert gone.status_code == 204
        assert (await client.delete("/api/v1/transformations/pass")).status_code == 204
        assert (await client.delete("/api/v1/destinations/amp")).status_code == 204
        again = await client.delete("/api/v1/destinations/amp")
        assert again.status_code == 404 and again.json()["error"] == "refused"
        assert "destinations" not in (await client.get("/api/v1/workspace")).json()  # (none)
    with psycopg.connect(database_url) as conn:
        states = conn.execute(
            "SELECT state, error FROM job_attempts WHERE job_id = %s", (waiting[0],)
        ).fetchall()
        audited = conn.execute(
            "SELECT target FROM audit_log WHERE action = 'api.delete' ORDER BY id"
        ).fetchall()
    assert states == [("discarded", "the destination was deleted")]
    assert audited == [("connection web → amp",), ("transformation pass",), ("destination amp",)]


async def test_an_editor_deletes_a_source_from_its_page(app: Litestar, database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT id FROM sources WHERE name = 'web'").fetchone()
    assert row is not None
    async with AsyncTestClient(app) as client:
        await sign_in(client, "editor@example.com")
        form = {"_csrf_token": await csrf(client)}
        done = await client.post(f"/sources/{row[0]}/delete", data=form, follow_redirects=False)
        assert done.status_code == 303 and done.headers["location"] == "/connections"
        page = (await client.get("/connections")).text
    assert "/sources/" not in page  # no source left to link to
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM connections").fetchone() == (0,)


async def test_an_editor_changes_a_destinations_delivery_policy(
    app: Litestar, database_url: str
) -> None:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT id FROM destinations WHERE name = 'amp'").fetchone()
    assert row is not None
    async with AsyncTestClient(app) as client:
        await sign_in(client, "editor@example.com")
        page = (await client.get(f"/destinations/{row[0]}")).text
        assert 'name="concurrency" value="32"' in page and "file_events" not in page
        token = await csrf(client)
        bad = await client.post(f"/destinations/{row[0]}/delivery",
                                data={"_csrf_token": token, "concurrency": "0"})  # fmt: skip
        assert bad.status_code == 400 and "concurrency must be between 1 and 1000" in bad.text
        form = {"_csrf_token": token, "concurrency": "4", "rate_limit": "50", "retry_hours": "1"}
        done = await client.post(f"/destinations/{row[0]}/delivery", data=form,
                                 follow_redirects=False)  # fmt: skip
        assert done.status_code == 303
    async with connection(database_url) as conn:
        spec = await workspace.entry(conn, "destination", row[0])
    assert (spec.delivery.concurrency, spec.delivery.rate_limit) == (4, 50)
    assert spec.delivery.retry_hours == 1 and spec.delivery.timeout_seconds == 30.0
    assert spec.config["apiKey"] == SECRET


async def test_alert_rules_and_delivery_through_the_api(app: Litestar, database_url: str) -> None:
    chat = "https://chat.example.com/hooks/T1/B2/secret-part"
    editor, viewer = await bearer(database_url, "editor"), await bearer(database_url, "viewer")
    async with AsyncTestClient(app) as client:
        rule = {"failure_percent": 5, "silence_minutes": 30, "webhook_url": chat}
        put = await client.put("/api/v1/destinations/amp", headers=editor,
                               json={"alerts": rule, "delivery": {"concurrency": 4}})  # fmt: skip
        assert put.status_code == 200 and put.json()["changes"] == [
            ["destination", "amp", "updated"]
        ]
        await client.put("/api/v1/destinations/amp", headers=editor, json={"enabled": False})
        kept = (await client.get("/api/v1/destinations/amp", headers=editor)).json()
        seen = await client.get("/api/v1/destinations/amp", headers=viewer)
        bad = await client.put("/api/v1/destinations/amp", headers=editor,
                               json={"alerts": {"failure_percent": 0}})  # fmt: skip
        removed = await client.put("/api/v1/destinations/amp", headers=editor,
                                   json={"alerts": None})  # fmt: skip
        gone = (await client.get("/api/v1/destinations/amp", headers=editor)).json()
    assert kept["alerts"] == {"failure_percent": 5.0, "silence_minutes": 30, "webhook_url": chat}
    assert kept["delivery"]["concurrency"] == 4 and kept["enabled"] is False
    assert seen.json()["alerts"]["webhook_url"] == "****" and "secret-part" not in seen.text
    assert bad.status_code == 400 and "alerts: the failure share" in bad.json()["message"]
    assert removed.json()["changes"] == [["destination", "amp", "updated"]]
    assert "alerts" not in gone


async def test_a_method_a_path_does_not_take_is_405_saying_which_it_does(
    app: Litestar, database_url: str
) -> None:
    headers = await bearer(database_url, "admin")
    async with AsyncTestClient(app) as client:
        api = await client.post("/api/v1/sources/web", headers=headers)
        await sign_in(client, "admin@example.com")
        page = await client.put("/connections", headers={"x-csrftoken": await csrf(client)})
    assert api.status_code == 405 and api.json()["error"] == "refused"
    assert set(api.headers["allow"].split(", ")) == {"GET", "PUT", "DELETE", "OPTIONS"}
    assert page.status_code == 405 and "GET" in page.headers["allow"]
