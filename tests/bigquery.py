"""BigQuery played locally for Google's own client (`google-cloud-bigquery`, pointed at it by
its `api_endpoint`): the REST calls a warehouse load makes, answered as BigQuery answers them,
with the data in DuckDB and BigQuery's SQL read by sqlglot.

What it plays: the sign-in (a service account's signed JWT exchanged for a token at the key's
`token_uri`, the signature checked against the key the double made; every other call needs
the token), datasets (get, insert), tables (get, insert, a schema patch that may only add
columns, delete), load jobs uploaded with the job (resumable uploads; newline-delimited JSON,
gzipped or not; a field the table does not have, or a value its column cannot hold, fails the
whole job as BigQuery's does), query jobs (insert, get, getQueryResults, and jobs.query) and
`<dataset>.INFORMATION_SCHEMA.COLUMNS` / `TABLES`; a job id used twice is refused (409).

What it does not: results are given back as text (the tests read the data from DuckDB,
`BigQuery.query`), partitions are not kept, and no cost or quota is counted.

One server serves the test session, in a thread of the test process on a free port of
127.0.0.1 (reached by the worker processes too); each test gets a project of its own.
"""

import gzip
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import duckdb
import jwt
import pytest
import sqlglot
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

LOCATION = "US"  # where a dataset is made when its request names no location
# A field may not start with these (BigQuery keeps them for its pseudo-columns).
_RESERVED = ("_PARTITION", "_TABLE_", "_FILE_", "_ROW_TIMESTAMP", "__ROOT__", "_COLIDENTIFIER")
AUDIENCE = "https://oauth2.googleapis.com/token"  # what a signed JWT is for (whatever token_uri)
# BigQuery's types (both their names) as DuckDB keeps them, and back.
_DUCK = {"INT64": "BIGINT", "INTEGER": "BIGINT", "FLOAT64": "DOUBLE", "FLOAT": "DOUBLE",
         "STRING": "VARCHAR", "TIMESTAMP": "TIMESTAMPTZ", "BOOL": "BOOLEAN",
         "BOOLEAN": "BOOLEAN"}  # fmt: skip
_BIGQUERY = {"BIGINT": "INTEGER", "DOUBLE": "FLOAT", "VARCHAR": "STRING",
             "TIMESTAMP WITH TIME ZONE": "TIMESTAMP", "BOOLEAN": "BOOLEAN"}  # fmt: skip
_INFORMATION_SCHEMA = """
CREATE TABLE "{project}"."{dataset}"."INFORMATION_SCHEMA.PARTITIONED" (table_name VARCHAR);
CREATE VIEW "{project}"."{dataset}"."INFORMATION_SCHEMA.COLUMNS" AS
SELECT table_name, column_name, ordinal_position,
       CASE data_type WHEN 'BIGINT' THEN 'INT64' WHEN 'DOUBLE' THEN 'FLOAT64'
            WHEN 'VARCHAR' THEN 'STRING' WHEN 'TIMESTAMP WITH TIME ZONE' THEN 'TIMESTAMP'
            WHEN 'BOOLEAN' THEN 'BOOL' ELSE data_type END AS data_type
FROM information_schema.columns
WHERE table_catalog = '{project}' AND table_schema = '{dataset}'
  AND table_name NOT LIKE 'INFORMATION_SCHEMA.%'
UNION ALL  -- an ingestion-time partitioned table's pseudo-column, as BigQuery lists it
SELECT table_name, '_PARTITIONTIME', 0, 'TIMESTAMP'
FROM "{project}"."{dataset}"."INFORMATION_SCHEMA.PARTITIONED";
CREATE VIEW "{project}"."{dataset}"."INFORMATION_SCHEMA.TABLES" AS
SELECT table_name, CASE table_type WHEN 'BASE TABLE' THEN 'BASE TABLE' ELSE 'VIEW' END AS table_type
FROM information_schema.tables
WHERE table_catalog = '{project}' AND table_schema = '{dataset}'
  AND table_name NOT LIKE 'INFORMATION_SCHEMA.%';
"""


_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:?\d\d| UTC)?")


class Refused(Exception):
    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status, self.reason, self.message = status, reason, message


