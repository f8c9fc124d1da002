"""Who may do what in the control plane.

Every request passes `Sessions` (the session cookie → the signed-in user; for the config API
under /api, the bearer token instead — never the cookie) and then the app's guard, `allowed`:
a handler is public only when its `opt` says so; otherwise a visitor without a session goes to
/login (the API answers 401), and the role must reach what the handler needs — its
`opt["role"]`, else `viewer` to read and `editor` to change anything. Someone whose password
was chosen for them (the first admin, a reset) may only change it until they have. Every unsafe
request of the pages must carry its session's CSRF token (`ui.csrf`), checked once the visitor is
known to be signed in, so that one whose session has ended is sent to sign in again.
"""

from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote, urlsplit

import msgspec
from litestar import Request, Response
from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie, State
from litestar.enums import ScopeType
from litestar.exceptions import (
    HTTPException,
    NotAuthorizedException,
    NotFoundException,
    PermissionDeniedException,
)
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware import ASGIMiddleware
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from engine.control import sessions, tokens
from engine.control.accounts import Role
from engine.db import Pool
from engine.errors import (
    ConfigError,
    DatabaseUnavailable,
    InvalidRequest,
    NoSuchEntry,
    ValueRefused,
)
from ui import csrf
from ui.requests import SAFE_METHODS, current_user, database, local_path, over_https, principal

if TYPE_CHECKING:
    from ui.app import WebOptions

SESSION_COOKIE = "sluice_session"
API = "/api/"
POLL_HEADER = "x-sluice-poll"  # sent by parts of a page that refresh themselves (see app.js)


def state(pool: Pool, options: "WebOptions") -> State:
    return State({"pool": pool, "gateway_url": options.gateway_url,
                  "secure_cookies": options.secure_cookies,
                  "test_private_hosts": options.test_private_hosts,
                  "trusted_proxies": options.trusted_proxies,
                  "initial_password_file": options.initial_password_file})  # fmt: skip


def cookie_name(name: str, secure: bool) -> str:
    """Over HTTPS a cookie's name carries the `__Host-` prefix: browsers then take it only
    from this very host, over HTTPS, for the whole site — never planted by a sibling domain."""
    return f"__Host-{name}" if secure else name


def session_cookie(request: Request[Any, Any, Any], token: str | None) -> Cookie:
    """The session cookie to set (a token) or to clear (None); `Secure` whenever the browser
    came over HTTPS, whatever the setting (which also names the cookie)."""
    secure = bool(request.app.state.secure_cookies)
    return Cookie(
        key=cookie_name(SESSION_COOKIE, secure),
        value=token or "",
        path="/",
        httponly=True,
        samesite="lax",  # sent when following a link to the UI; never on cross-site posts
        secure=secure or over_https(request),
        max_age=int(sessions.LIFETIME.total_seconds()) if token else 0,
    )


class Sessions(ASGIMiddleware):
    """Looks the session cookie up; the user (or None) is then `request.state.user`."""

    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        connection: ASGIConnection[Any, Any, Any, Any] = ASGIConnection(scope)
        connection.state.user = connection.state.session = connection.state.token = None
        if is_api(connection):
            # A browser sends its cookies along to any site's request: honouring them here
            # would let another site drive the API in a signed-in admin's name.
            scheme, _, secret = connection.headers.get("authorization", "").partition(" ")
            if scheme.lower() == "bearer" and secret:
                async with database(connection) as conn:
                    connection.state.token = await tokens.verify(conn, secret.strip())
        elif cookie := connection.cookies.get(
            cookie_name(SESSION_COOKIE, connection.app.state.secure_cookies)
        ):
            async with database(connection) as conn:
                user = await sessions.user(
                    conn, cookie, touch=POLL_HEADER not in connection.headers
                )
            connection.state.user = user
            connection.state.session = cookie if user else None
        await next_app(scope, receive, send)


def is_api(connection: ASGIConnection[Any, Any, Any, Any]) -> bool:
    return connection.scope["path"].startswith(API)


class MustChangePassword(HTTPException):
    status_code = 303


