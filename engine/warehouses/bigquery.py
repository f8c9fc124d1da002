"""BigQuery as a warehouse, with Google's own client (`google-cloud-bigquery`, an optional
dependency: `pip install 'sluice[bigquery]'`), loaded as RudderStack loads it: a dataset per
source, tables partitioned by the day they are loaded, and each table's rows appended by a load
job reading newline-delimited JSON (gzipped, uploaded with the job: no Cloud Storage bucket).

A table keeps every row loaded into it, as RudderStack's do; beside each, a view
`<table>_view` keeps one row per id, the last loaded — that is what to query. A load is
appended by a job whose id names the load's staged files and the table: a load tried again
(after a crash, or a failure of another table) finds that job done and appends nothing twice.
`users` gets, per user, one new row holding each column's latest value that is not null
(across the rows it has and the new ones); `users_view` shows that row.

Types (RudderStack's): int → INT64, float → FLOAT64, string and text → STRING, datetime →
TIMESTAMP, boolean → BOOL.

The client is synchronous: each call runs in a thread of its own, off the event loop.
"""

import asyncio
import contextlib
import gzip
import hashlib
import itertools
import tempfile
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import IO, Any, Self

import msgspec

from engine.sql import Queries
from engine.warehouses.blocking import Blocking
from engine.warehouses.schema import Change, Columns
from engine.warehouses.settings import BigQuerySettings
from engine.warehouses.warehouse import Load, Mode, WarehouseError

_Q = Queries.beside(__file__, "bigquery.sql")
TYPES = {"int": "INT64", "float": "FLOAT64", "string": "STRING", "text": "STRING",
         "datetime": "TIMESTAMP", "boolean": "BOOL"}  # fmt: skip
_ABSTRACT = {
    "INT64": "int", "INTEGER": "int", "FLOAT64": "float", "FLOAT": "float", "NUMERIC": "float",
    "BIGNUMERIC": "float", "STRING": "string", "TIMESTAMP": "datetime", "DATETIME": "datetime",
    "DATE": "datetime", "BOOL": "boolean", "BOOLEAN": "boolean",
}  # fmt: skip
# The columns a view keeps one row per (RudderStack's); `id` for the others.
_VIEW_KEYS = {
    "rudder_discards": ("row_id", "column_name", "table_name"),
    "rudder_identity_merge_rules": ("merge_property_1_type", "merge_property_1_value",
                                    "merge_property_2_type", "merge_property_2_value"),
}  # fmt: skip
SCOPE = "https://www.googleapis.com/auth/bigquery"
REQUEST_TIMEOUT = 120.0  # seconds for one API request (an upload's piece included)
RETRY_SECONDS = 120.0  # a request failing for a reason that may pass is tried again this long
STEP_TIMEOUT = 1800.0  # seconds a job may take
STAGING = "sluice_staging_"  # a session's staging table's name begins so
STAGING_HOURS = 24  # a staging table left behind (a killed worker) expires after this
ROWS_PER_WRITE = 10_000
MISSING = ("Google's BigQuery client is not installed: pip install 'sluice[bigquery]' "
           "(google-cloud-bigquery) into Sluice's environment")  # fmt: skip
_lines = msgspec.json.Encoder().encode_lines


