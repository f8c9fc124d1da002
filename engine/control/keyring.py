"""Secrets the appliance makes for itself and shares between its processes and hosts through
the database (the key that signs CSRF tokens), so that none has to be configured by hand."""

import secrets

from engine import db
from engine.db import Connection
from engine.sql import Queries

_Q = Queries.beside(__file__, "keyring.sql")


async def key(conn: Connection, name: str) -> str:
    """The key called `name`, made (256 random bits) the first time it is asked for."""
    found = await db.value(
        conn, _Q["get_or_create"], {"name": name, "candidate": secrets.token_urlsafe(32)}
    )
    if found is None:  # made by a transaction that committed after this statement's snapshot
        found = await db.value(
            conn, _Q["get_or_create"], {"name": name, "candidate": secrets.token_urlsafe(32)}
        )
    assert found is not None
    return str(found)
