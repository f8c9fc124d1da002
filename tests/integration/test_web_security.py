"""The control plane's access rules, against the real app and a real PostgreSQL (in process):
sessions, roles, CSRF, sign-in throttling, escaping, and secrets kept from pages."""

import ast
import asyncio
import html
import json
import re
import subprocess
from collections.abc import AsyncIterator
from ipaddress import ip_network
from pathlib import Path
from typing import Any
from uuid import uuid4

import psycopg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from engine import specs
from engine.control import accounts, changes, tokens, workspace
from engine.db import connection
from engine.errors import ConfigError, SignInRefused
from ui.app import WebOptions, create_app

PASSWORD = "a-long-enough-password"
SECRET = "s3cr3t-api-key-never-shown"
HOSTILE = "<script>alert(1)</script>"


@pytest.fixture
async def app(database_url: str) -> AsyncIterator[Litestar]:
    async with connection(database_url) as conn:
        for role in accounts.ROLES:
            await accounts.create(conn, f"{role}@example.com", role, PASSWORD)
    yield browser(database_url)


def browser(database_url: str) -> Litestar:
    """The app as one browser sees it (a second browser gets its own, with its own pool)."""
    return create_app(WebOptions(database_url, "http://127.0.0.1:8080"))


async def app_with(
    database_url: str, role: accounts.Role, workspace_text: str, *others: accounts.Role
) -> Litestar:
    """The app with a workspace and a user per role, `<role>@example.com`, who signs in with
    PASSWORD."""
    async with connection(database_url) as conn:
        for each in (role, *others):
            await accounts.create(conn, f"{each}@example.com", each, PASSWORD)
        await workspace.apply(conn, specs.parse(workspace_text))
    return browser(database_url)


async def csrf(client: AsyncTestClient[Litestar]) -> str:
    """The CSRF token of a form page (the cookie that goes with it is kept by the client)."""
    page = await client.get("/login")
    match = re.search(r'name="_csrf_token" value="([^"]+)"', page.text)
    assert match is not None
    return match[1]


async def sign_in(
    client: AsyncTestClient[Litestar], email: str, password: str = PASSWORD, next: str = "/"
) -> Any:
    form = {"_csrf_token": await csrf(client), "email": email, "password": password, "next": next}
    return await client.post("/login", data=form, follow_redirects=False)


def routes(app: Litestar) -> list[tuple[str, str, dict[str, Any]]]:
    """Every (method, path, opt) the app serves, path parameters filled in."""
    found = []
    for route in app.routes:
        path = re.sub(r"\{(\w+):uuid\}", str(uuid4()), route.path)
        path = re.sub(r"\{(\w+):int\}", "1", path)
        path = re.sub(r"\{[^}]+\}", "x", path)
        for handler in getattr(route, "route_handlers", []):
            for method in handler.http_methods:
                if method not in ("HEAD", "OPTIONS"):
                    found.append((method, path, handler.opt))
    return found


async def test_without_a_session_every_route_but_login_static_and_health_goes_to_login(
    app: Litestar,
) -> None:
    async with AsyncTestClient(app) as client:
        token = await csrf(client)
        checked = 0
        for method, path, opt in routes(app):
            if opt.get("public"):
                continue
            answer = await client.request(
                method, path, data={"_csrf_token": token}, follow_redirects=False
            )
            checked += 1
            if path.startswith("/api/"):  # the config API: no redirect, 401 in JSON
                assert answer.status_code == 401, (method, path, answer.status_code)
                continue
            assert answer.status_code == 303, (method, path, answer.status_code)
            assert answer.headers["location"].startswith("/login"), (method, path)
        assert checked >= 20
        # htmx asks: told where to go in a header htmx follows
        answer = await client.get("/connections", headers={"HX-Request": "true"})
        assert answer.headers["HX-Redirect"] == "/login?next=%2Fconnections"
        for public in ("/login", "/health", "/static/app.css", "/static/htmx-2.0.11.min.js"):
            assert (await client.get(public)).status_code == 200, public


