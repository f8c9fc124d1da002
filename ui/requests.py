"""What page handlers take from a request: the database pool and the signed-in user."""

from typing import Any

from litestar.connection import ASGIConnection

from engine.accounts import User
from engine.db import Pool


def pool_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Pool:
    pool: Pool = connection.app.state.pool
    return pool


def current_user(connection: ASGIConnection[Any, Any, Any, Any]) -> User | None:
    user: User | None = connection.state.get("user")
    return user


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