class BigQueryWarehouse:
    def __init__(self, settings: BigQuerySettings) -> None:
        self._settings = settings
        self._client: Any = None
        self._api: dict[str, Any] = {}
        self._job: dict[str, Any] = {}
        self._blocking = Blocking()
        self._locations: dict[str, str] = {}  # dataset → its location (where its jobs run)
        self._staging = f"{STAGING}{uuid.uuid4().hex[:12]}"  # this session's

    async def __aenter__(self) -> Self:
        self._client = await asyncio.to_thread(self._connect)
        from google.cloud import bigquery

        # Every request: its time, and how long one failing for a passing reason is retried.
        retry = bigquery.DEFAULT_RETRY.with_timeout(RETRY_SECONDS)
        self._api = {"retry": retry, "timeout": REQUEST_TIMEOUT}
        self._job = {"retry": retry, "timeout": STEP_TIMEOUT}  # waiting for a job
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:  # fmt: skip
        if self._client is not None:
            await asyncio.to_thread(self._client.close)

    def _connect(self) -> Any:
        try:
            from google.api_core.client_options import ClientOptions
            from google.cloud import bigquery
            from google.oauth2 import service_account
        except ImportError:
            raise WarehouseError(MISSING) from None
        s = self._settings
        try:
            credentials = service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
                s.service_account(), scopes=[SCOPE]
            )
        except (ValueError, TypeError) as exc:  # (TypeError: a key with a passphrase)
            raise WarehouseError(f"credentials: the service account's key cannot be read "
                                 f"({type(exc).__name__})") from None  # fmt: skip
        options = ClientOptions(api_endpoint=s.endpoint) if s.endpoint else None
        return bigquery.Client(project=s.project, credentials=credentials,
                               location=s.location or None, client_options=options)  # fmt: skip

    async def tables(self, namespace: str) -> dict[str, Columns]:
        return await self._blocking.run(self._tables, namespace)

    def _tables(self, namespace: str) -> dict[str, Columns]:
        """The dataset's tables; and a view a table lacks is made (a crash cut its making
        short, or `skipViews` was turned off)."""
        from google.api_core.exceptions import NotFound

        found: dict[str, Columns] = {}
        views: set[str] = set()
        with _errors(f"reading the schema of dataset {namespace}"):
            try:
                location = self._location(namespace)
            except NotFound:
                return found  # no dataset yet
            query = _Q.filled("tables", {"dataset": self._path(namespace)})
            for table, kind, column, data_type in self._query(query, location):
                if kind != "BASE TABLE":
                    views.add(table)
                else:
                    found.setdefault(table, {})[column] = _ABSTRACT.get(str(data_type).upper(),
                                                                        "string")  # fmt: skip
            for table, columns in found.items():
                missing = f"{table}_view" not in views and f"{table}_view" not in found
                if missing and not table.startswith(STAGING):  # (one a crash left, expiring)
                    self._make_view(namespace, table, columns, location)
        return found

    async def create_namespace(self, namespace: str) -> None:
        await self._blocking.run(self._create_namespace, namespace)

    def _create_namespace(self, namespace: str) -> None:
        from google.cloud import bigquery

        dataset = bigquery.Dataset(self._id(namespace))
        dataset.location = self._settings.location or "US"
        with _errors(f"creating dataset {namespace}"):
            self._client.create_dataset(dataset, exists_ok=True, **self._api)

    async def prepare(self, namespace: str, table: str, change: Change, mode: Mode) -> Columns:
        await self._blocking.run(self._prepare, namespace, table, change)
        return change.columns

    def _prepare(self, namespace: str, table: str, change: Change) -> None:
        from google.cloud import bigquery

        reference = self._id(namespace, table)
        with _errors(f"preparing {namespace}.{table}"):
            if change.new_table:
                made = bigquery.Table(reference, schema=_fields(change.columns))
                made.time_partitioning = bigquery.TimePartitioning(
                    type_=bigquery.TimePartitioningType.DAY
                )
                self._client.create_table(made, exists_ok=True, **self._api)
            elif change.added:
                found = self._client.get_table(reference, **self._api)
                have = {field.name.lower() for field in found.schema}
                added = {name: kind for name, kind in change.added.items()
                         if name.lower() not in have}  # fmt: skip
                found.schema = [*found.schema, *_fields(added)]
                self._client.update_table(found, ["schema"], **self._api)
            else:
                return
            self._make_view(namespace, table, change.columns, self._location(namespace))

    def _make_view(self, namespace: str, table: str, columns: Columns, location: str) -> None:
        """`<table>_view`: one row per id (per key), the last loaded."""
        key = _VIEW_KEYS.get(table, ("id",))
        if self._settings.skipViews or not all(name in columns for name in key):
            return
        loaded_at = " ORDER BY `loaded_at` DESC" if "loaded_at" in columns else ""
        view = _Q.filled("make_view", {
            "view": self._path(namespace, f"{table}_view"), "table": self._path(namespace, table),
            "key": ", ".join(_name(name) for name in key), "order": loaded_at,
        })  # fmt: skip
        self._query(view, location)

    async def load(self, load: Load, rows: Iterable[Sequence[Any]]) -> None:
        await self._blocking.run(self._load, load, rows)

    def _load(self, load: Load, rows: Iterable[Sequence[Any]]) -> None:
        doing = f"loading {load.namespace}.{load.table}"
        users = load.mode == "users"
        with tempfile.TemporaryFile(prefix="sluice-bigquery-") as file, _errors(doing):
            if not _write(file, load, rows, stamped=not users):
                return
            # Jobs named after the load's files and the table: tried again, the load finds them.
            table = hashlib.sha256(f"{load.namespace}\n{load.table}".encode()).hexdigest()[:16]
            once = f"sluice_{load.batch or uuid.uuid4().hex}_{table}"
            location = self._location(load.namespace)
            if not users:
                self._once(doing, once, location, lambda job: self._upload(
                    file, load.namespace, load.table, job, append=True))  # fmt: skip
                return
            staging = self._id(load.namespace, self._staging)
            self._make_staging(staging, load)
            try:
                self._upload(file, load.namespace, self._staging,
                             f"{self._staging}_{uuid.uuid4().hex}", append=False
                             ).result(**self._job)  # fmt: skip
                merge = self._merge_users(load)
                self._once(doing, once, location, lambda job: self._client.query(
                    merge, job_id=job, location=location, **self._api, job_retry=None))  # fmt: skip
            finally:
                self._client.delete_table(staging, not_found_ok=True, **self._api)

    def _once(self, doing: str, name: str, location: str, start: Callable[[str], Any]) -> None:
        """The job `name` run once: an earlier try's job, done or still running, counts; one
        that failed (and so wrote nothing) is run anew under the next name."""
        from google.api_core.exceptions import Conflict, GoogleAPICallError, NotFound

        for attempt in itertools.count():
            self._blocking.step(doing)
            job_id = f"{name}_{attempt}"
            try:
                job = self._client.get_job(job_id, location=location, **self._api)
            except NotFound:
                try:
                    job = start(job_id)
                except Conflict:  # a request of this try that failed made the job after all
                    job = self._client.get_job(job_id, location=location, **self._api)
                else:
                    job.result(**self._job)  # this try's job: its failure is the load's
                    return
            try:
                job.result(**self._job)
                return
            except GoogleAPICallError:
                job.reload(**self._api)
                if job.state == "DONE" and job.error_result:
                    continue
                raise

    def _upload(self, file: IO[bytes], namespace: str, table: str, job_id: str, *,
                append: bool) -> Any:  # fmt: skip
        from google.cloud import bigquery

        config = bigquery.LoadJobConfig(
            source_format=bigquery.SourceFormat.NEWLINE_DELIMITED_JSON,
            write_disposition=bigquery.WriteDisposition.WRITE_APPEND if append
            else bigquery.WriteDisposition.WRITE_TRUNCATE,
            ignore_unknown_values=False, max_bad_records=0,
        )  # fmt: skip
        file.seek(0)
        return self._client.load_table_from_file(
            file, self._id(namespace, table), job_id=job_id, job_config=config, rewind=True,
            location=self._location(namespace), timeout=REQUEST_TIMEOUT,
        )  # fmt: skip

    def _make_staging(self, staging: str, load: Load) -> None:
        from google.cloud import bigquery

        made = bigquery.Table(staging, schema=_fields(dict(zip(load.columns, load.types,
                                                               strict=True))))  # fmt: skip
        made.expires = datetime.now(UTC) + timedelta(hours=STAGING_HOURS)
        self._client.delete_table(staging, not_found_ok=True, **self._api)
        self._client.create_table(made, **self._api)

    def _merge_users(self, load: Load) -> str:
        columns = [_name(name) for name in load.columns]
        identifier, received_at = _name("id"), _name("received_at")
        now = f"TIMESTAMP {_literal(load.now)}"
        latest = ", ".join(
            f"FIRST_VALUE({c} IGNORE NULLS) OVER (PARTITION BY {identifier} ORDER BY "
            f"{received_at} DESC NULLS LAST ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED "
            f"FOLLOWING) AS {c}"
            for c in columns if c != identifier
        )  # fmt: skip
        return _Q.filled("merge_users", {
            "table": self._path(load.namespace, load.table),
            "staging": self._path(load.namespace, self._staging),
            "columns": ", ".join(columns), "id": identifier, "received_at": received_at,
            "latest": latest, "stamps": "".join(f", {now}" for _ in load.stamps),
            "stamped": ", ".join(columns + [_name(name) for name in load.stamps]),
        })  # fmt: skip

    def _query(self, query: str, location: str) -> Any:
        """A query's rows. (A failed query fails the load, which is tried again later.)"""
        return self._client.query_and_wait(
            query, location=location, api_timeout=REQUEST_TIMEOUT, wait_timeout=STEP_TIMEOUT,
            retry=self._api["retry"], job_retry=None,
        )  # fmt: skip

    def _location(self, namespace: str) -> str:
        """Where the dataset is (its jobs run there, and are found there)."""
        if namespace not in self._locations:
            dataset = self._client.get_dataset(self._id(namespace), **self._api)
            self._locations[namespace] = dataset.location
        return self._locations[namespace]

    def _id(self, namespace: str, table: str | None = None) -> str:
        """A dataset's or table's id, as the client takes it: `project.dataset[.table]`."""
        return ".".join([self._settings.project, namespace] + ([table] if table else []))

    def _path(self, namespace: str, table: str | None = None) -> str:
        parts = [self._settings.project, namespace] + ([table] if table is not None else [])
        return ".".join(_name(part) for part in parts)


