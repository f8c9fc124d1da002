"""Transformation code by version, read once: a version never changes."""

from engine import db
from engine.db import Pool
from engine.errors import SluiceError
from engine.sql import Queries

_Q = Queries.beside(__file__, "store.sql")


class NoSuchVersion(SluiceError):
    """A transformation version that does not exist (any more)."""


class CodeStore:
    def __init__(self, pool: Pool) -> None:
        self._pool = pool
        self._code: dict[int, str] = {}

    async def code(self, version: int) -> str:
        """The code of a version; NoSuchVersion, or DatabaseError when it cannot be read."""
        code = self._code.get(version)
        if code is None:
            async with db.borrowed(self._pool) as conn:
                found = await db.value(conn, _Q["code"], {"version": version})
            if found is None:
                raise NoSuchVersion(f"transformation version {version} does not exist")
            code = self._code[version] = str(found)
        return code