async def test_a_write_without_the_csrf_token_is_refused_and_changes_nothing(
    app: Litestar, database_url: str
) -> None:
    async with AsyncTestClient(app) as client:
        await sign_in(client, "admin@example.com")
        form = {"email": "mallory@example.com", "role": "admin", "password": PASSWORD}
        answer = await client.post("/users", data=form)
        assert answer.status_code == 403
        forged = await client.post("/users", data={**form, "_csrf_token": "0" * 128})
        assert forged.status_code == 403
        htmx = await client.post("/users", data=form, headers={"x-csrftoken": await csrf(client)})
        assert htmx.status_code == 200  # the header htmx sends is accepted
    with psycopg.connect(database_url) as conn:
        made = conn.execute(
            "SELECT count(*) FROM users WHERE email = 'mallory@example.com'"
        ).fetchone()
    assert made == (1,)  # only the request that carried the token


async def test_a_csrf_token_is_good_only_with_the_session_it_was_made_for(
    app: Litestar, database_url: str
) -> None:
    form = {"email": "eve@example.com", "role": "admin", "password": PASSWORD}
    async with AsyncTestClient(app) as mine, AsyncTestClient(browser(database_url)) as theirs:
        await sign_in(theirs, "editor@example.com")  # another browser, its own session
        their_token = await csrf(theirs)
        their_pair = dict(theirs.cookies.items())
        before = await csrf(mine)  # a visitor's token, from before signing in
        await sign_in(mine, "admin@example.com")
        own = await csrf(mine)
        # the other browser's token; then its token with its cookies planted in this browser
        assert (
            await mine.post("/users", data={**form, "_csrf_token": their_token})
        ).status_code == 403
        for name, value in their_pair.items():
            if name != "sluice_session":
                mine.cookies.set(name, value)
        planted = await mine.post("/users", data=form, headers={"x-csrftoken": their_token})
        assert planted.status_code == 403 and "another session" in planted.text
        assert (await mine.post("/users", data={**form, "_csrf_token": before})).status_code == 403
        # signing out and in again makes a new session: the old page's token is spent
        await mine.post("/logout", data={"_csrf_token": own})
        await sign_in(mine, "admin@example.com")
        assert (await mine.post("/users", data={**form, "_csrf_token": own})).status_code == 403
        # an ended session's page sends one to sign in again, as any request without one
        mine.cookies.delete("sluice_session")
        ended = await mine.post("/users", data={**form, "_csrf_token": own}, follow_redirects=False)
        assert ended.status_code == 303 and ended.headers["location"] == "/login"
        await sign_in(mine, "admin@example.com")
        made = await mine.post("/users", data={**form, "_csrf_token": await csrf(mine)})
        assert made.status_code == 200
    with psycopg.connect(database_url) as conn:
        count = conn.execute(
            "SELECT count(*) FROM users WHERE email = 'eve@example.com'"
        ).fetchone()
    assert count == (1,)  # only the request with this session's own token


async def test_a_write_key_is_only_ever_itself_in_the_snippets(
    app: Litestar, database_url: str, tmp_path: Path
) -> None:
    """A key from before keys were held to a safe alphabet, made to break out of quotes: each
    snippet gives it to its language as one literal, and running the curl line runs curl."""
    marker = tmp_path / "PWNED"
    key = f"abcdefgh';touch {marker};echo '\"$(touch {marker})"
    async with connection(database_url) as conn:
        await workspace.apply(conn, specs.parse("sources: [{name: web}]"))
        await conn.execute("UPDATE sources SET write_key = %s", (key,))
        source_id = await (await conn.execute("SELECT id FROM sources")).fetchone()
    assert source_id is not None
    async with AsyncTestClient(app) as client:
        await sign_in(client, "editor@example.com")
        page = (await client.get(f"/sources/{source_id[0]}")).text
    snippets = {
        name: html.unescape(text)
        for name, text in re.findall(r'<code id="snippet-(\w+)">(.*?)</code>', page, re.S)
    }
    load = re.search(r"analytics\.load\((\"(?:[^\"\\]|\\.)*\"),", snippets["js"])
    assert load is not None and json.loads(load[1]) == key
    python = re.search(r"write_key = (.*)", snippets["python"])
    assert python is not None and ast.literal_eval(python[1]) == key
    node = re.search(r"new Analytics\((\"(?:[^\"\\]|\\.)*\"),", snippets["node"])
    assert node is not None and json.loads(node[1]) == key
    curl = snippets["curl"].replace("curl ", "printf '%s\\n' ", 1)
    ran = subprocess.run(["bash", "-c", curl], capture_output=True, text=True, check=True)
    assert ran.stdout.splitlines()[:2] == ["-u", f"{key}:"]
    assert not marker.exists()
    with pytest.raises(ConfigError, match="write_key must be 8 to 128 letters"):
        specs.parse(f"sources: [{{name: web, write_key: {json.dumps(key)}}}]")


