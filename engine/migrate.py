"""Numbered `.sql` migrations, applied once each, under an advisory lock."""

import hashlib
from dataclasses import dataclass
from pathlib import Path

from engine.db import connection
from engine.errors import SchemaError
from engine.sql import Queries

MIGRATIONS = Path(__file__).with_name("migrations")
_Q = Queries.beside(__file__, "migrate.sql")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def available() -> list[Migration]:
    found = []
    for path in sorted(MIGRATIONS.glob("*.sql")):
        number, _, name = path.stem.partition("_")
        found.append(Migration(int(number), name, path.read_text()))
    return found


def _check_unchanged(migration: Migration, checksum: str) -> None:
    if checksum != migration.checksum:
        raise SchemaError(
            f"migration {migration.version:04d}_{migration.name}.sql differs from the one this "
            "database applied; applied migrations must never change: add a new one instead"
        )


async def apply(url: str) -> list[Migration]:
    """Apply the migrations this database lacks and return them.

    Two hosts starting at once both call this; the advisory lock makes the second wait and then
    find nothing left to do.
    """
    async with connection(url) as conn:
        await conn.set_autocommit(True)
        await conn.execute(_Q["lock"])
        try:
            await conn.execute(_Q["create_table"])
            cur = await conn.execute(_Q["applied"])
            done = dict(await cur.fetchall())
            applied = []
            for migration in available():
                if migration.version in done:
                    _check_unchanged(migration, done[migration.version])
                    continue
                async with conn.transaction():
                    await conn.execute(migration.sql.encode())
                    await conn.execute(
                        _Q["record"],
                        {
                            "version": migration.version,
                            "name": migration.name,
                            "checksum": migration.checksum,
                        },
                    )
                applied.append(migration)
            return applied
        finally:
            await conn.execute(_Q["unlock"])
