"""People who sign in to the control plane: their roles, passwords and sign-in throttling.

Roles: `admin` (everything, users included), `editor` (sources, destinations,
transformations, connections), `viewer` (reads; never sees secrets). Passwords are hashed with
argon2id (argon2-cffi's defaults, re-hashed at sign-in when those change), in a thread: a hash
takes tens of milliseconds of CPU that the event loop must not wait on. Sign-in is throttled
per account and client address, per client address, and (more loosely) per account; the
answer never says whether the email exists or the account is disabled.
"""

import asyncio
import functools
import ipaddress
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, NamedTuple, Protocol, get_args
from uuid import UUID

import msgspec
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from engine import db
from engine.db import Connection
from engine.errors import AccountError, SignInRefused
from engine.sql import Queries

_Q = Queries.beside(__file__, "accounts.sql")

Role = Literal["admin", "editor", "viewer"]
ROLES: tuple[Role, ...] = get_args(Role)
MIN_PASSWORD = 12
MAX_PASSWORD = 1024  # argon2 takes any length; a megabyte "password" is an attack
THROTTLE_WINDOW = timedelta(minutes=15)
# Per account from one client address (guessing one account), per client (guessing many),
# and per account from anywhere (a spread-out attack): the first two without locking the
# real owner out from elsewhere.
MAX_FAILURES_PER_ACCOUNT = 5
MAX_FAILURES_PER_CLIENT = 20
MAX_FAILURES_PER_ACCOUNT_ANYWHERE = 50
_WRONG = "wrong email or password"

_hasher = PasswordHasher()  # argon2id


@functools.cache
def _decoy() -> str:
    """Verified against when the email is unknown, so that the answer takes as long either
    way. Made on first use: a hash costs ~0.2 s, which every CLI command would pay at import."""
    return _hasher.hash("not anybody's password")


class Principal(Protocol):
    """Someone or something acting in the control plane: a signed-in user, an API token."""

    @property
    def email(self) -> str: ...  # how the audit log names them

    @property
    def role(self) -> Role: ...

    @property
    def must_change_password(self) -> bool: ...

    def may(self, needed: Role) -> bool: ...


@dataclass(frozen=True)
class User:
    id: UUID
    email: str
    role: Role
    must_change_password: bool
    disabled: bool
    created_at: datetime
    last_login_at: datetime | None

    def may(self, needed: Role) -> bool:
        """Whether this user's role includes `needed` (admin ⊃ editor ⊃ viewer)."""
        return ROLES.index(self.role) <= ROLES.index(needed)


@dataclass(frozen=True)
class _Stored(User):
    password_hash: str


# An address as people write one: a dot-atom before the @ (RFC 5322, letters of any script
# allowed; no quoted strings, comments or brackets), a host name after it — `localhost` and
# private names included, since an address here names a person, no mail is sent to it.
_ATOM = r"[\w!#$%&'*+/=?^`{|}~-]+"
_LABEL = r"[^\W_](?:(?:[^\W_]|-){0,61}[^\W_])?"
_EMAIL = re.compile(rf"(?=[^@]{{1,64}}@){_ATOM}(?:\.{_ATOM})*@{_LABEL}(?:\.{_LABEL})*")


def email_address(text: str) -> str:
    """An email address as stored: trimmed, lower case, and one by its syntax."""
    email = text.strip().lower()
    if len(email) > 254 or not _EMAIL.fullmatch(email):
        raise AccountError(f"{text!r} is not an email address")
    return email