async def test_names_from_the_workspace_are_shown_escaped_and_secrets_never(
    app: Litestar, database_url: str
) -> None:
    text = f"""
sources: [{{name: "{HOSTILE}"}}]
destinations:
  - name: "amp {HOSTILE}"
    type: amplitude
    config: {{apiKey: "{SECRET}"}}
connections: [{{source: "{HOSTILE}", destination: "amp {HOSTILE}"}}]
"""
    async with connection(database_url) as conn:
        await workspace.apply(conn, specs.parse(text))
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT id, write_key FROM sources").fetchone()
    assert row is not None
    source_id, write_key = row
    async with AsyncTestClient(app) as client:
        await sign_in(client, "viewer@example.com")
        page = (await client.get("/connections")).text
        source = (await client.get(f"/sources/{source_id}")).text
    for shown in (page, source):
        assert HOSTILE not in shown
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in shown
        assert SECRET not in shown
    assert write_key not in source and write_key[-4:] in source  # a viewer sees its end only


async def test_pages_run_no_inline_script_and_the_policy_says_so(
    app: Litestar, database_url: str
) -> None:
    """Escaping is the first defence; the content security policy the second, which works
    only while no page needs inline script or style itself."""
    text = """
sources: [{name: web}]
destinations: [{name: hook, type: webhook, config: {webhookUrl: "https://h.example.com"}}]
connections: [{source: web, destination: hook}]
"""
    async with connection(database_url) as conn:
        await workspace.apply(conn, specs.parse(text))
    with psycopg.connect(database_url) as conn:
        ids = conn.execute(
            "SELECT (SELECT id FROM sources), (SELECT id FROM destinations),"
            " (SELECT id FROM connections)"
        ).fetchone()
    assert ids is not None
    source, destination, link = ids
    paths = ["/login", "/connections", f"/sources/{source}", f"/destinations/{destination}",
             "/destinations/new", "/destinations/new?type=webhook", f"/connections/{link}",
             "/users", "/audit", "/account/password"]  # fmt: skip
    cards = [f"/sources/{source}/activity", f"/destinations/{destination}/activity"]
    async with AsyncTestClient(app) as client:
        await sign_in(client, "admin@example.com")
        answers = [await client.get(path) for path in paths]
        answers += [await client.get(path, headers={"HX-Request": "true"}) for path in cards]
        # an error page, and a form sent back with the error beside its field
        answers.append(await client.get(f"/sources/{uuid4()}"))
        refused = {"webhookUrl": "ftp://x", "_csrf_token": await csrf(client)}
        answers.append(await client.post(f"/destinations/{destination}", data=refused))
        answers.append(await client.get("/no/such/page"))
        answers.append(await client.post("/sources", data={"name": "no token"}))
        page = (await client.get("/connections")).text
        hashed = re.search(r'src="(/static/app\.[0-9a-f]{10}\.js)"', page)
        assert hashed, "pages name static files by their content's hash"
        static = await client.get(hashed[1], headers={"accept-encoding": "gzip, br"})
    assert [a.status_code for a in answers] == [200] * (len(paths) + len(cards)) + [
        404, 400, 404, 403
    ]  # fmt: skip
    # static files keep their own caching: a year under a hashed name, compressed
    assert static.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert static.headers["content-encoding"] == "gzip"
    assert static.headers["x-content-type-options"] == "nosniff"
    for answer in answers:
        assert answer.headers["cache-control"] == "no-store", answer.url
        assert answer.headers["x-frame-options"] == "DENY"
        policy = answer.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "style-src 'self'" in policy
        assert "unsafe-inline" not in policy
        page = answer.text
        assert re.findall(r"<script(?![^>]*\ssrc=)[^>]*>", page) == [], answer.url
        assert re.findall(r"<[^>]+\s(on[a-z]+|style)=", page) == [], answer.url


