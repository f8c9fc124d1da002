"""CSRF tokens bound to the browser that asks.

Every unsafe request of the pages must carry the token made for the session it is sent with:
an HMAC, under the keyring's `csrf` key (shared by every process and host), of the session's
cookie. A token taken from another browser, or from before signing in or out, names another
session and is refused. A visitor without a session (the sign-in form) gets a random cookie of
its own (`sluice_csrf`: HttpOnly, SameSite=Strict) and a token bound to that instead.

The token travels in the form field `_csrf_token` or, for htmx requests, the `x-csrftoken`
header that `base.html` sets on <body>. Templates reach it as Litestar's `csrf_input` and
`csrf_token()`, which read it from the scope state this module fills in. The config API, which
takes no cookies, needs none.
"""

import hashlib
import hmac
import secrets
from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie, MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.exceptions import PermissionDeniedException
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from litestar.utils.scope.state import ScopeState

from ui.requests import FORMS, SAFE_METHODS, over_https

VISITOR_COOKIE = "sluice_csrf"
HEADER = "x-csrftoken"
FIELD = "_csrf_token"
_REFUSED = (
    "this form's security token is missing or belongs to another session (the page was opened "
    "before signing in or out, or in another browser): reload the page and send it again"
)


def _without_forms(scope: Scope) -> bool:
    """The config API (bearer tokens), static files and the health check."""
    return scope["path"].startswith(("/api/", "/static/")) or scope["path"] == "/health"


def _token(key: str, kind: str, value: str) -> str:
    return hmac.new(key.encode(), f"{kind}\0{value}".encode(), hashlib.sha256).hexdigest()


class Tokens(ASGIMiddleware):
    """Runs after `security.Sessions`: puts the token of this request's browser where templates
    find it, and gives a visitor without a session its cookie."""

    scopes = (ScopeType.HTTP,)

    def __init__(self, cookie_name: str, secure: bool) -> None:
        self.cookie_name, self.secure = cookie_name, secure
        self.should_bypass_for_scope = _without_forms

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        connection: ASGIConnection[Any, Any, Any, Any] = ASGIConnection(scope)
        session: str | None = connection.state.session
        visitor = None if session else connection.cookies.get(self.cookie_name)
        fresh = not session and not visitor
        if fresh:
            visitor = secrets.token_urlsafe(32)
        kind, value = ("session", session) if session else ("visitor", visitor)
        key: str = connection.app.state.csrf_key
        ScopeState.from_scope(scope).csrf_token = _token(key, kind, str(value))
        if not fresh:
            await next_app(scope, receive, send)
            return
        cookie = Cookie(key=self.cookie_name, value=visitor, path="/", httponly=True,
                        samesite="strict", secure=self.secure or over_https(connection),
                        ).to_header(header="")  # fmt: skip

        async def with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableScopeHeaders.from_message(message).add("set-cookie", cookie)
            await send(message)

        await next_app(scope, receive, with_cookie)


async def check(connection: ASGIConnection[Any, Any, Any, Any]) -> None:
    """Refuses (403) an unsafe request that does not carry its browser's token."""
    if connection.scope.get("method") in SAFE_METHODS:
        return
    expected = ScopeState.from_scope(connection.scope).csrf_token
    sent = connection.headers.get(HEADER)
    if not sent:
        request: Request[Any, Any, Any] = Request(connection.scope, connection.receive)
        if request.content_type[0] in FORMS:
            field = (await request.form()).get(FIELD)
            sent = field if isinstance(field, str) else None
    if not (
        sent
        and isinstance(expected, str)
        and hmac.compare_digest(sent.encode(errors="replace"), expected.encode())
    ):
        raise PermissionDeniedException(_REFUSED)