async def allowed(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    if handler.opt.get("public"):
        if not is_api(connection):
            await csrf.check(connection)  # the sign-in form: a visitor's token
        return
    user = principal(connection)
    if user is None:
        raise NotAuthorizedException(
            "a bearer API token is needed" if is_api(connection) else "sign in first"
        )
    if not is_api(connection):
        await csrf.check(connection)
    if user.must_change_password and not handler.opt.get("before_password_change"):
        raise MustChangePassword()
    needed: Role = handler.opt.get("role") or (
        "viewer" if connection.scope.get("method") in SAFE_METHODS else "editor"
    )
    if not user.may(needed):
        raise PermissionDeniedException(
            f"you do not have permission to do this (your role: {user.role}; it takes {needed})"
        )


def _to_login(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    if is_api(request):
        return _api_error(request, exc)
    if request.headers.get("hx-request") and request.headers.get("hx-current-url"):
        # a part of a page asked (a refresh, a button): back to that page, not to the part
        page = urlsplit(request.headers["hx-current-url"])
        target = page.path + (f"?{page.query}" if page.query else "")
    elif request.method in SAFE_METHODS:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    else:
        target = ""
    url = f"/login?next={quote(local_path(target), safe='')}" if target else "/login"
    return redirect(request, url)


def _to_password(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    return redirect(request, "/account/password")


def redirect(request: Request[Any, Any, Any], url: str) -> Response[Any]:
    if request.headers.get("hx-request"):  # htmx follows this header, not a 3xx
        return Response(content=b"", status_code=200, headers={"HX-Redirect": url})
    return Redirect(url, status_code=303)


ErrorCode = Literal["invalid", "unauthenticated", "forbidden", "refused", "unavailable", "internal"]


class ApiError(msgspec.Struct):
    """The config API's answer to a request it did not carry out: a code, and what to do."""

    error: ErrorCode
    message: str


def _judged(request: Request[Any, Any, Any], exc: Exception) -> tuple[int, ErrorCode, str]:
    """What an error says to whoever asked, page or API: the status, the API's code and the
    message."""
    if isinstance(exc, NotAuthorizedException):
        return 401, "unauthenticated", exc.detail
    if isinstance(exc, PermissionDeniedException):
        return 403, "forbidden", exc.detail
    if isinstance(exc, ConfigError | InvalidRequest):  # a change refused, a field at fault
        return 400, "invalid", str(exc)
    if isinstance(exc, ValueRefused):  # what slipped past the checks: still the request's fault
        return 400, "invalid", f"a value given could not be stored: {exc.reason}"
    if isinstance(exc, NoSuchEntry):
        return 404, "refused", str(exc)
    if isinstance(exc, HTTPException):
        message = exc.detail
        if isinstance(exc.extra, list):  # Litestar's validation errors: what was wrong, where
            message += ": " + "; ".join(str(item.get("message", item)) for item in exc.extra)
        return exc.status_code, "invalid" if exc.status_code == 400 else "refused", message
    if isinstance(exc, DatabaseUnavailable):
        return 503, "unavailable", "the database is not reachable just now; try again shortly"
    request.logger.exception("control plane: unexpected error on %s", request.url.path)
    return HTTP_500_INTERNAL_SERVER_ERROR, "internal", "something went wrong on our side"


def _api_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """The config API's errors: JSON, an `ApiError`."""
    status, code, message = _judged(request, exc)
    headers = dict(exc.headers or {}) if isinstance(exc, HTTPException) else {}
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="sluice"'
    return Response(ApiError(code, message), status_code=status, headers=headers)


def _error_page(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """A page's error: the error page, or — to htmx, which swaps nothing in on an error — a
    plain sentence that app.js shows in the page's message region."""
    if is_api(request):
        return _api_error(request, exc)
    status, _, detail = _judged(request, exc)
    detail = detail[:1].upper() + detail[1:]
    headers = dict(exc.headers or {}) if isinstance(exc, HTTPException) else None
    if request.headers.get("hx-request"):
        return Response(detail, status_code=status, media_type="text/plain", headers=headers)
    return Template(
        "error.html",
        context={
            "status": status,
            "detail": detail,
            "user": current_user(request),
            "back": _came_from(request),
        },
        status_code=status,
        headers=headers,
    )


def _came_from(request: Request[Any, Any, Any]) -> str:
    """The page of this site the visitor came from (its path only), else the overview."""
    page = urlsplit(request.headers.get("referer", ""))
    target = local_path(page.path + (f"?{page.query}" if page.query else ""))
    return "/" if page.path in ("", request.url.path) else target


exception_handlers: dict[type[Exception] | int, Any] = {
    NotAuthorizedException: _to_login,
    MustChangePassword: _to_password,
    PermissionDeniedException: _error_page,
    NotFoundException: _error_page,
    HTTPException: _error_page,
    DatabaseUnavailable: _error_page,
    ConfigError: _error_page,
    InvalidRequest: _error_page,
    ValueRefused: _error_page,
    NoSuchEntry: _error_page,
    Exception: _error_page,
}


# Pages load scripts, styles and images from this app only, and nothing inline: were an event's
# text ever to slip past escaping, the browser still would not run it.
CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:",
    "object-src 'none'", "base-uri 'none'", "form-action 'self'", "frame-ancestors 'none'",
])  # fmt: skip

# Every answer — pages, error pages, redirects, the API — is never kept by caches or the
# browser's history (pages show write keys, new API tokens), never framed by another site,
# never sniffed into another type. (Static files keep the caching they ask for.)
SECURITY_HEADERS = {
    b"cache-control": b"no-store",
    b"x-frame-options": b"DENY",
    b"content-security-policy": CONTENT_SECURITY_POLICY.encode(),
    b"x-content-type-options": b"nosniff",
    b"referrer-policy": b"same-origin",
}


# Served over HTTPS (here, not by a proxy in front), the UI tells browsers to come back only
# over HTTPS for a year: a typed `http://` address or a link never goes out in the clear again.
STRICT_TRANSPORT_SECURITY = (b"strict-transport-security", b"max-age=31536000")


def security_headers(message: Message, scope: Scope) -> None:
    """The app's `before_send` hook: adds SECURITY_HEADERS to every answer that does not set
    them itself — the answers of exception handlers and of unknown paths included, which the
    app's `response_headers` and middleware do not reach."""
    if message["type"] == "http.response.start":
        headers = list(message.get("headers", []))
        present = {name.lower() for name, _ in headers}
        headers += [(k, v) for k, v in SECURITY_HEADERS.items() if k not in present]
        if scope.get("scheme") == "https":
            headers.append(STRICT_TRANSPORT_SECURITY)
        message["headers"] = headers
