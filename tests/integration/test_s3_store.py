"""Storing files in a real S3 API (moto on loopback, checking credentials as S3 does): what
arrives, and how every kind of failure is judged and reported."""

import contextlib
import gzip
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from botocore.exceptions import ClientError

from engine.destinations import s3
from engine.destinations.base import FilesContext, Stored, Verdict
from engine.destinations.s3 import S3, S3Settings
from tests.s3server import S3Server
from tests.servers import free_port

SOURCE = UUID("0b7d2a8e-5f0c-4c55-9d1e-6a3c1f7e2b10")
AT = datetime(2026, 3, 1, 23, 5, tzinfo=UTC)
OFFLINE = {"bucketName": "events", "accessKeyID": "AKIAIOSFODNN7EXAMPLE",
           "accessKey": "s3cr3t-value-never-shown"}  # fmt: skip
LINES = b'{"type":"track","event":"A","properties":{"total":19.990}}\n{"type":"identify"}\n'


def settings(config: dict[str, Any]) -> S3Settings:
    parsed: S3Settings = S3.parse_settings(config)
    return parsed


async def store(config: dict[str, Any], key: str, body: bytes) -> Stored:
    assert S3.files is not None
    async with contextlib.aclosing(S3.files.uploads(FilesContext(uuid4()))) as uploads:
        return await uploads.store(settings(config), key, body)


def key(config: dict[str, Any], first_job: int = 1) -> str:
    assert S3.files is not None
    return S3.files.key(settings(config), SOURCE, AT, first_job)


async def test_a_file_is_stored_gzipped_under_its_key(s3_server: S3Server) -> None:
    s3_server.create_bucket("events")
    config = s3_server.settings("events", prefix="raw/")
    body = gzip.compress(LINES)
    stored = await store(config, key(config, 42), body)
    assert stored == Stored(Verdict.DELIVERED, 200)
    name = f"raw/{SOURCE}/2026-03-01/23/42.json.gz"
    assert s3_server.objects("events") == {name: body}
    assert gzip.decompress(s3_server.objects("events")[name]) == LINES
    head = s3_server.head("events", name)
    assert head["ContentType"] == "application/gzip" and "ContentEncoding" not in head
    assert "ServerSideEncryption" not in head
    assert s3_server.events("events")[0]["properties"] == {"total": 19.99}
    assert s3_server.without_md5 == []  # S3 checks the digest: a damaged body is not stored


def test_the_test_server_refuses_a_body_that_does_not_match_its_digest(
    s3_server: S3Server,
) -> None:
    s3_server.create_bucket("events")
    with pytest.raises(ClientError, match="BadDigest"):
        s3_server.client().put_object(
            Bucket="events", Key="k", Body=b"damaged", ContentMD5="rtVj7K+0vMVlTFl6QhVHsg=="
        )
    assert s3_server.objects("events") == {}


async def test_server_side_encryption_when_enabled(s3_server: S3Server) -> None:
    s3_server.create_bucket("events")
    config = s3_server.settings("events", enableSSE=True)
    assert (await store(config, key(config), gzip.compress(LINES))).verdict is Verdict.DELIVERED
    assert s3_server.head("events", key(config))["ServerSideEncryption"] == "AES256"


async def test_the_same_key_stored_twice_holds_the_second_body(s3_server: S3Server) -> None:
    s3_server.create_bucket("events")
    config = s3_server.settings("events")
    first, second = gzip.compress(LINES[:10]), gzip.compress(LINES)
    assert (await store(config, key(config), first)).verdict is Verdict.DELIVERED
    assert (await store(config, key(config), second)).verdict is Verdict.DELIVERED
    assert s3_server.objects("events") == {key(config): second}
    assert s3_server.uploads == [f"events/{key(config)}"] * 2


@pytest.mark.parametrize(
    ("wrong", "code"),
    [("id", "InvalidAccessKeyId"), ("secret", "SignatureDoesNotMatch")],
)
async def test_wrong_credentials_abort_with_the_service_message_and_no_secret(
    s3_server: S3Server, wrong: str, code: str
) -> None:
    s3_server.create_bucket("events")
    keys = s3_server.create_access_key()
    secret = keys.secret if wrong == "id" else f"{keys.secret[:-4]}Zz9Q"
    key_id = "AKIAZZZZZZZZZZZZZZZZ" if wrong == "id" else keys.id
    config = {**s3_server.settings("events"), "accessKeyID": key_id, "accessKey": secret}
    stored = await store(config, key(config), gzip.compress(LINES))
    assert (stored.verdict, stored.status) == (Verdict.ABORT, 403)
    assert stored.error is not None and stored.error.startswith(f"{code}: ")
    assert secret not in stored.error and keys.secret not in stored.error
    assert s3_server.objects("events") == {}


async def test_a_key_without_permission_is_access_denied(s3_server: S3Server) -> None:
    s3_server.create_bucket("events")
    reader = s3_server.create_access_key("reader", ["s3:GetObject", "s3:ListBucket"])
    config = s3_server.settings("events", keys=reader)
    stored = await store(config, key(config), gzip.compress(LINES))
    assert (stored.verdict, stored.status) == (Verdict.ABORT, 403)
    assert stored.error is not None and stored.error.startswith("AccessDenied")