def check_password(password: str, email: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"a password needs at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise AccountError(f"a password may have at most {MAX_PASSWORD} characters")
    if password.strip().lower() == email:
        raise AccountError("the password must not be the email address")


def _role(role: str) -> Role:
    if role not in ROLES:
        raise AccountError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    return role


async def _hash(password: str) -> str:
    return await asyncio.to_thread(_hasher.hash, password)


async def create(
    conn: Connection,
    email: str,
    role: str,
    password: str,
    *,
    must_change: bool = False,
) -> User:
    address = email_address(email)
    check_password(password, address)
    params = {
        "email": address,
        "role": _role(role),
        "password_hash": await _hash(password),
        "must_change": must_change,
    }
    user = await db.row(conn, _Q["create"], params, User)
    if user is None:
        raise AccountError(f"there is already a user {address}")
    return user


async def count(conn: Connection) -> int:
    return int(await db.value(conn, _Q["count"]) or 0)


async def by_id(conn: Connection, user_id: UUID) -> User | None:
    return await db.row(conn, _Q["by_id"], {"id": user_id}, User)


async def everyone(conn: Connection) -> list[User]:
    return await db.rows(conn, _Q["all"], None, User)


async def sign_in(conn: Connection, email: str, password: str, client: str | None) -> User:
    """The user with this email and password; SignInRefused when they do not match, when the
    account is disabled, or when there were too many failures lately (the try is not even
    checked then, so guessing gets nowhere)."""
    address = email.strip().lower()
    client = _ip(client)
    await _throttle(conn, address, client)
    stored = await db.row(conn, _Q["by_email"], {"email": address}, _Stored)
    known = stored.password_hash if stored else await asyncio.to_thread(_decoy)
    if not await _verify(known, password[:MAX_PASSWORD]):
        stored = None
    if stored is None or stored.disabled:  # (the same answer: no hint the password was right)
        await conn.execute(_Q["record_failure"], {"email": address, "client": client})
        raise SignInRefused(_WRONG)
    await conn.execute(_Q["forget_failures"], {"email": address})
    await conn.execute(_Q["signed_in"], {"id": stored.id})
    if _hasher.check_needs_rehash(stored.password_hash):
        await conn.execute(_Q["rehash"], {"id": stored.id, "password_hash": await _hash(password)})
    return User(**{k: v for k, v in vars(stored).items() if k != "password_hash"})


def _ip(client: str | None) -> str | None:
    """The client's IP address, or None when it has none (a Unix socket, a test client)."""
    try:
        return str(ipaddress.ip_address(client)) if client else None
    except ValueError:
        return None


async def _verify(password_hash: str, password: str) -> bool:
    try:
        return await asyncio.to_thread(_hasher.verify, password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


class _Failures(NamedTuple):
    """Failed sign-ins within the throttle window, and when the oldest of each kind was."""

    by_pair: int  # for this email from this client
    by_client: int
    by_account: int
    first_pair: datetime | None
    first_client: datetime | None
    first_account: datetime | None
    now: datetime


async def _throttle(conn: Connection, email: str, client: str | None) -> None:
    """SignInRefused when there were too many failures lately. The caller's transaction then
    holds this email's and this client's tries back until it ends (with the failure it
    records), so that tries sent at once are counted one after another."""
    await conn.execute(_Q["lock_sign_ins"], {"email": email, "client": client})
    await conn.execute(_Q["expire_failures"], {"window": THROTTLE_WINDOW})
    params = {"email": email, "client": client, "window": THROTTLE_WINDOW}
    found = await db.tuples(conn, _Q["recent_failures"], params, _Failures)
    by_pair, by_client, by_account, first_pair, first_client, first_account, now = found[0]
    for failures, limit, first in (
        (by_pair, MAX_FAILURES_PER_ACCOUNT, first_pair),
        (by_client, MAX_FAILURES_PER_CLIENT, first_client),
        (by_account, MAX_FAILURES_PER_ACCOUNT_ANYWHERE, first_account),
    ):
        if failures >= limit and first is not None:
            wait = max(1, int((first + THROTTLE_WINDOW - now).total_seconds()) + 1)
            raise SignInRefused(
                f"too many failed sign-ins; try again in {(wait + 59) // 60} minute(s)", wait
            )


async def set_password(
    conn: Connection, user: User, password: str, *, must_change: bool = False
) -> None:
    check_password(password, user.email)
    params = {"id": user.id, "password_hash": await _hash(password), "must_change": must_change}
    if await db.value(conn, _Q["set_password"], params) is None:
        raise AccountError(f"there is no user {user.email} any more")


async def update(conn: Connection, user: User, *, role: str, disabled: bool) -> User:
    """Change a user's role or switch the account off; never the last active admin's."""
    new_role = _role(role)
    if user.role == "admin" and (new_role != "admin" or disabled):
        await conn.execute(_Q["lock_admins"])
        if not await db.value(conn, _Q["other_active_admins"], {"id": user.id}):
            raise AccountError(f"{user.email} is the only admin left: make another admin first")
    updated = await db.row(
        conn, _Q["update"], {"id": user.id, "role": new_role, "disabled": disabled}, User
    )
    if updated is None:
        raise AccountError(f"there is no user {user.email} any more")
    return updated


class Kept(msgspec.Struct):
    """Someone who signs in, as a backup keeps them: with the hash of their password."""

    email: str
    role: str
    password_hash: str
    must_change_password: bool
    disabled: bool


async def kept(conn: Connection) -> list[Kept]:
    return await db.rows(conn, _Q["kept"], None, Kept)


async def restore(conn: Connection, user: Kept) -> None:
    """Add or update someone as a backup kept them."""
    await conn.execute(_Q["restore"], msgspec.structs.asdict(user))
