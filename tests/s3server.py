"""A real S3 API on loopback for tests: moto in server mode, checking credentials as S3 does.

`S3Server` runs moto's S3 (and IAM, to issue keys) in a thread of the test process on a free
port of 127.0.0.1. Once started it authenticates every request like AWS: requests must be
signed (SigV4) with an access key that exists in its IAM, so an unknown key id is refused with
InvalidAccessKeyId, a wrong secret with SignatureDoesNotMatch, and a key whose user lacks the
permission with AccessDenied (all 403, as S3 answers).

How: moto checks credentials only after `INITIAL_NO_AUTH_ACTION_COUNT` unauthenticated requests
(infinite by default). Starting, the server is reset with that count at infinity, an `admin`
IAM user with an allow-everything policy and an access key is created, and the count is then
set to 0 through moto's `/moto-api/reset-auth`: from there on every request (even the helper's
own) is checked. `create_access_key()` makes further users and keys, limited to given actions.

`fail_next()` makes the next object uploads answer an S3 error (503 SlowDown by default), for
retry tests; `uploads` lists the keys of object uploads that succeeded, in order. Like S3 (and
unlike moto alone) the server refuses an upload whose Content-MD5 does not match its body.

moto keeps its state (buckets, IAM, the auth switch) per process: run one server at a time.
The `s3_server` fixture gives each test a fresh one.
"""

import base64
import gzip
import hashlib
import io
import json
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from moto.server import ThreadedMotoServer
from werkzeug.serving import make_server

from tests.servers import free_port

REGION = "us-east-1"
_ALLOW_ALL = ("*",)
_REASONS = {429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway",
            503: "Service Unavailable"}  # fmt: skip

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
App = Callable[[Environ, StartResponse], Iterable[bytes]]


@dataclass(frozen=True)
class Keys:
    """An access key pair of the test server's IAM."""

    id: str
    secret: str


@dataclass(frozen=True)
class _Fault:
    status: int
    code: str
    message: str


_BAD_DIGEST = _Fault(
    400, "BadDigest", "The Content-MD5 you specified did not match what we received."
)


