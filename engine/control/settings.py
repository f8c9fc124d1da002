"""Workspace-wide settings an admin sets once, which belong to no source or destination: the SMTP
server alerts are mailed through. Stored in the database, like the workspace, so that every
worker host sends with the same ones."""

from typing import Literal

import msgspec
from psycopg.types.json import Jsonb

from engine import db
from engine.db import Connection
from engine.errors import ConfigError
from engine.sql import Queries

_Q = Queries.beside(__file__, "settings.sql")
Security = Literal["starttls", "tls", "none"]


class Smtp(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The SMTP server alert emails go through."""

    host: str
    port: int = 587
    security: Security = "starttls"  # STARTTLS after connecting, TLS from the start, or neither
    user: str = ""  # none: no login
    password: str = ""  # a secret: never shown, masked in the audit log
    sender: str  # the From address

    def check(self) -> None:
        if not self.host.strip():
            raise ConfigError("smtp", "give the SMTP server's host name")
        if not 1 <= self.port <= 65535:
            raise ConfigError("smtp", "the port is a number from 1 to 65535")
        if "@" not in self.sender:
            raise ConfigError("smtp", "the From address is an email address")


async def smtp(conn: Connection) -> Smtp | None:
    """The SMTP server set; None when none is."""
    found = await db.value(conn, _Q["get"], {"name": "smtp"})
    return None if found is None else msgspec.convert(found, Smtp)


async def set_smtp(conn: Connection, server: Smtp | None) -> None:
    """Set the SMTP server (None: none, alerts are not mailed)."""
    if server is None:
        await conn.execute(_Q["remove"], {"name": "smtp"})
        return
    server.check()
    await conn.execute(_Q["put"], {"name": "smtp", "value": Jsonb(msgspec.to_builtins(server))})
