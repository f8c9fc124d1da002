"""Secrets the appliance makes for itself and shares between its processes and hosts through
the database (the key that signs CSRF tokens), so that none has to be configured by hand."""

import secrets

from engine.db import Connection
from engine.sql import Queries

_Q = Queries.beside(__file__, "keyring.sql")


async def key(conn: Connection, name: str) -> str:
    """The key called `name`, made (256 random bits) the first time it is asked for."""
    cur = await conn.execute(
        _Q["get_or_create"], {"name": name, "candidate": secrets.token_urlsafe(32)}
    )
    row = await cur.fetchone()
    if row is None:  # made by a transaction that committed after this statement's snapshot
        cur = await conn.execute(
            _Q["get_or_create"], {"name": name, "candidate": secrets.token_urlsafe(32)}
        )
        row = await cur.fetchone()
    assert row is not None
    return str(row[0])
