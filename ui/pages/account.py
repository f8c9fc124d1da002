"""Signing in and out, and changing one's own password."""

from pathlib import Path
from typing import Any

import msgspec
from litestar import Request, Response, get, post
from litestar.params import FromQuery, URLEncodedBody
from litestar.response import Redirect, Template

from engine.control import changes
from engine.control.changes import Changes
from engine.errors import AccountError, SignInRefused
from ui.requests import client, current_user, database, local_path, signed_in
from ui.security import session_cookie


class SignIn(msgspec.Struct):
    email: str = ""
    password: str = ""
    next: str = "/"


class NewPassword(msgspec.Struct):
    current: str = ""
    password: str = ""
    repeat: str = ""


@get("/login", opt={"public": True})
async def login_page(request: Request[Any, Any, Any], next: FromQuery[str] = "/") -> Response[Any]:
    if current_user(request) is not None:
        return Redirect(local_path(next), status_code=303)
    return Template("login.html", context={"next": local_path(next), "email": "", "error": None})


@post("/login", opt={"public": True}, status_code=303)
async def login(request: Request[Any, Any, Any], data: URLEncodedBody[SignIn]) -> Response[Any]:
    address = client(request)
    async with database(request) as conn:
        try:
            token = await changes.sign_in(
                conn, data.email, data.password, address, request.state.session
            )
        except SignInRefused as exc:  # (the failure is counted: this block commits)
            headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else {}
            return Template(
                "login.html",
                context={"next": local_path(data.next), "email": data.email, "error": exc.message},
                status_code=429 if exc.retry_after else 400,
                headers=headers,
            )
    return Redirect(
        local_path(data.next), status_code=303, cookies=[session_cookie(request, token)]
    )


@post("/logout", opt={"role": "viewer", "before_password_change": True}, status_code=303)
async def logout(request: Request[Any, Any, Any]) -> Response[Any]:
    async with database(request) as conn:
        await changes.sign_out(conn, signed_in(request), request.state.session)
    return Redirect("/login", status_code=303, cookies=[session_cookie(request, None)])


@get("/account/password", opt={"before_password_change": True})
async def password_page(request: Request[Any, Any, Any]) -> Template:
    return Template("password.html", context={"user": signed_in(request), "error": None})


@post(
    "/account/password",
    opt={"role": "viewer", "before_password_change": True},
    status_code=303,
)
async def change_password(
    request: Request[Any, Any, Any], data: URLEncodedBody[NewPassword]
) -> Response[Any]:
    user = signed_in(request)
    error = "the two new passwords differ" if data.password != data.repeat else None
    if error is None:
        async with database(request) as conn:  # (commits a wrong current password's count)
            try:
                await Changes(conn, user.email).change_password(
                    user, data.current, data.password, client(request), request.state.session
                )
            except SignInRefused as exc:
                error = exc.message if exc.retry_after else "the current password is wrong"
            except AccountError as exc:
                error = exc.message
    if error is not None:
        return Template("password.html", context={"user": user, "error": error}, status_code=400)
    if user.must_change_password and user.may("admin"):
        _forget_initial_password(request)
    return Redirect("/connections?password=changed", status_code=303)


def _forget_initial_password(request: Request[Any, Any, Any]) -> None:
    """The first admin's one-time password, kept in the data directory for whoever missed it
    on the console, is of no use once an admin has chosen their own: it goes."""
    kept: Path | None = request.app.state.initial_password_file
    if kept is not None:
        kept.unlink(missing_ok=True)


handlers = [login_page, login, logout, password_page, change_password]
