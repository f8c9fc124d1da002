"""The destination form: a destination and the connections ticked on it are made in one
transaction, so a refusal leaves nothing behind."""

import psycopg
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.integration.test_web_security import app_with, csrf, sign_in

WORKSPACE = "sources: [{name: web, write_key: web-write-key-0123456789}]"

# The source goes the moment the destination is inserted: deleted by someone else between the
# form's submission and its connections being made (a trigger makes the race happen every time).
GONE_MEANWHILE = """
CREATE FUNCTION test_web_gone() RETURNS trigger LANGUAGE plpgsql AS
  $$ BEGIN DELETE FROM sources WHERE name = 'web'; RETURN NULL; END $$;
CREATE TRIGGER test_web_gone AFTER INSERT ON destinations
  FOR EACH ROW EXECUTE FUNCTION test_web_gone();
"""


def _rows(database_url: str, query: str) -> list[tuple[object, ...]]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(query).fetchall()


async def test_a_refused_connection_leaves_no_destination_behind(database_url: str) -> None:
    app: Litestar = await app_with(database_url, "admin", WORKSPACE)
    (source,) = _rows(database_url, "SELECT id FROM sources")
    with psycopg.connect(database_url) as conn:
        conn.execute(GONE_MEANWHILE)
    async with AsyncTestClient(app) as client:
        await sign_in(client, "admin@example.com")
        form = {"_csrf_token": await csrf(client), "type": "webhook", "name": "hook",
                "webhookUrl": "https://hook.example.com", "sources": str(source[0])}  # fmt: skip
        answer = await client.post("/destinations", data=form, follow_redirects=False)
    assert answer.status_code == 400, answer.text
    assert "unknown source" in answer.text
    assert _rows(database_url, "SELECT name FROM destinations") == []
    assert _rows(database_url, "SELECT name FROM sources") == [("web",)]  # (rolled back too)
    assert _rows(database_url, "SELECT action FROM audit_log") == [("login",)]