class _QuietHandler(MotoRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:
        """Not a line per request on the test's output (errors are still logged)."""


class S3Server(ThreadedMotoServer):
    def __init__(self) -> None:
        super().__init__(ip_address="127.0.0.1", port=free_port(), verbose=False)
        self.endpoint = f"http://127.0.0.1:{self._port}"
        self.admin = Keys("", "")
        self.uploads: list[str] = []  # "bucket/key" of every object stored, in order
        self.without_md5: list[str] = []  # "bucket/key" of uploads that came without Content-MD5
        self._faults: list[_Fault] = []
        self._lock = threading.Lock()

    def __enter__(self) -> "S3Server":
        self.start()
        try:
            self._moto_api("reset")
            self._moto_api("reset-auth", "inf")
            self.admin = self._create_keys("admin", _ALLOW_ALL, Keys("setup", "setup"))
            self._moto_api("reset-auth", "0")  # every request is checked from now on
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self._moto_api("reset-auth", "inf")
            self._moto_api("reset")
        finally:
            self.stop()
            if self._server is not None:
                self._server.server_close()

    # -- what tests use -------------------------------------------------------------------

    def client(self, keys: Keys | None = None) -> Any:
        """A boto3 S3 client of this server (path-style), with the admin's keys by default."""
        return self._boto("s3", keys or self.admin)

    def create_bucket(self, name: str) -> None:
        self.client().create_bucket(Bucket=name)

    def create_access_key(self, user: str = "writer", actions: Iterable[str] = ("s3:*",)) -> Keys:
        """A new IAM user allowed `actions` on every resource, and an access key of it."""
        return self._create_keys(user, tuple(actions), self.admin)

    def settings(self, bucket: str, keys: Keys | None = None, **extra: Any) -> dict[str, Any]:
        """An `s3` destination config that stores into `bucket` of this server."""
        keys = keys or self.admin
        return {
            "bucketName": bucket, "endpoint": self.endpoint, "region": REGION,
            "accessKeyID": keys.id, "accessKey": keys.secret, **extra,
        }  # fmt: skip

    def objects(self, bucket: str, prefix: str = "") -> dict[str, bytes]:
        """Every object under `prefix`, key → stored bytes, in key order."""
        client = self.client()
        found: dict[str, bytes] = {}
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for item in (item for page in pages for item in page.get("Contents", [])):
            found[item["Key"]] = client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
        return found

    def events(self, bucket: str, prefix: str = "") -> list[Any]:
        """The events of every gzipped NDJSON object under `prefix`, object by object in key
        order, line by line within each."""
        return [
            json.loads(line)
            for body in self.objects(bucket, prefix).values()
            for line in gzip.decompress(body).splitlines()
            if line
        ]

    def head(self, bucket: str, key: str) -> dict[str, Any]:
        return dict(self.client().head_object(Bucket=bucket, Key=key))

    def fail_next(
        self,
        count: int,
        status: int = 503,
        code: str = "SlowDown",
        message: str = "Please reduce your request rate.",
    ) -> None:
        """Answer the next `count` object uploads with this S3 error instead of storing them
        (`code=""`: with an HTML page, as a proxy in front of a store would)."""
        with self._lock:
            self._faults.extend([_Fault(status, code, message)] * count)

    # -- inside -----------------------------------------------------------------------------

    def _boto(self, service: str, keys: Keys) -> Any:
        return boto3.client(
            service, endpoint_url=self.endpoint, region_name=REGION,
            aws_access_key_id=keys.id, aws_secret_access_key=keys.secret,
            config=Config(s3={"addressing_style": "path"}, retries={"total_max_attempts": 1}),
        )  # fmt: skip

    def _create_keys(self, user: str, actions: tuple[str, ...], caller: Keys) -> Keys:
        iam = self._boto("iam", caller)
        iam.create_user(UserName=user)
        allow = {"Effect": "Allow", "Action": list(actions), "Resource": "*"}
        policy = {"Version": "2012-10-17", "Statement": [allow]}
        iam.put_user_policy(UserName=user, PolicyName="test", PolicyDocument=json.dumps(policy))
        key = iam.create_access_key(UserName=user)["AccessKey"]
        return Keys(key["AccessKeyId"], key["SecretAccessKey"])

    def _moto_api(self, action: str, body: str | None = None) -> None:
        answer = httpx.post(f"{self.endpoint}/moto-api/{action}", content=body, timeout=10)
        answer.raise_for_status()

    def _server_entry(self) -> None:
        # ThreadedMotoServer's own, with `_watched` around moto's application.
        app = DomainDispatcherApplication(create_backend_app)
        self._server = make_server(
            self._ip_address, self._port, self._watched(app), True,
            request_handler=_QuietHandler,
        )  # fmt: skip
        self._server_ready_event.set()
        self._server.serve_forever(poll_interval=0.05)  # a quick stop

    def _watched(self, app: App) -> App:
        """Moto's app, failing object uploads on demand and recording those that succeed."""

        def serve(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
            path = environ.get("PATH_INFO", "")
            upload = environ["REQUEST_METHOD"] == "PUT" and path.count("/") >= 2
            upload = upload and not path.startswith("/moto-api")
            if not upload:
                return app(environ, start_response)
            body = _read(environ)
            with self._lock:
                fault = self._faults.pop(0) if self._faults else None
                if "HTTP_CONTENT_MD5" not in environ:
                    self.without_md5.append(path.lstrip("/"))
            if fault is None and not _digest_matches(environ, body):
                fault = _BAD_DIGEST
            if fault is not None:
                return _error(start_response, fault)

            def started(status: str, headers: Any, *rest: Any) -> Any:
                if status.startswith("200"):
                    with self._lock:
                        self.uploads.append(path.lstrip("/"))
                return start_response(status, headers, *rest)

            return app(environ, started)

        return serve


def _read(environ: Environ) -> bytes | None:
    """The upload's body, read ahead of moto (which then reads it from a copy); None when its
    length is not given (chunked)."""
    length = environ.get("CONTENT_LENGTH")
    if not length:
        return None
    body: bytes = environ["wsgi.input"].read(int(length))
    environ["wsgi.input"] = io.BytesIO(body)
    return body


def _digest_matches(environ: Environ, body: bytes | None) -> bool:
    """S3 refuses a body whose Content-MD5 differs (moto does not check it)."""
    given = environ.get("HTTP_CONTENT_MD5")
    if given is None or body is None:
        return True
    return bool(
        given == base64.b64encode(hashlib.md5(body, usedforsecurity=False).digest()).decode()
    )


def _error(start_response: StartResponse, fault: _Fault) -> list[bytes]:
    reason = _REASONS.get(fault.status, "Error")
    kind = "application/xml"
    text = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{fault.code}</Code><Message>{fault.message}</Message>"
        "<RequestId>TESTREQUEST</RequestId></Error>"
    )
    if not fault.code:  # a proxy's page in front of the store, not an S3 error document
        kind, text = "text/html", f"<html><body><h1>{fault.status} {reason}</h1></body></html>"
    body = text.encode()
    start_response(
        f"{fault.status} {reason}", [("Content-Type", kind), ("Content-Length", str(len(body)))]
    )
    return [body]


@pytest.fixture
def s3_server() -> Iterator[S3Server]:
    """A fresh S3 API server on loopback that checks credentials (see the module docstring)."""
    with S3Server() as server:
        yield server
