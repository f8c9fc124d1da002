"""What page handlers take from a request: the database pool and the signed-in user."""

from contextlib import AbstractAsyncContextManager
from typing import Any

from litestar.connection import ASGIConnection
from litestar.enums import RequestEncodingType

from engine.control.accounts import Principal, User
from engine.control.changes import Changes
from engine.db import Pool, borrowed
from engine.proxies import client_address, is_trusted

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})  # those that change nothing
FORMS = frozenset({RequestEncodingType.URL_ENCODED, RequestEncodingType.MULTI_PART})


def database(
    connection: ASGIConnection[Any, Any, Any, Any], *, autocommit: bool = False
) -> AbstractAsyncContextManager[Any]:
    """A database connection for this request's work, committed when the block succeeds (or
    statement by statement, `autocommit`); DatabaseUnavailable (a 503 page) when PostgreSQL
    cannot be reached."""
    pool: Pool = connection.app.state.pool
    return borrowed(pool, autocommit=autocommit)


def changes(connection: ASGIConnection[Any, Any, Any, Any], conn: Any) -> Changes:
    """Changes on `conn` (a `database` connection) made by whoever is asking: they are recorded
    in the audit log under their name."""
    who = principal(connection)
    assert who is not None  # (the guard lets nobody else change anything)
    return Changes(conn, who.email)


def current_user(connection: ASGIConnection[Any, Any, Any, Any]) -> User | None:
    """The user signed in with the session cookie (pages), if any."""
    user: User | None = connection.state.get("user")
    return user


def principal(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal | None:
    """Who is asking: the signed-in user, or the API token of a config API request."""
    token: Principal | None = connection.state.get("token")
    return token or current_user(connection)


def signed_in(connection: ASGIConnection[Any, Any, Any, Any]) -> User:
    """The user of a handler behind the guard (which let nobody else through)."""
    user = current_user(connection)
    assert user is not None
    return user


def local_path(target: str) -> str:
    """`target` if it is a path on this site, else `/`: never another host (`//evil.example`,
    `https://…`), whatever a form or a link says."""
    if target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


def client(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    """The client's address: the peer's, or the one a trusted proxy forwarded."""
    if connection.client is None:
        return None
    return client_address(
        connection.client.host,
        connection.headers.get("x-forwarded-for"),
        connection.app.state.trusted_proxies,
    )


def over_https(connection: ASGIConnection[Any, Any, Any, Any]) -> bool:
    """Whether the browser reached the UI over HTTPS: directly, or through a trusted proxy that
    says so (`X-Forwarded-Proto`)."""
    if connection.scope.get("scheme") == "https":
        return True
    said = connection.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return (
        said == "https"
        and connection.client is not None
        and is_trusted(connection.client.host, connection.app.state.trusted_proxies)
    )
