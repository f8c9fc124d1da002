"""Workspace-wide settings an admin sets once, which belong to no source or destination: the SMTP
server alerts are mailed through. Stored in the database, like the workspace, so that every
worker host sends with the same ones."""

import ipaddress
from typing import Literal

import msgspec
from psycopg.types.json import Jsonb

from engine import db
from engine.db import Connection
from engine.destinations.secrets import MASK
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
        if self.security == "none" and self.password and not _loopback(self.host):
            raise ConfigError(
                "smtp", "a password is sent only over STARTTLS or TLS (or to a server on this "
                "host): choose one, or leave the password out")  # fmt: skip

    def keeping_password(self, saved: "Smtp | None") -> "Smtp":
        """These settings with the saved password when none (or the mask) is given — only for
        the same server and user: else, say so, since a password is never sent to another
        server than the one it was typed for (a changed host would otherwise receive it)."""
        if self.password not in ("", MASK):
            return self
        same = saved is not None and (saved.host, saved.port, saved.security, saved.user) == (
            self.host, self.port, self.security, self.user)  # fmt: skip
        if saved is not None and saved.password and same:
            return msgspec.structs.replace(self, password=saved.password)
        if saved is not None and saved.password and self.user:
            raise ConfigError("smtp", "the server, its security or the user changed: type the "
                              "password again")  # fmt: skip
        return msgspec.structs.replace(self, password="")


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host == "localhost"


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