async def test_sign_in_is_throttled_after_repeated_failures(
    app: Litestar, database_url: str
) -> None:
    async with AsyncTestClient(app) as client:
        for _ in range(accounts.MAX_FAILURES_PER_ACCOUNT):
            wrong = await sign_in(client, "editor@example.com", "not-the-password-at-all")
            assert wrong.status_code == 400 and "wrong email or password" in wrong.text
        refused = await sign_in(client, "editor@example.com")  # even the right password
        assert refused.status_code == 429 and "too many failed sign-ins" in refused.text
        assert int(refused.headers["Retry-After"]) > 0
        assert "sluice_session" not in refused.cookies
        # another account from elsewhere is not affected
        assert (await sign_in(client, "viewer@example.com")).status_code == 303
    with psycopg.connect(database_url) as conn:
        audited = conn.execute(
            "SELECT count(*) FROM audit_log WHERE action = 'login.failed'"
            " AND actor = 'editor@example.com'"
        ).fetchone()
    assert audited == (accounts.MAX_FAILURES_PER_ACCOUNT,)  # throttled tries are not news


async def test_sign_ins_at_once_cannot_outrun_the_throttle(database_url: str) -> None:
    # Twenty wrong passwords sent together once got 12 checked against a limit of 5: each
    # counted the failures before any of the others had recorded its own.
    async def attempt() -> bool:
        """Whether the password was checked (and found wrong), not refused as too many."""
        async with connection(database_url) as conn:
            try:
                await changes.sign_in(conn, "editor@example.com", "not-the-password-at-all",
                                      "192.0.2.7", None)  # fmt: skip
            except SignInRefused as exc:  # (committed, as the sign-in page does)
                return exc.retry_after is None
        raise AssertionError("signed in with a wrong password")

    checked = await asyncio.gather(*(attempt() for _ in range(20)))
    assert sum(checked) == accounts.MAX_FAILURES_PER_ACCOUNT


async def test_unknown_and_wrong_answers_say_the_same(app: Litestar) -> None:
    async with AsyncTestClient(app) as client:
        unknown = await sign_in(client, "nobody@example.com")
        wrong = await sign_in(client, "admin@example.com", "not-the-password-at-all")
    assert unknown.status_code == wrong.status_code == 400
    assert "wrong email or password" in unknown.text and "wrong email or password" in wrong.text


async def test_the_session_cookie_is_httponly_and_samesite_and_secure_when_asked(
    database_url: str, app: Litestar
) -> None:
    async with AsyncTestClient(app) as client:
        plain = (await sign_in(client, "admin@example.com")).headers["set-cookie"]
    assert "HttpOnly" in plain and "SameSite=lax" in plain and "Secure" not in plain
    assert plain.startswith("sluice_session=")
    secure = create_app(WebOptions(database_url, "http://gw", secure_cookies=True))
    async with AsyncTestClient(secure, base_url="https://testserver.local") as client:
        csrf_cookie = (await client.get("/login")).headers["set-cookie"]
        cookie = (await sign_in(client, "admin@example.com")).headers["set-cookie"]
        # the browser sends the __Host- cookie back, and it is the session
        assert (await client.get("/connections")).status_code == 200
    assert "HttpOnly" in cookie and "Secure" in cookie
    # over HTTPS both cookies are bound to this host (no sibling domain can plant them)
    assert cookie.startswith("__Host-sluice_session=") and "Path=/" in cookie
    assert "Domain" not in cookie
    assert csrf_cookie.startswith("__Host-sluice_csrf=") and "Secure" in csrf_cookie


