"""What the control plane cannot store is refused before it is tried: NUL characters, lone
surrogates, documents nested thousands deep and numbers beyond any sense get a 400 that names
the field, on every way in (the config API, the pages' forms and filters), and nothing is
changed."""

import psycopg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.integration.test_web_api import WORKSPACE, bearer
from tests.integration.test_web_security import app_with, csrf, sign_in

CODE = "export function transformEvent(event) { return event; }"
HOOK = {"type": "webhook", "config": {"webhookUrl": "https://hook.example.com"}}
DEEP = '{"type": "webhook", "config": {"webhookUrl": "https://h.example.com", "deep": ' + (
    '{"a": ' * 5000 + "1" + "}" * 5000 + "}}"
)


@pytest.fixture
async def app(database_url: str) -> Litestar:
    return await app_with(database_url, "admin", WORKSPACE, "viewer")


def _count(database_url: str) -> tuple[int, ...]:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM sources), (SELECT count(*) FROM destinations),"
            " (SELECT count(*) FROM transformations), (SELECT count(*) FROM connections)"
        ).fetchone()
    assert row is not None
    return tuple(row)


@pytest.mark.parametrize(
    ("method", "path", "body", "said"),
    [
        ("DELETE", "/api/v1/connections?source=a%00b&destination=amp", None,
         "the query parameter 'source' contains a NUL character"),
        ("PUT", "/api/v1/sources/a%00b", "{}", "the name in the address contains a NUL"),
        ("DELETE", "/api/v1/sources/a%00b", None, "the name in the address contains a NUL"),
        ("DELETE", "/api/v1/transformations/a%00", None, "the name in the address contains"),
        ("PUT", "/api/v1/transformations/t", '{"code": "x\\u0000"}',
         "body.code contains a NUL character"),
        ("PUT", "/api/v1/transformations/t", '{"code": "x\\ud800"}',
         "body.code contains a lone surrogate (\\ud800), which is not valid Unicode"),
        ("PUT", "/api/v1/workspace", '{"sources": [{"name": "a\\u0000"}]}',
         "body.sources[0].name contains a NUL character"),
        ("PUT", "/api/v1/connections", '{"source": "web\\u0000", "destination": "amp"}',
         "body.source contains a NUL character"),
        ("PUT", "/api/v1/destinations/deep", DEEP, "the body is nested more than 64 levels deep"),
        ("PUT", "/api/v1/sources/" + "n" * 300, "{}", "sources[0]: name is over 200 characters"),
        ("PUT", "/api/v1/sources/big", '{"rate_limit": 1000000000000000000}',
         "rate_limit must be 1 to 1,000,000,000 events per second"),
        ("PUT", "/api/v1/destinations/slow", '{"type": "webhook", "config": '
         '{"webhookUrl": "https://h.example.com"}, "delivery": {"retry_hours": 1e308}}',
         "retry_hours must be 0 to 720"),
    ],
)  # fmt: skip
async def test_the_api_refuses_what_cannot_be_stored_naming_the_field(
    app: Litestar, database_url: str, method: str, path: str, body: str | None, said: str
) -> None:
    before = _count(database_url)
    headers = {**await bearer(database_url, "admin"), "content-type": "application/json"}
    async with AsyncTestClient(app) as client:
        answer = await client.request(method, path, headers=headers, content=body)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"] == "invalid" and said in answer.json()["message"]
    assert _count(database_url) == before


async def test_pages_refuse_nul_in_forms_and_filters_naming_the_field(
    app: Litestar, database_url: str
) -> None:
    before = _count(database_url)
    async with AsyncTestClient(app) as client:
        await sign_in(client, "viewer@example.com")  # a viewer can reach the filters
        filters = [("/failed?destination=a%00", "destination"), ("/events?user=a%00b", "user"),
                   ("/events?source=%00", "source")]  # fmt: skip
        for path, name in filters:
            answer = await client.get(path)
            assert answer.status_code == 400, path
            assert f"The query parameter &#39;{name}&#39; contains a NUL character" in answer.text
        client.cookies.clear()
        await sign_in(client, "admin@example.com")
        token = await csrf(client)
        for path, form, name in [
            ("/sources", {"name": "a\x00b"}, "name"),
            ("/transformations", {"name": "t\x00", "code": CODE}, "name"),
            ("/transformations", {"name": "t", "code": CODE + "\x00"}, "code"),
            ("/users", {"email": "a\x00@x.io", "role": "viewer", "password": "x" * 12}, "email"),
        ]:
            answer = await client.post(path, data={**form, "_csrf_token": token})
            assert answer.status_code == 400, (path, form)
            assert f"The field &#39;{name}&#39; contains a" in answer.text, (path, form)
    assert _count(database_url) == before


async def test_an_address_made_to_break_out_of_html_is_not_an_email(
    app: Litestar, database_url: str
) -> None:
    async with AsyncTestClient(app) as client:
        await sign_in(client, "admin@example.com")
        form = {"email": '"><svg/onload=alert(1)>@t.io', "role": "viewer", "password": "x" * 16}
        answer = await client.post("/users", data={**form, "_csrf_token": await csrf(client)})
    assert "is not an email address" in answer.text
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM users WHERE email LIKE '%svg%'").fetchone() == (
            0,
        )


async def test_numbers_in_other_scripts_digits_are_no_event_not_a_500(database_url: str) -> None:
    """'²'.isdigit() is True but int('²') fails: places in the log, job ids and times read
    from addresses, queries and forms take ASCII digits only."""
    app = await app_with(database_url, "admin", WORKSPACE + f"transformations: [{{name: t, "
                         f'code: "{CODE}"}}]\n')  # fmt: skip
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT id FROM transformations").fetchone()
    assert row is not None
    async with AsyncTestClient(app) as client:
        await sign_in(client, "admin@example.com")
        token = await csrf(client)
        for path, status in [
            ("/events?before_tx=²&before_id=1", 200), ("/events/live?after_tx=²", 200),
            ("/events/live?after_tx=1&pending=²:1,1:²,1:1", 200), ("/events/²/1", 404),
            (f"/transformations/{row[0]}?event=²:1:2026-01-01", 404),
            (f"/transformations/{row[0]}?event=1:²", 404),
            (f"/transformations/{row[0]}/payload?pick=event:1:¹", 404),
            ("/audit?since=²&until=2026-01-01T00:0²", 200),
        ]:  # fmt: skip
            answer = await client.get(path)
            assert answer.status_code == status, (path, answer.text)
        for path, form in [
            ("/events/²/1/replay", {"destination": "all", "at": "²"}),
            ("/failed/replay", {"scope": "selected", "job": "²", "until": "2026-01-0²"}),
        ]:
            answer = await client.post(path, data={**form, "_csrf_token": token})
            assert answer.status_code < 500, (path, answer.text)
