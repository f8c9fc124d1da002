"""What a destination's mapping would send for an event, without sending anything.

Used by `sluice preview` and by the UI's "send test event". Secrets in the request (API keys
in headers, URLs or bodies) are masked.
"""

from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from engine.destinations.base import Request, Unsendable
from engine.errors import SluiceError
from engine.pipeline.topology import Target, target
from engine.sql import Queries

_Q = Queries.beside(__file__, "preview.sql")


class PreviewError(SluiceError):
    pass


async def of_destination(
    conn: psycopg.AsyncConnection[Any], name: str, event: Any
) -> list[Request]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_Q["destination"], {"name": name})
        row = await cur.fetchone()
    if row is None:
        raise PreviewError(f"no destination named {name!r}")
    return requests(target(row), event)


def of_type(
    kind: str, config: dict[str, Any], event: Any, now: datetime | None = None
) -> list[Request]:
    row = {"id": None, "name": kind, "type": kind, "config": config, "delivery": {},
           "enabled": True}  # fmt: skip
    return requests(target(row), event, now)


def requests(dest: Target, event: Any, now: datetime | None = None) -> list[Request]:
    """The requests for `event` as they would be sent at `now` (default: now), secrets masked."""
    if not isinstance(event, dict):
        raise PreviewError("the event must be a JSON object")
    if dest.problem is not None or dest.plugin is None:
        raise PreviewError(dest.problem or "no destination plug-in")
    if not dest.filter.admits(event):
        raise PreviewError(f"{dest.name} does not take this event (its type or event filters)")
    try:
        made = dest.plugin.map(event, dest.settings, now or datetime.now(UTC))
    except Unsendable as exc:
        raise PreviewError(f"{dest.name} cannot send this event: {exc}") from None
    return [dest.masked(request) for request in made]
