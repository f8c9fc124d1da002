"""Transformation code by version, read once: a version never changes."""

from typing import Any

from psycopg_pool import AsyncConnectionPool

from engine.errors import SluiceError
from engine.sql import Queries

_Q = Queries.beside(__file__, "store.sql")


class CodeStore:
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool
        self._code: dict[int, str] = {}

    async def code(self, version: int) -> str:
        code = self._code.get(version)
        if code is None:
            async with self._pool.connection() as conn:
                cur = await conn.execute(_Q["code"], {"version": version})
                row: Any = await cur.fetchone()
            if row is None:
                raise SluiceError(f"transformation version {version} does not exist")
            code = self._code[version] = row[0]
        return code