async def test_cookies_are_secure_when_a_trusted_proxy_says_the_browser_came_over_https(
    app: Litestar, database_url: str
) -> None:
    """Behind a TLS-terminating proxy that is trusted, `X-Forwarded-Proto: https` is enough
    for `Secure`, whatever the setting; anyone else saying so is not believed."""
    proxied = create_app(WebOptions(database_url, "http://gw",
                                    trusted_proxies=(ip_network("127.0.0.0/8"),)))  # fmt: skip

    async def from_peer(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":  # the peer's address, as the test says it
            said = dict(scope["headers"]).get(b"x-test-peer", b"127.0.0.1").decode()
            scope = {**scope, "client": (said, 40000)}
        await proxied(scope, receive, send)

    async def cookies(client: AsyncTestClient[Any], peer: str, proto: str) -> list[str]:
        client.cookies.clear()
        headers = {"X-Forwarded-Proto": proto, "X-Test-Peer": peer}
        page = await client.get("/login", headers=headers)
        token = re.search(r'name="_csrf_token" value="([^"]+)"', page.text)
        assert token is not None
        form = {"_csrf_token": token[1], "email": "admin@example.com", "password": PASSWORD}
        client.cookies.clear()  # (sent by hand: a Secure one would not go over http://)
        visitor = page.headers["set-cookie"].split(";")[0]
        signed = await client.post(
            "/login", data=form, headers={**headers, "cookie": visitor}, follow_redirects=False
        )
        assert signed.status_code == 303
        return [page.headers["set-cookie"], signed.headers["set-cookie"]]

    async with AsyncTestClient(from_peer) as client:
        trusted = await cookies(client, "127.0.0.1", "https")
        plain = await cookies(client, "127.0.0.1", "http")
        stranger = await cookies(client, "203.0.113.9", "https")
    assert all("Secure" in cookie for cookie in trusted), trusted
    assert trusted[1].startswith("sluice_session=")  # (the setting names the cookie)
    assert not any("Secure" in cookie for cookie in plain + stranger)


async def test_sign_in_goes_back_only_to_a_page_of_this_site(app: Litestar) -> None:
    async with AsyncTestClient(app) as client:
        targets = [("/users", "/users"), ("//evil.example/x", "/"),
                   ("https://evil.example", "/"), ("/\\evil.example", "/")]  # fmt: skip
        for target, expected in targets:
            client.cookies.clear()
            answer = await sign_in(client, "admin@example.com", next=target)
            assert answer.headers["location"] == expected, target


async def test_a_password_chosen_by_someone_else_must_be_changed_first(
    app: Litestar, database_url: str
) -> None:
    async with connection(database_url) as conn:
        await accounts.create(conn, "new@example.com", "editor", PASSWORD, must_change=True)
    async with AsyncTestClient(app) as client, AsyncTestClient(browser(database_url)) as other:
        await sign_in(other, "new@example.com")
        await sign_in(client, "new@example.com")
        answer = await client.get("/connections", follow_redirects=False)
        assert answer.headers["location"] == "/account/password"
        token = await csrf(client)
        form = {"_csrf_token": token, "current": PASSWORD, "password": "my-own-new-password",
                "repeat": "my-own-new-password"}  # fmt: skip
        changed = await client.post("/account/password", data=form, follow_redirects=False)
        assert changed.status_code == 303
        assert (await client.get("/connections")).status_code == 200
        # the other browser's session ended with the password change
        assert (await other.get("/connections", follow_redirects=False)).status_code == 303
        client.cookies.clear()
        assert (await sign_in(client, "new@example.com", "my-own-new-password")).status_code == 303


async def test_the_last_admin_cannot_be_demoted_or_disabled(
    app: Litestar, database_url: str
) -> None:
    async with AsyncTestClient(app) as client:
        await sign_in(client, "admin@example.com")
        token = await csrf(client)
        with psycopg.connect(database_url) as conn:
            row = conn.execute("SELECT id FROM users WHERE email = 'admin@example.com'").fetchone()
        assert row is not None
        for change in ({"role": "editor"}, {"role": "admin", "disabled": "true"}):
            answer = await client.post(f"/users/{row[0]}", data={"_csrf_token": token, **change})
            assert answer.status_code == 400
            assert "the only admin left" in answer.text


async def test_disabling_a_user_ends_their_sessions(app: Litestar, database_url: str) -> None:
    async with AsyncTestClient(app) as admin, AsyncTestClient(browser(database_url)) as editor:
        await sign_in(admin, "admin@example.com")
        await sign_in(editor, "editor@example.com")
        assert (await editor.get("/connections")).status_code == 200
        with psycopg.connect(database_url) as conn:
            row = conn.execute("SELECT id FROM users WHERE email = 'editor@example.com'").fetchone()
        assert row is not None
        form = {"_csrf_token": await csrf(admin), "role": "editor", "disabled": "true"}
        assert (await admin.post(f"/users/{row[0]}", data=form)).status_code == 200
        assert (await editor.get("/connections", follow_redirects=False)).status_code == 303
        again = await sign_in(editor, "editor@example.com")
        # the same answer as a wrong password: nothing tells that the password was right
        assert again.status_code == 400 and "wrong email or password" in again.text
        audit = (await admin.get("/audit")).text
    assert "user.update" in audit and "editor@example.com" in audit


async def test_sign_out_ends_the_session(app: Litestar) -> None:
    async with AsyncTestClient(app) as client:
        await sign_in(client, "viewer@example.com")
        cookie = client.cookies.get("sluice_session")
        out = await client.post("/logout", data={"_csrf_token": await csrf(client)},
                                follow_redirects=False)  # fmt: skip
        assert out.status_code == 303 and out.headers["location"] == "/login"
        client.cookies.set("sluice_session", cookie or "")  # an old copy of the cookie
        again = await client.get("/connections", follow_redirects=False)
    assert again.status_code == 303 and again.headers["location"].startswith("/login")


def test_concurrent_first_key_requests_agree(database_url: str) -> None:
    from engine.control import keyring

    async def both() -> list[str]:
        async def one() -> str:
            async with connection(database_url) as conn:
                return await keyring.key(conn, "shared")

        return list(await asyncio.gather(one(), one(), one()))

    keys = asyncio.run(both())
    assert len(set(keys)) == 1 and len(keys[0]) >= 40


HEADERS_CONFIG = f"""
destinations:
  - name: hook
    type: webhook
    config:
      webhookUrl: https://hooks.example.com/in
      headers: [{{from: Authorization, to: "Bearer {SECRET}"}}, {{from: X-Team, to: growth}}]
  - name: amp
    type: amplitude
    config: {{apiKey: "{SECRET}-amp", groupTypeTrait: "{HOSTILE}"}}
"""


async def _destination_ids(database_url: str, text: str = HEADERS_CONFIG) -> dict[str, Any]:
    """Apply a workspace file; the ids of the destinations, by name."""
    async with connection(database_url) as conn:
        await workspace.apply(conn, specs.parse(text))
        cur = await conn.execute("SELECT name, id FROM destinations")
        return dict(await cur.fetchall())


async def test_destination_pages_never_show_secrets_and_escape_settings(
    app: Litestar, database_url: str
) -> None:
    ids = await _destination_ids(database_url)
    async with AsyncTestClient(app) as client:
        for who in ("viewer@example.com", "editor@example.com"):
            client.cookies.clear()
            await sign_in(client, who)
            for name in ("hook", "amp"):
                html = (await client.get(f"/destinations/{ids[name]}")).text
                assert SECRET not in html, (who, name)
                assert HOSTILE not in html
            # a header's value, though no credential: editors see it where they edit it
            hook = (await client.get(f"/destinations/{ids['hook']}")).text
            assert ("growth" in hook) == (who == "editor@example.com"), who


async def test_a_viewer_sees_no_header_value_and_no_credential_of_a_url(
    app: Litestar, database_url: str
) -> None:
    url = "https://robot:hunter2-pass@hooks.example.com/in?team=growth-team&token=tok-123456"
    text = f"""
destinations:
  - name: hook
    type: webhook
    config:
      webhookUrl: "{url}"
      headers: [{{from: X-Custom, to: custom-value-42}}]
"""
    async with connection(database_url) as conn:
        await changes.Changes(conn, "admin@example.com").apply(
            specs.parse(text), action="api.apply", target="workspace"
        )
        hook = await (await conn.execute("SELECT id FROM destinations")).fetchone()
    assert hook is not None
    private = ("hunter2-pass", "tok-123456", "custom-value-42", "growth-team", "robot")
    async with AsyncTestClient(app) as client:
        await sign_in(client, "viewer@example.com")
        page = html.unescape((await client.get(f"/destinations/{hook[0]}")).text)
        client.cookies.clear()
        await sign_in(client, "editor@example.com")
        edited = html.unescape((await client.get(f"/destinations/{hook[0]}")).text)
        async with connection(database_url) as conn:
            secret, _ = await tokens.create(conn, "reader", "viewer", "test")
        client.cookies.clear()
        api = await client.get(
            "/api/v1/destinations/hook", headers={"Authorization": f"Bearer {secret}"}
        )
    assert (
        api.json()["config"]["webhookUrl"]
        == "https://****@hooks.example.com/in?team=****&token=****"
    )
    for value in private:
        assert value not in page and value not in api.text, value
    assert "https://****@hooks.example.com/in?team=****&token=****" in page
    # an editor sees what they edit, but the URL's password and token stay masked there too
    assert "custom-value-42" in edited and "team=growth-team" in edited
    assert "hunter2-pass" not in edited and "tok-123456" not in edited
    with psycopg.connect(database_url) as conn:
        audit = str(conn.execute("SELECT array_agg(row_to_json(a)) FROM audit_log a").fetchone())
    assert "api.apply" in audit and not [value for value in private if value in audit]


async def test_saving_a_form_with_masked_secrets_keeps_them_and_a_half_edit_is_refused(
    app: Litestar, database_url: str
) -> None:
    ids = await _destination_ids(database_url)
    async with AsyncTestClient(app) as client:
        await sign_in(client, "editor@example.com")
        page = (await client.get(f"/destinations/{ids['hook']}")).text
        # (the headers are a table of rows: an input per row and column)
        rows = {column: [html.unescape(v) for v in re.findall(
                    rf'name="headers:{column}" value="([^"]*)"', page)]
                for column in ("from", "to")}  # fmt: skip
        assert any("****" in value for value in rows["to"]), rows
        form = {"_csrf_token": await csrf(client), "webhookUrl": "https://hooks.example.com/v2",
                "webhookMethod": "POST", "headers:from": rows["from"],
                "headers:to": rows["to"]}  # fmt: skip
        saved = await client.post(f"/destinations/{ids['hook']}", data=form,
                                  follow_redirects=False)  # fmt: skip
        assert saved.status_code == 303
        half = {**form, "headers:to": [v.replace("growth", "sales") for v in rows["to"]]}
        refused = await client.post(f"/destinations/{ids['hook']}", data=half)
        assert refused.status_code == 400 and "masked secrets" in refused.text
    async with connection(database_url) as conn:
        spec = await workspace.entry(conn, "destination", ids["hook"])
    assert spec.config["webhookUrl"] == "https://hooks.example.com/v2"
    assert {"from": "Authorization", "to": f"Bearer {SECRET}"} in spec.config["headers"]
    assert {"from": "X-Team", "to": "growth"} in spec.config["headers"]


async def test_a_blank_secret_keeps_the_saved_one(app: Litestar, database_url: str) -> None:
    ids = await _destination_ids(database_url)
    async with AsyncTestClient(app) as client:
        await sign_in(client, "editor@example.com")
        form = {"_csrf_token": await csrf(client), "apiKey": "", "groupTypeTrait": "company"}
        saved = await client.post(f"/destinations/{ids['amp']}", data=form,
                                  follow_redirects=False)  # fmt: skip
        assert saved.status_code == 303
    async with connection(database_url) as conn:
        spec = await workspace.entry(conn, "destination", ids["amp"])
    assert spec.config["apiKey"] == f"{SECRET}-amp" and spec.config["groupTypeTrait"] == "company"


async def test_saving_the_form_keeps_the_settings_it_does_not_show(
    app: Litestar, database_url: str
) -> None:
    ids = await _destination_ids(database_url, """
destinations:
  - name: filtered
    type: webhook
    config:
      webhookUrl: https://hooks.example.com/in
      eventFilteringOption: whitelistedEvents
      whitelistedEvents: [{eventName: Order Completed}]
""")  # fmt: skip
    async with AsyncTestClient(app) as client:
        await sign_in(client, "editor@example.com")
        form = {"_csrf_token": await csrf(client), "webhookUrl": "https://hooks.example.com/v2",
                "webhookMethod": "POST", "headers": "[]"}  # fmt: skip
        saved = await client.post(
            f"/destinations/{ids['filtered']}", data=form, follow_redirects=False
        )
        assert saved.status_code == 303
    async with connection(database_url) as conn:
        spec = await workspace.entry(conn, "destination", ids["filtered"])
    assert spec.config["webhookUrl"] == "https://hooks.example.com/v2"
    assert spec.config["eventFilteringOption"] == "whitelistedEvents"
    assert spec.config["whitelistedEvents"] == [{"eventName": "Order Completed"}]


async def test_the_throttle_locks_out_the_guesser_not_the_owner_elsewhere(
    app: Litestar, database_url: str
) -> None:
    async with connection(database_url) as conn:
        for _ in range(accounts.MAX_FAILURES_PER_ACCOUNT):
            with pytest.raises(SignInRefused):
                await accounts.sign_in(conn, "admin@example.com", "guess-guess-guess", "10.0.0.1")
        with pytest.raises(SignInRefused) as refused:
            await accounts.sign_in(conn, "admin@example.com", PASSWORD, "10.0.0.1")
        assert refused.value.retry_after is not None
        user = await accounts.sign_in(conn, "admin@example.com", PASSWORD, "192.0.2.7")
    assert user.email == "admin@example.com"


async def test_a_test_event_does_not_reach_this_hosts_own_network_by_default(
    app: Litestar, database_url: str
) -> None:
    ids = await _destination_ids(database_url, """
destinations:
  - {name: inside, type: webhook, config: {webhookUrl: "http://127.0.0.1:9/latest"}}
  - {name: metadata, type: webhook, config: {webhookUrl: "http://169.254.169.254/latest"}}
""")  # fmt: skip
    allowing = create_app(WebOptions(database_url, "http://gw", test_private_hosts=True))
    for instance, name, said in ((app, "inside", "own network"),
                                 (allowing, "metadata", "link-local")):  # fmt: skip
        async with AsyncTestClient(instance) as client:
            await sign_in(client, "editor@example.com")
            answer = await client.post(f"/destinations/{ids[name]}/test",
                                       headers={"x-csrftoken": await csrf(client)})  # fmt: skip
        assert answer.status_code == 200
        assert "not sent:" in answer.text and said in answer.text, answer.text


async def test_a_refused_form_comes_back_with_what_was_typed(
    app: Litestar, database_url: str
) -> None:
    ids = await _destination_ids(database_url)
    async with AsyncTestClient(app) as client:
        await sign_in(client, "editor@example.com")
        form = {"_csrf_token": await csrf(client), "webhookUrl": "ftp://nope",
                "webhookMethod": "POST", "headers": ""}  # fmt: skip
        answer = await client.post(f"/destinations/{ids['hook']}", data=form)
    assert answer.status_code == 400
    assert 'id="e-webhookUrl"' in answer.text and 'value="ftp://nope"' in answer.text


async def test_an_admin_resets_a_password_which_must_then_be_changed(
    app: Litestar, database_url: str
) -> None:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT id FROM users WHERE email = 'editor@example.com'").fetchone()
    assert row is not None
    async with AsyncTestClient(app) as admin, AsyncTestClient(browser(database_url)) as editor:
        await sign_in(editor, "editor@example.com")
        await sign_in(admin, "admin@example.com")
        reset = f"/users/{row[0]}/password"
        token = await csrf(admin)
        short = await admin.post(reset, data={"_csrf_token": token, "password": "short"})
        assert short.status_code == 400 and "at least 12 characters" in short.text
        done = await admin.post(
            reset, data={"_csrf_token": token, "password": "a-reset-password-42"}
        )
        assert done.status_code == 200 and "has a new password" in done.text
        assert (await editor.get("/connections", follow_redirects=False)).status_code == 303
        editor.cookies.clear()
        assert (await sign_in(editor, "editor@example.com")).status_code == 400
        assert (
            await sign_in(editor, "editor@example.com", "a-reset-password-42")
        ).status_code == 303
        moved = await editor.get("/connections", follow_redirects=False)
    assert moved.headers["location"] == "/account/password"
