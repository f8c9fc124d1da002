"""Every form of the control plane, field by field, sent back with what no one should type: NUL
characters, numbers past any range, text a megabyte long, markup, nothing at all. The forms are
read from the pages themselves (every page of a workspace with one of each kind of entry), so
that a new form cannot be left out. Whatever comes, the answer is never a 5xx."""

import html.parser
import re
from collections import Counter
from typing import Any
from urllib.parse import urlsplit

import psycopg
from litestar.testing import AsyncTestClient

from engine import specs
from engine.control import accounts, workspace
from engine.db import connection
from tests.integration.test_web_security import PASSWORD, browser, sign_in

WORKSPACE = """
sources: [{name: web}]
destinations:
  - {name: hook, type: webhook, config: {webhookUrl: "https://hook.example.com/in",
     headers: [{from: X-Team, to: growth}]}, alerts: {failure_percent: 5}}
  - {name: amp, type: amplitude, config: {apiKey: "amp-key-123456"}}
  - {name: pg, type: postgres, config: {host: 127.0.0.1, database: w, user: u, password: p}}
transformations: [{name: t, code: "export function transformEvent(e) { return e; }"}]
connections: [{source: web, destination: hook, transformation: t}, {source: web, destination: amp}]
"""
HOSTILE = ["\x00", "a\x00b", "9" * 40, "-9" * 20, "1e309", "nan", "-1", "0", "", " ",
           "<script>alert(1)</script>", "x" * 1_000_000, "{" * 5000, "\u202e\ufeff"]  # fmt: skip
SKIPPED = {"/logout"}  # (signing out ends the run's session: tested elsewhere)


class _Forms(html.parser.HTMLParser):
    """The POST forms of a page: their action and their fields' names and values."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[tuple[str, dict[str, str]]] = []
        self._open: dict[str, str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        got = {k: v or "" for k, v in attrs}
        if tag == "form" and got.get("method", "").lower() == "post":
            self._open = {}
            self.forms.append((got.get("action", ""), self._open))
        elif tag in ("input", "select", "textarea") and self._open is not None and "name" in got:
            self._open.setdefault(got["name"], got.get("value", ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._open = None


async def _pages(database_url: str) -> list[str]:
    async with connection(database_url) as conn:
        await workspace.apply(conn, specs.parse(WORKSPACE))
        await accounts.create(conn, "viewer@example.com", "viewer", PASSWORD)
        ids = {}
        for table in ("sources", "destinations", "transformations", "connections", "users"):
            rows = await (await conn.execute(f"SELECT id FROM {table}")).fetchall()
            ids[table] = [row[0] for row in rows]
    pages = ["/", "/connections", "/transformations", "/users", "/account/password", "/failed",
             "/events", "/stats", "/rejected", "/audit", "/alerts",
             "/destinations/new?type=webhook", "/destinations/new?type=amplitude",
             "/destinations/new?type=postgres"]  # fmt: skip
    for table, found in ids.items():
        if table != "users":
            pages += [f"/{table}/{one}" for one in found]
    return pages


async def test_no_form_answers_5xx_whatever_is_typed_into_it(database_url: str) -> None:
    pages = await _pages(database_url)
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO users (email, role, password_hash) SELECT 'admin@example.com', 'admin',"
            " password_hash FROM users WHERE email = 'viewer@example.com'"
        )
    answered: Counter[int] = Counter()
    async with AsyncTestClient(browser(database_url)) as client:
        assert (await sign_in(client, "admin@example.com")).status_code == 303
        forms: dict[str, dict[str, str]] = {}
        for page in pages:
            answer = await client.get(page)
            assert answer.status_code == 200, page
            parser = _Forms()
            parser.feed(answer.text)
            for action, fields in parser.forms:
                forms.setdefault(urlsplit(action or page).path, fields)
        assert len(forms) >= 25, sorted(forms)
        for action, fields in sorted(forms.items()):
            if action in SKIPPED:
                continue
            for name in [n for n in fields if n != "_csrf_token"]:
                for value in HOSTILE:
                    token = await _token(client)
                    form: dict[str, Any] = {**fields, name: value, "_csrf_token": token}
                    answer = await client.post(action, data=form, follow_redirects=False)
                    assert answer.status_code < 500, (action, name, value[:40], answer.text[-500:])
                    answered[answer.status_code] += 1
    assert answered.total() >= 500
    # (the forms were taken and judged, not refused at the door)
    assert answered[403] < answered.total() / 10, answered


async def _token(client: AsyncTestClient[Any]) -> str:
    """This session's CSRF token; signed in again if a form just ended the session."""
    page = await client.get("/account/password", follow_redirects=False)
    if page.status_code != 200:
        client.cookies.clear()
        assert (await sign_in(client, "admin@example.com")).status_code == 303
        page = await client.get("/account/password")
    found = re.search(r'name="_csrf_token" value="([^"]+)"', page.text)
    assert found is not None
    return found[1]
