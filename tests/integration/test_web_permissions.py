"""Who may do what, route by route: every route the app serves (read from the app itself, so
that a new one cannot be left out), for a visitor and each role, pages with and without their
CSRF token, the API with and without a token. Nothing answers 5xx."""

from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient

from engine.control.accounts import ROLES, Role
from tests.integration.test_web_api import bearer
from tests.integration.test_web_security import app, browser, csrf, routes, sign_in

_SAFE = ("GET", "HEAD", "OPTIONS")
__all__ = ["app"]  # (the fixture: a user of each role)


def _needs(method: str, opt: dict[str, Any]) -> Role:
    role: Role = opt.get("role") or ("viewer" if method in _SAFE else "editor")
    return role


def _may(role: Role, needed: Role) -> bool:
    return ROLES.index(role) <= ROLES.index(needed)


async def test_every_route_for_a_visitor_and_each_role_with_and_without_csrf(
    app: Litestar, database_url: str
) -> None:
    table = [(m, p, o) for m, p, o in routes(app) if p != "/logout"]  # (signing out: last)
    assert len(table) >= 60
    checked = 0
    async with AsyncTestClient(app) as visitor:
        for method, path, opt in table:
            answer = await visitor.request(method, path, follow_redirects=False)
            assert answer.status_code < 500, (method, path)
            if opt.get("public"):  # (the sign-in form, /health, static files)
                assert (answer.status_code == 403) == (method not in _SAFE), (method, path)
            elif path.startswith("/api/"):
                assert answer.status_code == 401, (method, path)
            elif method in _SAFE:
                assert answer.headers["location"].startswith("/login"), (method, path)
            else:  # no session, no token: refused either way, and nothing done
                assert answer.status_code in (303, 403), (method, path)
            checked += 1
    for role in reversed(ROLES):  # (admin first)
        api = await bearer(database_url, role, f"{role}-table")
        async with AsyncTestClient(browser(database_url)) as client:
            assert (await sign_in(client, f"{role}@example.com")).status_code == 303
            token = await csrf(client)
            for method, path, opt in table:
                allowed = _may(role, _needs(method, opt))
                if path.startswith("/api/"):
                    answer = await client.request(method, path, headers=api)
                    assert answer.status_code < 500, (role, method, path, answer.text)
                    assert (answer.status_code == 403) != allowed, (role, method, path)
                    assert answer.status_code != 401, (role, method, path)
                    checked += 1
                    continue
                for with_token in (False, True):
                    form = {"_csrf_token": token} if with_token else {}
                    answer = await client.request(method, path, data=form, follow_redirects=False)
                    said = (role, method, path, with_token, answer.status_code)
                    assert answer.status_code < 500, (*said, answer.text[-400:])
                    refused = answer.status_code == 403
                    if method not in _SAFE and not with_token:
                        assert refused, said  # the CSRF token first, whoever asks
                    elif opt.get("public"):
                        assert not refused, said
                    else:
                        assert refused != allowed, said
                        assert not answer.headers.get("location", "").startswith("/login"), said
                    checked += 1
            out = await client.post("/logout", data={"_csrf_token": token}, follow_redirects=False)
            assert out.status_code == 303 and out.headers["location"] == "/login"
            after = await client.get("/connections", follow_redirects=False)
            assert after.headers["location"].startswith("/login")
    assert checked >= len(table) * 6
