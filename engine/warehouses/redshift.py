"""Redshift as a warehouse: PostgreSQL's loader (`postgres.py`: the schema from
`information_schema`, a temporary table per load, the same merges in one transaction) with
Redshift's dialect and its load method — each table's rows written as gzipped CSV files to the
destination's S3 bucket with a manifest listing them, read by `COPY … MANIFEST`, and removed
once read.

Redshift's ways, as RudderStack's tables have them: types int → bigint, float → double
precision, string and text → varchar(65535), datetime → timestamp (UTC), boolean → boolean
(run-length encoded), json → super; tables distributed by `id` and sorted by `received_at`;
no indexes, no `DISTINCT ON` (a window picks the latest row per id) and no
`array_agg … FILTER` (a window per column picks a user's latest non-null values); an empty
text value is loaded as null.

The bucket is reached through `Bucket`, which the destination gives (S3 lives a layer up).
"""

import asyncio
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, LiteralString, Protocol, Self

import msgspec
from psycopg import sql

from engine.sql import Queries
from engine.warehouses import loadfiles
from engine.warehouses.postgres import PostgresWarehouse
from engine.warehouses.schema import Columns
from engine.warehouses.settings import RedshiftSettings
from engine.warehouses.warehouse import Load, Mode

_Q = Queries.beside(__file__, "redshift.sql")
TYPES: dict[str, LiteralString] = {
    "int": "bigint", "float": "double precision", "string": "varchar(65535)",
    "text": "varchar(65535)", "datetime": "timestamp", "boolean": "boolean encode runlength",
    "json": "super",
}  # fmt: skip
_ABSTRACT = {**PostgresWarehouse.ABSTRACT, "super": "json"}
PART = 64 << 20  # characters of CSV (before gzip) per file: Redshift reads them all at once


@dataclass(frozen=True)
class Credentials:
    """The keys `COPY` reads the bucket with (`token`: a temporary key's session token)."""

    key_id: str
    secret: str
    token: str = ""


class Bucket(Protocol):
    """Where a load's files go: the destination's S3 bucket, under its prefix."""

    region: str  # "" when not known: Redshift assumes its own

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...

    def url(self, name: str) -> str:
        """`s3://bucket/prefix/name`."""
        ...

    async def put(self, name: str, body: bytes) -> None:
        """Store an object (a WarehouseError, in S3's words, when it cannot)."""
        ...

    async def delete(self, names: Sequence[str]) -> None: ...

    async def credentials(self) -> Credentials: ...


class RedshiftWarehouse(PostgresWarehouse):
    TYPES = TYPES
    ABSTRACT = _ABSTRACT
    QUERIES = (_Q, *PostgresWarehouse.QUERIES)

    def __init__(self, settings: RedshiftSettings, bucket: Bucket) -> None:
        super().__init__(settings)
        self._bucket = bucket

    async def __aenter__(self) -> Self:
        await self._bucket.__aenter__()
        try:
            await super().__aenter__()
        except BaseException:
            await self._bucket.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:  # fmt: skip
        try:
            await super().__aexit__(kind, exc, tb)
        finally:
            await self._bucket.__aexit__(kind, exc, tb)

    def _options(self) -> str:
        return ""  # Redshift takes no session settings at connection

    async def _create(self, table: str, names: dict[str, sql.Composable], columns: Columns,
                      mode: Mode) -> None:  # fmt: skip
        sort = next((name for name in ("received_at", "uuid_ts", "id") if name in columns),
                    sorted(columns)[0])  # fmt: skip
        distribution = (sql.SQL("DISTSTYLE KEY DISTKEY({})").format(sql.Identifier("id"))
                        if "id" in columns else sql.SQL("DISTSTYLE AUTO"))  # fmt: skip
        await self._run("create_table", {**names, "distribution": distribution,
                                         "sort": sql.Identifier(sort)})  # fmt: skip

    async def _copy(self, load: Load, names: dict[str, sql.Composable],
                    rows: Iterable[Sequence[Any]]) -> None:  # fmt: skip
        """The rows as gzipped CSV files in the bucket, a manifest listing them, one `COPY`."""
        folder = f"loads/{load.namespace}/{load.table}/{uuid.uuid4()}"
        stored: list[str] = []
        try:
            entries: list[dict[str, Any]] = []
            parts = loadfiles.csv_files(rows, load.types, PART)
            # Writing and compressing a file is CPU work: a thread's, off the event loop.
            while (part := await asyncio.to_thread(next, parts, None)) is not None:
                name = f"{folder}/{len(entries):05d}.csv.gz"
                await self._bucket.put(name, part)
                stored.append(name)
                entries.append({"url": self._bucket.url(name), "mandatory": True,
                                "meta": {"content_length": len(part)}})  # fmt: skip
            if not entries:
                return
            manifest = f"{folder}/manifest.json"
            await self._bucket.put(manifest, msgspec.json.encode({"entries": entries}))
            stored.append(manifest)
            keys = await self._bucket.credentials()
            credentials = sql.SQL("ACCESS_KEY_ID {} SECRET_ACCESS_KEY {}").format(
                sql.Literal(keys.key_id), sql.Literal(keys.secret)
            )
            if keys.token:
                credentials += sql.SQL(" SESSION_TOKEN {}").format(sql.Literal(keys.token))
            region = self._bucket.region
            where = sql.SQL("REGION {}").format(sql.Literal(region)) if region else sql.SQL("")
            await self._run("copy", {**names, "manifest": sql.Literal(self._bucket.url(manifest)),
                                     "credentials": credentials, "region": where})  # fmt: skip
        finally:
            if stored:
                await self._bucket.delete(stored)

    STAMP = sql.SQL("CAST(%(now)s AS timestamp)")

    def _now(self, moment: str) -> str:
        return moment.replace("T", " ").removesuffix("Z")  # a timestamp's own text

    def _same(self, column: sql.Identifier) -> sql.Composable:
        # No IS NOT DISTINCT FROM in Redshift. The key columns are text, and Redshift loads an
        # empty text as a null (EMPTYASNULL), so '' never stands for a value of its own.
        return sql.SQL("COALESCE(t.{c}, '') = COALESCE(s.{c}, '')").format(c=column)

    def _latest(self, column: sql.Identifier) -> sql.Composable:
        return sql.SQL(
            "FIRST_VALUE({c}) OVER (PARTITION BY {id} ORDER BY CASE WHEN {c} IS NULL THEN 1 "
            "ELSE 0 END, {r} DESC NULLS LAST ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED "
            "FOLLOWING) AS {c}"
        ).format(c=column, id=sql.Identifier("id"), r=sql.Identifier("received_at"))
