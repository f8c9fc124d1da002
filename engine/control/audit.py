"""The audit log: who changed what, when, and the values before and after. Appended in the same
transaction as the change, so the log never claims a change that did not happen, nor misses one
that did. Never secrets: details hold names and settings keys, and the values before and after
come through `difference`, which masks secrets."""

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb

from engine import db
from engine.control import accounts, tokens
from engine.db import Connection
from engine.destinations.secrets import CREDENTIAL, MASK, mask
from engine.sql import Queries

_Q = Queries.beside(__file__, "audit.sql")
CLI = "cli"  # who the log says made a change from the command line
# The kinds of action (`destination` of `destination.update`): a new kind is added here.
KINDS = (
    "api", "archive", "backup", "config", "connection", "destination", "failed", "login",
    "logout", "password", "restore", "settings", "source", "token", "transformation", "user",
    "warehouse",
)  # fmt: skip
Values = dict[str, Any]


@dataclass(frozen=True)
class Entry:
    id: int
    at: datetime
    actor: str
    action: str
    target: str | None
    detail: dict[str, Any]
    before: Values | None = None
    after: Values | None = None

    @property
    def changed(self) -> list[tuple[str, Any, Any]]:
        """(key, before, after) for each value the change touched."""
        before, after = self.before or {}, self.after or {}
        return [(k, before.get(k), after.get(k)) for k in sorted(before.keys() | after.keys())]


@dataclass(frozen=True)
class Filters:
    """Which entries to show; None is no filter."""

    actor: str | None = None
    what: str | None = None  # an action (`destination.update`) or a kind (`destination`)
    since: datetime | None = None
    until: datetime | None = None


async def record(
    conn: Connection,
    actor: str,
    action: str,
    target: str | None = None,
    change: tuple[Values, Values] | None = None,
    **detail: Any,
) -> None:
    """An entry; `change`: the values before and after, from `difference`."""
    before, after = (Jsonb(change[0]), Jsonb(change[1])) if change else (None, None)
    params = {"actor": actor, "action": action, "target": target, "detail": Jsonb(detail),
              "before": before, "after": after}  # fmt: skip
    await conn.execute(_Q["record"], params)


def difference(
    before: Values, after: Values, secrets: Iterable[str] = (), secret_keys: Iterable[str] = ()
) -> tuple[Values, Values]:
    """The values that differ, before and after, as anyone may see them: a key in `secret_keys`
    or whose last word is named like a credential (`source web: write_key`) shows `****` when
    set, and the `secrets` (values) are masked wherever they appear."""
    hidden, values = set(secret_keys), [s for s in secrets if s]
    keys = [k for k in sorted(before.keys() | after.keys()) if before.get(k) != after.get(k)]

    def shown(side: Values) -> Values:
        return {k: _shown(k, side[k], hidden, values) for k in keys if k in side}

    return shown(before), shown(after)


def _shown(key: str, value: Any, hidden: set[str], secrets: list[str]) -> Any:
    if value in (None, "", [], {}):
        return value
    if key in hidden or CREDENTIAL.search(key.rpartition(" ")[2]):  # (its field, not a name)
        return MASK
    try:
        return json.loads(mask(json.dumps(value), secrets))
    except ValueError:  # a secret masked across JSON's own syntax: the whole value is secret
        return MASK


async def search(
    conn: Connection, filters: Filters, *, limit: int = 100, before: int | None = None
) -> list[Entry]:
    """Newest first; `before` (an entry id) pages back."""
    params = {"actor": filters.actor, "what": filters.what, "since": filters.since,
              "until": filters.until, "limit": limit, "before_id": before}  # fmt: skip
    return await db.rows(conn, _Q["search"], params, Entry)


async def choices(conn: Connection) -> tuple[list[str], list[str]]:
    """Whom the filters' menus offer, and the kinds of things done. Not the actors the log
    holds: a failed sign-in records whatever address was typed, so strangers would grow the
    menu without end (and each page would read the whole log to list it)."""
    people = [user.email for user in await accounts.everyone(conn)]
    return people + [token.email for token in await tokens.everyone(conn)] + [CLI], list(KINDS)