def _write(file: IO[bytes], load: Load, rows: Iterable[Sequence[Any]], *, stamped: bool) -> int:
    """The rows as gzipped newline-delimited JSON (a null left out, each stamp the load's
    time when `stamped`); how many."""
    stamps = dict.fromkeys(load.stamps, load.now) if stamped else {}
    count = 0
    with gzip.GzipFile(fileobj=file, mode="wb", compresslevel=1) as out:
        for batch in _batches(rows, load.columns, stamps):
            out.write(_lines(batch))
            count += len(batch)
    return count


def _batches(rows: Iterable[Sequence[Any]], columns: list[str],
             stamps: dict[str, str]) -> Iterator[list[dict[str, Any]]]:  # fmt: skip
    batch: list[dict[str, Any]] = []
    for row in rows:
        record = {name: value for name, value in zip(columns, row, strict=True)
                  if value is not None}  # fmt: skip
        record.update(stamps)
        batch.append(record)
        if len(batch) == ROWS_PER_WRITE:
            yield batch
            batch = []
    if batch:
        yield batch


def _fields(columns: Columns) -> list[Any]:
    from google.cloud import bigquery

    return [bigquery.SchemaField(name, TYPES.get(kind, "STRING"), mode="NULLABLE")
            for name, kind in sorted(columns.items())]  # fmt: skip


