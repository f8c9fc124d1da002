"""Users (admins only): who may sign in, with which role; new users get a password to change."""

from datetime import timedelta
from typing import Any
from uuid import UUID

import msgspec
from litestar import Request, Response, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, URLEncodedBody
from litestar.response import Redirect, Template

from engine.control import accounts, tokens
from engine.errors import AccountError
from ui.requests import changes, database, signed_in

_ADMIN = {"role": "admin"}


class NewUser(msgspec.Struct):
    email: str = ""
    role: str = "viewer"
    password: str = ""


class UserChange(msgspec.Struct):
    role: str = "viewer"
    disabled: bool = False


DEFAULT_TOKEN_DAYS = 90


class NewToken(msgspec.Struct):
    name: str = ""
    role: str = "viewer"
    days: int = DEFAULT_TOKEN_DAYS  # valid for so many days; 0: until revoked


TOKEN_LIFETIMES = {30: "expires in 30 days", 90: "expires in 90 days", 365: "expires in a year",
                   0: "never expires"}  # fmt: skip


async def _page(request: Request[Any, Any, Any], status: int = 200, **context: Any) -> Template:
    async with database(request) as conn:
        people = await accounts.everyone(conn)
        keys = await tokens.everyone(conn)
    defaults = {"error": None, "form": NewUser(), "created": None, "new_token": None,
                "reset": None}  # fmt: skip
    return Template(
        "users.html",
        context={"user": signed_in(request), "people": people, "roles": accounts.ROLES,
                 "tokens": keys, "lifetimes": TOKEN_LIFETIMES,
                 "default_days": DEFAULT_TOKEN_DAYS, **defaults, **context},
        status_code=status,
    )  # fmt: skip


@get("/users", opt=_ADMIN)
async def users_page(request: Request[Any, Any, Any]) -> Template:
    return await _page(request)


@post("/users", opt=_ADMIN, status_code=200)
async def create_user(request: Request[Any, Any, Any], data: URLEncodedBody[NewUser]) -> Template:
    try:
        async with database(request) as conn:
            made = await changes(request, conn).create_user(data.email, data.role, data.password)
    except AccountError as exc:
        return await _page(request, 400, error=exc.message, form=data)
    return await _page(request, created=made.email)


async def _person(conn: Any, user_id: UUID) -> accounts.User:
    person = await accounts.by_id(conn, user_id)
    if person is None:
        raise NotFoundException("no such user")
    return person


@post("/users/{user_id:uuid}", opt=_ADMIN, status_code=303)
async def change_user(
    request: Request[Any, Any, Any], user_id: FromPath[UUID], data: URLEncodedBody[UserChange]
) -> Response[Any]:
    async with database(request) as conn:
        person = await _person(conn, user_id)
        try:
            await changes(request, conn).update_user(person, data.role, data.disabled)
        except AccountError as exc:
            return await _page(request, 400, error=exc.message)
    return Redirect("/users", status_code=303)


class Reset(msgspec.Struct):
    password: str = ""


@post("/users/{user_id:uuid}/password", opt=_ADMIN, status_code=200)
async def reset_password(
    request: Request[Any, Any, Any], user_id: FromPath[UUID], data: URLEncodedBody[Reset]
) -> Template:
    """Give someone a new password (they choose their own at the next sign-in); their
    sessions end."""
    async with database(request) as conn:
        person = await _person(conn, user_id)
        try:
            await changes(request, conn).reset_password(person, data.password)
        except AccountError as exc:
            return await _page(request, 400, error=f"{person.email}: {exc.message}")
    return await _page(request, reset=person.email)


@post("/users/tokens", opt=_ADMIN, status_code=200)
async def create_token(request: Request[Any, Any, Any], data: URLEncodedBody[NewToken]) -> Template:
    """A config API token; its secret is shown on this one page and never again."""
    try:
        if data.days not in TOKEN_LIFETIMES:
            raise AccountError(f"a token lasts one of {sorted(TOKEN_LIFETIMES)} days (0: always)")
        lifetime = timedelta(days=data.days) if data.days else None
        async with database(request) as conn:
            secret, made = await changes(request, conn).create_token(data.name, data.role, lifetime)
    except AccountError as exc:
        return await _page(request, 400, error=exc.message)
    return await _page(request, new_token=(made.name, secret))


@post("/users/tokens/{token_id:uuid}/revoke", opt=_ADMIN, status_code=303)
async def revoke_token(request: Request[Any, Any, Any], token_id: FromPath[UUID]) -> Redirect:
    async with database(request) as conn:
        await changes(request, conn).revoke_token(token_id)
    return Redirect("/users", status_code=303)


handlers = [users_page, create_user, change_user, reset_password, create_token, revoke_token]
