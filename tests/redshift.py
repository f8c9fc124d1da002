"""Redshift played by PostgreSQL and moto's S3: no Redshift runs here, so the Redshift loader
is tested against PostgreSQL where the two dialects agree, and the files it loads through go
to a real S3 API (moto, checking keys as S3 does).

`RedshiftDouble` is the real `RedshiftWarehouse` with one change: each statement is first
refused if it uses what PostgreSQL has and Redshift does not (`NOT_REDSHIFT`: IS NOT DISTINCT
FROM, DISTINCT ON, aggregate FILTER, ON COMMIT, ADD COLUMN IF NOT EXISTS, an alias on the table
a DELETE deletes from, pg_temp, PostgreSQL-only types), then goes to PostgreSQL with the clauses
only Redshift has taken out (column encodings, distribution and
sort keys; `super` becomes `jsonb`), and `COPY … MANIFEST` is played — with the keys the
statement carries, the manifest it names is read from S3, then each file it lists (its length
checked against the manifest), gunzipped and copied in as CSV, empty fields as nulls
(Redshift's EMPTYASNULL). Every statement, as Redshift would have got it, is kept in
`statements`.
"""

import gzip
import json
import re
from typing import Any, cast

from psycopg import sql

from engine.destinations.redshift import S3Bucket
from engine.warehouses.redshift import RedshiftWarehouse
from engine.warehouses.settings import RedshiftSettings
from tests.s3server import Keys, S3Server

_REDSHIFT_ONLY = [
    (re.compile(r"\s+encode\s+\w+", re.IGNORECASE), ""),
    (re.compile(r"DISTSTYLE\s+\w+(\s+DISTKEY\([^)]*\))?", re.IGNORECASE), ""),
    (re.compile(r"SORTKEY\([^)]*\)", re.IGNORECASE), ""),
    (re.compile(r'(?<!")\bsuper\b(?!")'), "jsonb"),
]
NOT_REDSHIFT = [
    re.compile(pattern, re.IGNORECASE)
    for pattern in (
        r"IS (NOT )?DISTINCT FROM", r"DISTINCT ON", r"FILTER \(WHERE", r"ON COMMIT",
        r"ADD COLUMN IF NOT EXISTS", r'DELETE FROM "[^"]+"\."[^"]+" \w+ USING', r"pg_temp\.",
        r"\bjsonb\b", r"\btimestamptz\b", r"\barray_agg\b", r"SELECT FROM",
    )
]  # fmt: skip
_COMMENTS = re.compile(r"^--.*\n", re.MULTILINE)
_COPY = re.compile(
    r"^COPY (?P<staging>\S+) \((?P<columns>[^)]*)\) FROM '(?P<manifest>s3://[^']+)' "
    r"ACCESS_KEY_ID '(?P<key>[^']*)' SECRET_ACCESS_KEY '(?P<secret>[^']*)'.*"
    r"MANIFEST CSV GZIP",
    re.DOTALL,
)


class RedshiftDouble(RedshiftWarehouse):
    def __init__(self, settings: RedshiftSettings, s3: S3Server, statements: list[str]) -> None:
        super().__init__(settings, S3Bucket(settings))
        self._s3 = s3
        self.statements = statements

    async def _run(self, query: str, names: Any, params: dict[str, Any] | None = None) -> None:
        text = _COMMENTS.sub("", self._statement(query, names).as_string(self.conn))
        self.statements.append(text)
        for pattern in NOT_REDSHIFT:
            assert not pattern.search(text), f"Redshift would refuse: {text}"
        if query == "copy":
            await self._play_copy(text)
            return
        for pattern, replacement in _REDSHIFT_ONLY:
            text = pattern.sub(replacement, text)
        await self.conn.execute(text, params)

    async def _play_copy(self, text: str) -> None:
        found = _COPY.match(text)
        assert found is not None, f"not a COPY of a manifest: {text}"
        client = self._s3.client(Keys(found["key"], found["secret"]))
        manifest = json.loads(_read(client, found["manifest"]))
        columns = found["columns"]
        statement = (
            f"COPY {found['staging']} ({columns}) FROM STDIN (FORMAT csv, FORCE_NULL ({columns}))"
        )
        for entry in manifest["entries"]:
            body = _read(client, entry["url"])
            assert len(body) == entry["meta"]["content_length"], entry
            copying = sql.SQL(statement)
            async with self.conn.cursor() as cur, cur.copy(copying) as copy:
                await copy.write(gzip.decompress(body))


def _read(client: Any, url: str) -> bytes:
    bucket, key = url.removeprefix("s3://").split("/", 1)
    return cast(bytes, client.get_object(Bucket=bucket, Key=key)["Body"].read())