def _name(name: str) -> str:
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def _literal(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


@contextlib.contextmanager
def _errors(doing: str) -> Iterator[None]:
    """Google's errors (the API's, signing in, the network, a job's time running out) as a
    WarehouseError saying what Sluice was doing, in Google's words."""
    import requests
    from google.api_core.exceptions import GoogleAPICallError, GoogleAPIError
    from google.auth.exceptions import GoogleAuthError

    try:
        yield
    except GoogleAPICallError as exc:
        raise WarehouseError(f"{doing}: {_api_message(exc)}") from None
    except GoogleAuthError as exc:
        said = exc.args[0] if exc.args else type(exc).__name__
        raise WarehouseError(f"{doing}: cannot sign in with the service account: {said}") from None
    except (GoogleAPIError, requests.RequestException, TimeoutError) as exc:
        raise WarehouseError(f"{doing}: {exc or type(exc).__name__}") from None


def _api_message(exc: Any) -> str:
    """The API's message, and the job's errors when they say more (which rows, which field)."""
    said = [str(exc.message).strip()]
    for error in (exc.errors or [])[:3]:
        text = str(error.get("message", "")).strip() if isinstance(error, dict) else ""
        if text and not any(text in earlier or earlier in text for earlier in said):
            said.append(text)
    return "; ".join(said) + (f" (HTTP {exc.code})" if exc.code else "")