async def test_a_missing_bucket_aborts_with_no_such_bucket(s3_server: S3Server) -> None:
    config = s3_server.settings("nowhere")
    stored = await store(config, key(config), gzip.compress(LINES))
    assert stored == Stored(Verdict.ABORT, 404, "NoSuchBucket: The specified bucket does not exist")


async def test_throttling_and_server_errors_are_retried(s3_server: S3Server) -> None:
    s3_server.create_bucket("events")
    config = s3_server.settings("events")
    s3_server.fail_next(1)
    s3_server.fail_next(1, 500, "InternalError", "We encountered an internal error.")
    s3_server.fail_next(1, 502, code="")
    body = gzip.compress(LINES)
    assert await store(config, key(config), body) == Stored(
        Verdict.RETRY, 503, "SlowDown: Please reduce your request rate."
    )
    assert await store(config, key(config), body) == Stored(
        Verdict.RETRY, 500, "InternalError: We encountered an internal error."
    )
    assert await store(config, key(config), body) == Stored(
        Verdict.RETRY, 502, "HTTP 502: Bad Gateway"
    )
    assert await store(config, key(config), body) == Stored(Verdict.DELIVERED, 200)
    assert s3_server.objects("events") == {key(config): body}


async def test_a_store_that_is_down_is_retried() -> None:
    config = {**OFFLINE, "endpoint": f"http://127.0.0.1:{free_port()}"}
    stored = await store(config, key(config), gzip.compress(LINES))
    assert (stored.verdict, stored.status) == (Verdict.RETRY, None)
    assert stored.error is not None and "Could not connect" in stored.error
    assert "s3cr3t" not in stored.error


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        accepted: list[socket.socket] = []
        stop = threading.Event()

        def accept() -> None:
            listener.settimeout(0.1)
            while not stop.is_set():
                try:
                    accepted.append(listener.accept()[0])
                except TimeoutError:
                    continue

        thread = threading.Thread(target=accept, daemon=True)
        thread.start()
        yield int(listener.getsockname()[1])
        stop.set()
        thread.join(5)
        for connection in accepted:
            connection.close()


async def test_a_store_that_does_not_answer_is_retried(
    silent_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(s3, "READ_TIMEOUT", 0.5)
    monkeypatch.setattr(s3, "CONNECT_TIMEOUT", 0.5)
    config = {**OFFLINE, "endpoint": f"http://127.0.0.1:{silent_port}"}
    stored = await store(config, key(config), gzip.compress(LINES))
    assert (stored.verdict, stored.status) == (Verdict.RETRY, None)
    assert stored.error is not None and "timeout" in stored.error.lower()


def host_chain(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Only what the test puts in the environment counts as the host's AWS credentials."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", raising=False)
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", raising=False)


async def test_empty_keys_use_the_host_credentials(
    s3_server: S3Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    s3_server.create_bucket("events")
    host_chain(monkeypatch, tmp_path)
    keys = s3_server.create_access_key("host")
    (tmp_path / "credentials").write_text(
        f"[default]\naws_access_key_id = {keys.id}\naws_secret_access_key = {keys.secret}\n"
    )
    config = {**s3_server.settings("events"), "accessKeyID": "", "accessKey": ""}
    stored = await store(config, key(config), gzip.compress(LINES))
    assert stored == Stored(Verdict.DELIVERED, 200)
    assert list(s3_server.objects("events")) == [key(config)]


async def test_no_credentials_anywhere_aborts_saying_so(
    s3_server: S3Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    s3_server.create_bucket("events")
    host_chain(monkeypatch, tmp_path)
    config = {**s3_server.settings("events"), "accessKeyID": "", "accessKey": ""}
    stored = await store(config, key(config), gzip.compress(LINES))
    assert stored == Stored(Verdict.ABORT, None, "AWS credentials: Unable to locate credentials")


async def test_after_a_failed_upload_the_next_one_starts_afresh(
    s3_server: S3Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """One uploader keeps its client between files; a failure drops it, so host credentials
    that appear later are found without a restart."""
    s3_server.create_bucket("events")
    host_chain(monkeypatch, tmp_path)
    config = {**s3_server.settings("events"), "accessKeyID": "", "accessKey": ""}
    assert S3.files is not None
    async with contextlib.aclosing(S3.files.uploads(FilesContext(uuid4()))) as uploads:
        stored = await uploads.store(settings(config), key(config, 1), gzip.compress(LINES))
        assert stored.verdict is Verdict.ABORT
        keys = s3_server.create_access_key("host")
        (tmp_path / "credentials").write_text(
            f"[default]\naws_access_key_id = {keys.id}\naws_secret_access_key = {keys.secret}\n"
        )
        for first_job in (2, 3):
            stored = await uploads.store(settings(config), key(config, first_job), b"x")
            assert stored == Stored(Verdict.DELIVERED, 200)
    assert sorted(s3_server.objects("events")) == sorted([key(config, 2), key(config, 3)])