@dataclass
class Double:
    """The server's state: DuckDB (a catalog per project), the key it trusts, its jobs."""

    url: str = ""
    key: rsa.RSAPrivateKey = field(default_factory=lambda: rsa.generate_private_key(65537, 2048))
    db: duckdb.DuckDBPyConnection = field(default_factory=lambda: duckdb.connect(":memory:"))
    lock: threading.Lock = field(default_factory=threading.Lock)
    tokens: set[str] = field(default_factory=set)
    jobs: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    uploads: dict[str, dict[str, Any]] = field(default_factory=dict)
    results: dict[tuple[str, str], tuple[list[str], list[tuple[Any, ...]]]] = field(
        default_factory=dict
    )
    failing: set[str] = field(default_factory=set)  # tables whose next load job fails
    locations: dict[tuple[str, str], str] = field(default_factory=dict)  # each dataset's

    def __post_init__(self) -> None:
        self.db.execute("SET TimeZone = 'UTC'")

    def service_account(self, email: str = "loader@sluice-test.iam.gserviceaccount.com") -> str:
        pem = self.key.private_bytes(serialization.Encoding.PEM,
                                     serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()).decode()  # fmt: skip
        return json.dumps({"type": "service_account", "project_id": "sluice-test",
                           "private_key_id": "1", "private_key": pem, "client_email": email,
                           "client_id": "1", "token_uri": f"{self.url}/token"})  # fmt: skip

    # --- projects, datasets, tables ------------------------------------------------------

    def project(self, project: str) -> None:
        with self.lock:
            found = self.db.execute("SELECT 1 FROM duckdb_databases() WHERE database_name = ?",
                                    [project]).fetchone()  # fmt: skip
            if not found:
                self.db.execute(f"ATTACH ':memory:' AS {_q(project)}")

    def _dataset_exists(self, project: str, dataset: str) -> bool:
        return bool(self.db.execute(
            "SELECT 1 FROM duckdb_schemas() WHERE database_name = ? AND schema_name = ?",
            [project, dataset]).fetchone())  # fmt: skip

    def _dataset(self, project: str, dataset: str) -> dict[str, Any]:
        if not self._dataset_exists(project, dataset):
            raise Refused(404, "notFound", f"Not found: Dataset {project}:{dataset}")
        location = self.locations[(project, dataset)]
        return {"kind": "bigquery#dataset", "id": f"{project}:{dataset}", "location": location,
                "datasetReference": {"projectId": project, "datasetId": dataset}}  # fmt: skip

    def _create_dataset(self, project: str, body: dict[str, Any]) -> dict[str, Any]:
        dataset = body["datasetReference"]["datasetId"]
        if self._dataset_exists(project, dataset):
            raise Refused(409, "duplicate", f"Already Exists: Dataset {project}:{dataset}")
        self.db.execute(f"CREATE SCHEMA {_q(project)}.{_q(dataset)}")
        self.locations[(project, dataset)] = body.get("location") or LOCATION
        self.db.execute(_INFORMATION_SCHEMA.format(project=project, dataset=dataset))
        return self._dataset(project, dataset)

    def _columns(self, project: str, dataset: str, table: str) -> list[tuple[str, str]]:
        return [(name, kind) for name, kind in self.db.execute(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_catalog "
            "= ? AND table_schema = ? AND table_name = ? ORDER BY ordinal_position",
            [project, dataset, table]).fetchall()]  # fmt: skip

    def _kind(self, project: str, dataset: str, table: str) -> str | None:
        found = self.db.execute(
            "SELECT table_type FROM information_schema.tables WHERE table_catalog = ? AND "
            "table_schema = ? AND table_name = ?", [project, dataset, table]
        ).fetchone()  # fmt: skip
        return None if found is None else str(found[0])

    def _table(self, project: str, dataset: str, table: str) -> dict[str, Any]:
        found = self._kind(project, dataset, table)
        if found is None:
            raise Refused(404, "notFound", f"Not found: Table {project}:{dataset}.{table}")
        fields = [{"name": name, "type": _BIGQUERY.get(kind, kind), "mode": "NULLABLE"}
                  for name, kind in self._columns(project, dataset, table)]  # fmt: skip
        return {"kind": "bigquery#table", "id": f"{project}:{dataset}.{table}",
                "etag": uuid.uuid4().hex, "schema": {"fields": fields},
                "type": "TABLE" if found == "BASE TABLE" else "VIEW",
                "tableReference": {"projectId": project, "datasetId": dataset,
                                   "tableId": table}}  # fmt: skip

    def _create_table(self, project: str, dataset: str, body: dict[str, Any]) -> dict[str, Any]:
        self._dataset(project, dataset)
        table = body["tableReference"]["tableId"]
        if self._kind(project, dataset, table) is not None:
            raise Refused(409, "duplicate", f"Already Exists: Table {project}:{dataset}.{table}")
        fields = body.get("schema", {}).get("fields", [])
        if not fields:
            raise Refused(400, "invalid", "Schema has no fields")
        columns = ", ".join(f"{_q(_field(f['name']))} {_type(f['type'])}" for f in fields)
        self.db.execute(f"CREATE TABLE {_q(project)}.{_q(dataset)}.{_q(table)} ({columns})")
        partitioning = body.get("timePartitioning")
        if partitioning and not partitioning.get("field"):
            self.db.execute(f'INSERT INTO {_q(project)}.{_q(dataset)}."INFORMATION_SCHEMA.'
                            'PARTITIONED" VALUES (?)', [table])  # fmt: skip
        return self._table(project, dataset, table)

    def _patch_table(self, project: str, dataset: str, table: str,
                     body: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
        have = dict(self._columns(project, dataset, table))
        if not have:
            raise Refused(404, "notFound", f"Not found: Table {project}:{dataset}.{table}")
        given = body.get("schema", {}).get("fields", [])
        names = [f["name"] for f in given]
        for name in have:
            if name not in names:
                raise Refused(400, "invalid", f"Provided Schema does not match Table "
                                              f"{project}:{dataset}.{table}. Cannot add fields "
                                              f"(field: {name})")  # fmt: skip
        for f in given:
            if f["name"] in have:
                if _type(f["type"]) != have[f["name"]].replace("TIMESTAMP WITH TIME ZONE",
                                                               "TIMESTAMPTZ"):  # fmt: skip
                    raise Refused(400, "invalid", f"Provided Schema does not match Table "
                                  f"{project}:{dataset}.{table}. Field {f['name']} has changed "
                                  f"type")  # fmt: skip
                continue
            if f["name"].lower() in {name.lower() for name in have}:
                raise Refused(400, "duplicate", f"Duplicate column name {f['name']}")
            self.db.execute(f"ALTER TABLE {_q(project)}.{_q(dataset)}.{_q(table)} ADD COLUMN "
                            f"{_q(_field(f['name']))} {_type(f['type'])}")  # fmt: skip
        return self._table(project, dataset, table)

    def _delete_table(self, project: str, dataset: str, table: str) -> None:
        kind = self._table(project, dataset, table)["type"]
        self.db.execute(f"DROP {'TABLE' if kind == 'TABLE' else 'VIEW'} "
                        f"{_q(project)}.{_q(dataset)}.{_q(table)}")  # fmt: skip

    # --- jobs ------------------------------------------------------------------------------

    def _new_job(self, project: str, body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        reference = body.get("jobReference") or {}
        job_id = reference.get("jobId") or uuid.uuid4().hex
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,1024}", job_id):
            raise Refused(400, "invalid", f"Invalid job ID {job_id!r}")
        if (project, job_id) in self.jobs:
            raise Refused(409, "duplicate", f"Already Exists: Job {project}:{job_id}")
        location = reference.get("location") or LOCATION
        job = {"kind": "bigquery#job", "id": f"{project}:{location}.{job_id}",
               "jobReference": {"projectId": project, "jobId": job_id, "location": location},
               "configuration": body.get("configuration", {}),
               "status": {"state": "RUNNING"},
               "statistics": {"creationTime": _now_ms()}}  # fmt: skip
        self.jobs[(project, job_id)] = job
        return job_id, job

    def _finish(self, job: dict[str, Any], failure: Refused | None) -> dict[str, Any]:
        job["status"] = {"state": "DONE"}
        if failure is not None:
            error = {"reason": failure.reason, "message": failure.message}
            job["status"].update(errorResult=error, errors=[error])
        job["statistics"]["endTime"] = _now_ms()
        return job

    def _load(self, project: str, config: dict[str, Any], data: bytes, location: str) -> int:
        target = config["destinationTable"]
        dataset, table = target["datasetId"], target["tableId"]
        if config.get("sourceFormat") != "NEWLINE_DELIMITED_JSON":
            raise Refused(400, "invalid", "only NEWLINE_DELIMITED_JSON is played here")
        self._in(project, dataset, location)
        columns = dict(self._columns(project, dataset, table))
        if not columns:
            raise Refused(404, "notFound", f"Not found: Table {project}:{dataset}.{table}")
        lower = {name.lower(): name for name in columns}
        if table in self.failing:
            self.failing.discard(table)
            raise Refused(500, "backendError", "Error encountered during execution. Retrying "
                          "may solve the problem.")  # fmt: skip
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        rows: list[dict[str, Any]] = []
        for number, line in enumerate(data.splitlines()):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError:
                raise Refused(400, "invalid", "Error while reading data, error message: JSON "
                              f"parsing error in row {number}") from None  # fmt: skip
            row = {}
            for name, value in record.items():
                column = lower.get(name.lower())
                if column is None:
                    raise Refused(
                        400,
                        "invalid",
                        "Error while reading data, error message: "
                        f"JSON parsing error in row {number}: No such field: {name}.",
                    )
                row[column] = _checked(value, columns[column], name, number)
            rows.append(row)
        name = f"{_q(project)}.{_q(dataset)}.{_q(table)}"
        self.db.execute("BEGIN")
        try:
            if config.get("writeDisposition") == "WRITE_TRUNCATE":
                self.db.execute(f"DELETE FROM {name}")
            for row in rows:
                if row:
                    self.db.execute(f"INSERT INTO {name} ({', '.join(_q(c) for c in row)}) "
                                    f"VALUES ({', '.join('?' for _ in row)})",
                                    list(row.values()))  # fmt: skip
            self.db.execute("COMMIT")
        except Exception:
            self.db.execute("ROLLBACK")
            raise
        return len(rows)

    def _run_query(self, project: str, sql: str,
                   location: str | None) -> tuple[list[str], list[tuple[Any, ...]]]:  # fmt: skip
        """A query run in `location` (None: where its datasets are, as BigQuery finds it)."""
        try:
            parsed = sqlglot.parse(sql, read="bigquery")
        except sqlglot.errors.ParseError as exc:
            raise Refused(400, "invalidQuery", f"Syntax error: {exc}") from None
        for statement in parsed:
            for table in statement.find_all(sqlglot.exp.Table) if statement else ():
                self._in(project, table.db, location)
        statements = [statement.sql("duckdb") for statement in parsed if statement]
        self.db.execute(f"USE {_q(project)}")
        try:
            cursor = self.db.execute(";\n".join(statements))
            names = [d[0] for d in cursor.description or []]
            rows = cursor.fetchall() if cursor.description else []
        except duckdb.CatalogException as exc:
            raise Refused(404, "notFound", f"Not found: {exc}") from None
        except duckdb.Error as exc:
            raise Refused(400, "invalidQuery", str(exc)) from None
        return names, rows

    def _in(self, project: str, dataset: str, location: str | None) -> None:
        """A job in `location` reaches only datasets there."""
        where = self.locations.get((project, dataset))
        if location and where and where.upper() != location.upper():
            raise Refused(404, "notFound", f"Not found: Dataset {project}:{dataset} was not "
                          f"found in location {location}")  # fmt: skip

    # --- the API ---------------------------------------------------------------------------

    def token(self, form: dict[str, list[str]]) -> dict[str, Any]:
        assertion = form.get("assertion", [""])[0]
        try:
            claims = jwt.decode(assertion, self.key.public_key(), algorithms=["RS256"],
                                audience=AUDIENCE)  # fmt: skip
        except jwt.PyJWTError:
            raise Refused(400, "invalid_grant", "Invalid JWT Signature.") from None
        if "bigquery" not in claims.get("scope", ""):
            raise Refused(400, "invalid_scope", "Invalid OAuth scope.")
        token = f"ya29.{uuid.uuid4().hex}"
        self.tokens.add(token)
        return {"access_token": token, "token_type": "Bearer", "expires_in": 3600}

    def call(self, method: str, path: str, query: dict[str, list[str]], body: bytes,
             headers: Any) -> tuple[int, dict[str, str], Any]:  # fmt: skip
        """One API request: (status, headers, JSON answer)."""
        if headers.get("Authorization", "").removeprefix("Bearer ") not in self.tokens:
            raise Refused(401, "unauthorized", "Request is missing required authentication "
                          "credential. Expected OAuth 2 access token.")  # fmt: skip
        upload = re.fullmatch(r"/upload/bigquery/v2/projects/([^/]+)/jobs", path)
        if upload:
            return self._upload(upload[1], method, query, body, headers)
        parts = path.removeprefix("/bigquery/v2/projects/").split("/")
        project, rest = parts[0], parts[1:]
        document = json.loads(body) if body else {}
        match method, rest:
            case "GET", ["datasets", dataset]:
                return 200, {}, self._dataset(project, dataset)
            case "POST", ["datasets"]:
                return 200, {}, self._create_dataset(project, document)
            case "POST", ["datasets", dataset, "tables"]:
                return 200, {}, self._create_table(project, dataset, document)
            case "GET", ["datasets", dataset, "tables", table]:
                return 200, {}, self._table(project, dataset, table)
            case "PATCH" | "PUT", ["datasets", dataset, "tables", table]:
                return 200, {}, self._patch_table(project, dataset, table, document)
            case "DELETE", ["datasets", dataset, "tables", table]:
                self._delete_table(project, dataset, table)
                return 204, {}, None
            case "GET", ["jobs", job_id]:
                if (project, job_id) not in self.jobs:
                    raise Refused(404, "notFound", f"Not found: Job {project}:{job_id}")
                return 200, {}, self.jobs[(project, job_id)]
            case "POST", ["jobs"]:
                return 200, {}, self._query_job(project, document)
            case "GET", ["queries", job_id]:
                return 200, {}, self._results(project, job_id)
            case "POST", ["queries"]:
                names, rows = self._run_query(project, document["query"],
                                              document.get("location"))  # fmt: skip
                job_id, job = self._new_job(project, {})
                self._finish(job, None)
                self.results[(project, job_id)] = (names, rows)
                return 200, {}, self._results(project, job_id)
        raise Refused(404, "notFound", f"{method} {path} is not played here")

    def _query_job(self, project: str, document: dict[str, Any]) -> dict[str, Any]:
        job_id, job = self._new_job(project, document)
        failure = None
        try:
            self.results[(project, job_id)] = self._run_query(
                project,
                document["configuration"]["query"]["query"],
                document.get("jobReference", {}).get("location"),
            )
        except Refused as exc:
            failure = exc
        return self._finish(job, failure)

    def _results(self, project: str, job_id: str) -> dict[str, Any]:
        job = self.jobs.get((project, job_id))
        if job is None:
            raise Refused(404, "notFound", f"Not found: Job {project}:{job_id}")
        if "errorResult" in job["status"]:
            error = job["status"]["errorResult"]
            raise Refused(400, error["reason"], error["message"])
        names, rows = self.results.get((project, job_id), ([], []))
        return {"kind": "bigquery#getQueryResultsResponse", "jobComplete": True,
                "jobReference": job["jobReference"], "totalRows": str(len(rows)),
                "schema": {"fields": [{"name": n, "type": "STRING", "mode": "NULLABLE"}
                                      for n in names]},
                "rows": [{"f": [{"v": None if v is None else str(v)} for v in row]}
                         for row in rows]}  # fmt: skip

    def _upload(self, project: str, method: str, query: dict[str, list[str]], body: bytes,
                headers: Any) -> tuple[int, dict[str, str], Any]:  # fmt: skip
        if method == "POST":  # a resumable upload begins: the job's configuration
            if query.get("uploadType") != ["resumable"]:
                raise Refused(400, "invalid", "only resumable uploads are played here")
            document = json.loads(body)
            job_id = (document.get("jobReference") or {}).get("jobId", "")
            if (project, job_id) in self.jobs:
                raise Refused(409, "duplicate", f"Already Exists: Job {project}:{job_id}")
            upload_id = uuid.uuid4().hex
            self.uploads[upload_id] = {"job": document, "data": b""}
            location = (f"{self.url}/upload/bigquery/v2/projects/{project}/jobs"
                        f"?uploadType=resumable&upload_id={upload_id}")  # fmt: skip
            return 200, {"Location": location}, {}
        upload = self.uploads.get(query.get("upload_id", [""])[0])
        if upload is None:
            raise Refused(404, "notFound", "no such upload")
        upload["data"] += body
        total = str(headers.get("Content-Range", "")).rsplit("/", 1)[-1]
        if not total.isdigit() or int(total) != len(upload["data"]):
            return 308, {"Range": f"bytes=0-{len(upload['data']) - 1}"}, None
        job_id, job = self._new_job(project, upload["job"])
        failure: Refused | None = None
        try:
            rows = self._load(project, job["configuration"]["load"], upload["data"],
                              job["jobReference"]["location"])  # fmt: skip
            job["statistics"]["load"] = {"outputRows": str(rows)}
        except Refused as exc:
            failure = exc
        return 200, {}, self._finish(job, failure)

    def query(self, project: str, sql: str) -> list[tuple[Any, ...]]:
        """DuckDB's answer to `sql` (DuckDB's SQL, tables as `"dataset"."table"`)."""
        with self.lock:
            self.db.execute(f"USE {_q(project)}")
            return self.db.execute(sql).fetchall()


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _field(name: str) -> str:
    if name.upper().startswith(_RESERVED):
        raise Refused(
            400,
            "invalid",
            f'Invalid field name "{name}". Field names are not '
            f"allowed to start with the (case-insensitive) prefixes {', '.join(_RESERVED)}",
        )
    return name


def _type(kind: str) -> str:
    if kind.upper() not in _DUCK:
        raise Refused(400, "invalid", f"type {kind} is not played here")
    return _DUCK[kind.upper()]


def _checked(value: Any, kind: str, name: str, number: int) -> Any:
    """A JSON value as BigQuery's loader reads it into a column of `kind`, or the job fails."""
    ok: Callable[[Any], Any] = {
        "BIGINT": lambda v: (
            (isinstance(v, int) and not isinstance(v, bool) and -(2**63) <= v < 2**63)
            or (isinstance(v, str) and re.fullmatch(r"-?\d+", v))
        ),
        "DOUBLE": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        "VARCHAR": lambda v: isinstance(v, str | int | float | bool),
        "BOOLEAN": lambda v: isinstance(v, bool) or v in ("true", "false"),
        "TIMESTAMP WITH TIME ZONE": lambda v: isinstance(v, str) and bool(_TIMESTAMP.fullmatch(v)),
    }[kind]
    if value is None:
        return None
    if not ok(value):
        raise Refused(400, "invalid", f"Error while reading data, error message: JSON parsing "
                      f"error in row {number}: Could not convert value to {kind}. Field: "
                      f"{name}; Value: {value}")  # fmt: skip
    if kind == "VARCHAR" and not isinstance(value, str):
        return json.dumps(value)
    return value


def _now_ms() -> str:
    return str(int(time.time() * 1000))


class _Handler(BaseHTTPRequestHandler):
    double: Double

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _answer(self) -> None:
        where = urlsplit(self.path)
        query = parse_qs(where.query)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers: dict[str, str] = {}
        try:
            with self.double.lock:
                if where.path == "/token":
                    status, headers, answer = 200, {}, self.double.token(parse_qs(body.decode()))
                else:
                    status, headers, answer = self.double.call(self.command, where.path, query,
                                                               body, self.headers)  # fmt: skip
        except Refused as exc:
            status, headers = exc.status, {}
            if where.path == "/token":
                answer = {"error": exc.reason, "error_description": exc.message}
            else:
                error = {"reason": exc.reason, "message": exc.message}
                answer = {"error": {"code": exc.status, "message": exc.message,
                                    "errors": [error]}}  # fmt: skip
        data = b"" if answer is None else json.dumps(answer).encode()
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer


@dataclass(frozen=True)
class BigQuery:
    """A project of its own on the session's double."""

    double: Double
    project: str

    def settings(self, **more: Any) -> dict[str, Any]:
        """A BigQuery destination's settings for this project."""
        return {"project": self.project, "credentials": self.double.service_account(),
                "endpoint": self.double.url, **more}  # fmt: skip

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        return self.double.query(self.project, sql)


@pytest.fixture(scope="session")
def bigquery_double() -> Iterator[Double]:
    double = Double()
    handler = type("Handler", (_Handler,), {"double": double})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    double.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield double
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def bigquery_project(bigquery_double: Double) -> BigQuery:
    project = f"sluice-test-{uuid.uuid4().hex[:10]}"
    bigquery_double.project(project)
    return BigQuery(bigquery_double, project)
