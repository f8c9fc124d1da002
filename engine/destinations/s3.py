"""Amazon S3 (and S3-compatible stores such as MinIO): events filed as gzipped NDJSON objects.

A batch destination (RudderStack's S3 keys). Nothing is sent per event: `map` returns the event
unchanged as the body of a descriptive `PUT s3://<bucket>/<prefix>` request, which is what
previews show and what the batch router takes each event from; the router gathers a source's
jobs into files and calls `object_key` and `store` (the `Files` of this destination).

Object layout — one object per file, a source's events in their order, one JSON event a line:

    <prefix>/<source id>/<YYYY-MM-DD>/<HH>/<first job id>.json.gz

The date and hour are the UTC creation time of the file's first job; with an empty `prefix`
the key starts at the source id. The first job fixes the key, so a file uploaded again after a
crash replaces the earlier object instead of adding a second one. (RudderStack's own layout,
`rudder-logs/<source id>/<date>/<unix time>.<source id>.<uuid>.json.gz`, names files by upload
time and a random id, which a repeated upload could not reproduce.)

Decisions:
* Objects are stored as `Content-Type: application/gzip` without `Content-Encoding`. The
  object *is* a gzip file (its name ends in .json.gz, like RudderStack's dumps) and everything
  that reads it back — warehouse loaders, Athena, Spark, `aws s3 cp`, Sluice's replay —
  decompresses by that name. `Content-Encoding: gzip` would make browsers, curl --compressed,
  HTTP libraries and CDNs in front of a bucket unpack it on the way, handing out plain NDJSON
  under a .gz name, which the same tools then fail to gunzip.
* Integrity: every upload carries `Content-MD5`, which S3 and every S3-compatible store check
  before storing, so a body damaged on the way is refused rather than stored. The SDK's newer
  default (streamed CRC32 trailers) is turned off because some S3-compatible stores refuse it.
* Credentials: `accessKeyID` with `accessKey`, or both empty for the host's standard AWS chain
  (environment, shared credentials/config files, container or instance role). RudderStack's
  role assumption (`iamRoleARN`) is refused with a clear message rather than silently replaced
  by the host's own credentials.
* `endpoint` (also RudderStack's spelling `endPoint`) points at an S3-compatible store; a bare
  host[:port] gets https, or http with `disableSSL`. With an endpoint, addressing is path-style
  (`s3ForcePathStyle`, on by default then) and the region defaults to us-east-1, which MinIO
  and most compatible stores expect.
* `enableSSE` asks S3 to encrypt each object at rest (SSE-S3, AES256).
* Answers: success is delivered; authentication, permission, missing-bucket and other 4xx
  answers abort (the config must change), with the service's code and message, e.g.
  "NoSuchBucket: The specified bucket does not exist"; 5xx, SlowDown and other throttling,
  timeouts and connection errors are retried, and so are a skewed host clock and expired
  temporary host credentials (neither is fixed by changing the config). The SDK makes a single
  attempt: the batch router owns retries and backoff, so every failed attempt shows. An upload
  has an overall deadline growing with its size, since the SDK's read timeout does not end an
  upload whose store never answers `Expect: 100-continue`.
* The SDK is imported on the first upload, not with the catalog. Each batch router keeps one
  botocore session (loading the service model costs ~0.1 s of CPU on the event loop), which
  resolves host credentials once and refreshes them as they expire, and one client between
  files (making a client loads the host's CA certificates: ~50 ms of CPU). A failed upload
  closes its client, so the next one starts afresh: new connections, and host credentials
  that were missing are looked for again.
"""

import asyncio
import base64
import hashlib
import ipaddress
import re
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

import msgspec
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    NoRegionError,
    ParamValidationError,
    PartialCredentialsError,
)

from engine.destinations import secrets
from engine.destinations.base import (
    DestinationType,
    Files,
    FilesContext,
    Request,
    Stored,
    Verdict,
    check_endpoint,
)

if TYPE_CHECKING:
    from aiobotocore.config import AioConfig
    from aiobotocore.session import AioSession

CONTENT_TYPE = "application/gzip"
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 60.0  # per socket read
# The batch router caps uploads in flight by the destination's `concurrency` (at most 1,000);
# the SDK's own pool (10 by default) must not queue them behind its back.
MAX_UPLOADS = 1000
# The whole upload's deadline grows with the file at this rate: the SDK's read timeout alone
# does not end an upload whose store never answers its `Expect: 100-continue`.
SLOWEST_BYTES_PER_SECOND = 256 * 1024
ENDPOINT_REGION = "us-east-1"

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_RESERVED_STARTS = ("xn--", "sthree-", "amzn-s3-demo-")
_RESERVED_ENDS = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")
_REGION = re.compile(r"^[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$")
_PRINTABLE_WORD = re.compile(r"^[\x21-\x7e]+$")
_MAX_PREFIX_BYTES = 900  # S3 keys hold 1024 bytes; the rest of the key takes under 100
# Answers worth trying again: the service is busy, failing or briefly inconsistent.
_TRANSIENT_CODES = frozenset(
    {
        "SlowDown",
        "InternalError",
        "ServiceUnavailable",
        "RequestTimeout",
        "Throttling",
        "ThrottlingException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "OperationAborted",
        "RequestTimeTooSkewed",  # the host's clock: fixed by NTP, not by the config
        "ExpiredToken",  # temporary host credentials: the chain renews them
    }
)


class S3Settings(msgspec.Struct):
    bucketName: str
    prefix: str = ""
    accessKeyID: str = ""
    accessKey: str = ""
    region: str = ""
    regionHint: str = ""  # RudderStack's other name for the region
    endpoint: str | None = None
    endPoint: str | None = None  # RudderStack's spelling
    s3ForcePathStyle: bool | None = None  # None: path-style exactly when an endpoint is given
    disableSSL: bool = False
    enableSSE: bool = False
    iamRoleARN: str = ""

    def __post_init__(self) -> None:
        _check_bucket(self.bucketName)
        _check_prefix(self.prefix)
        _check_credentials(self.accessKeyID, self.accessKey)
        if self.iamRoleARN:
            raise ValueError(
                "iamRoleARN (role-based access) is not supported: give accessKeyID and "
                "accessKey, or leave both empty to use the host's AWS credentials"
            )
        if self.region_name is not None and not _REGION.match(self.region_name):
            raise ValueError(f"region {self.region_name!r} is not a region name like eu-west-1")
        if self.endpoint and self.endPoint and self.endpoint != self.endPoint:
            raise ValueError("endpoint and endPoint differ: give the store's URL once")
        check_endpoint(self.endpoint_url)

    @property
    def folder(self) -> str:
        """The prefix as a folder: no slashes at either end, "" for the bucket's root."""
        return self.prefix.strip("/")

    @property
    def endpoint_url(self) -> str | None:
        given = (self.endpoint or self.endPoint or "").strip()
        if not given:
            return None
        if "://" not in given:  # RudderStack's MinIO style: host[:port] and an SSL switch
            given = f"{'http' if self.disableSSL else 'https'}://{given}"
        return given.rstrip("/")

    @property
    def region_name(self) -> str | None:
        region = self.region or self.regionHint
        if not region and self.endpoint_url:
            return ENDPOINT_REGION
        return region or None  # None: the host's AWS config, else S3's global endpoint

    @property
    def path_style(self) -> bool:
        if self.s3ForcePathStyle is None:
            return self.endpoint_url is not None
        return self.s3ForcePathStyle


def _check_bucket(name: str) -> None:
    if not name:
        raise ValueError("bucketName is empty: give the name of the bucket to store events in")
    if "/" in name or name.startswith("s3:"):
        raise ValueError(
            f"bucketName {name[:80]!r} must be the bucket's name alone: put folders in prefix"
        )
    if not _BUCKET.match(name) or ".." in name:
        raise ValueError(
            f"bucketName {name[:80]!r} is not a valid bucket name: 3 to 63 lowercase letters, "
            "digits, dots and hyphens, starting and ending with a letter or digit"
        )
    try:
        ipaddress.IPv4Address(name)
    except ValueError:
        pass
    else:
        raise ValueError(f"bucketName {name!r} must not be an IP address")
    if name.startswith(_RESERVED_STARTS) or name.endswith(_RESERVED_ENDS):
        raise ValueError(f"bucketName {name!r} uses a prefix or suffix that S3 reserves")


def _check_prefix(prefix: str) -> None:
    if any(ord(c) < 32 or ord(c) == 127 for c in prefix):
        raise ValueError("prefix must not contain control characters (tabs, line breaks)")
    if len(prefix.encode()) > _MAX_PREFIX_BYTES:
        raise ValueError(f"prefix is longer than {_MAX_PREFIX_BYTES} bytes")


def _check_credentials(key_id: str, secret: str) -> None:
    # Never quote a secret here: these messages are shown on `sluice config apply`.
    if key_id and not secret:
        raise ValueError("accessKeyID is given without accessKey (the secret access key)")
    if secret and not key_id:
        raise ValueError("accessKey (the secret access key) is given without accessKeyID")
    if key_id and not _PRINTABLE_WORD.match(key_id):
        raise ValueError("accessKeyID must be the access key id exactly, without spaces")
    if secret and not _PRINTABLE_WORD.match(secret):
        raise ValueError("accessKey must be the secret access key exactly, without spaces")


def map_event(event: dict[str, Any], settings: S3Settings, now: datetime) -> list[Request]:
    return [Request("PUT", f"s3://{settings.bucketName}/{settings.folder}", body=event)]


def object_key(
    settings: S3Settings, source_id: UUID, first_created_at: datetime, first_job_id: int
) -> str:
    at = (
        first_created_at.astimezone(UTC)
        if first_created_at.tzinfo is not None
        else first_created_at.replace(tzinfo=UTC)  # naive times in Sluice are UTC
    )
    name = f"{source_id}/{at:%Y-%m-%d}/{at:%H}/{first_job_id}.json.gz"
    return f"{settings.folder}/{name}" if settings.folder else name


@dataclass
class _Client:
    settings: tuple[Any, ...]
    stack: AsyncExitStack
    s3: Any
    users: int = 0  # uploads using it now
    retired: bool = False  # closed once its uploads are done; the next upload makes another


class Uploader:
    """Stores files with PutObject through one client, kept between uploads for as long as the
    settings stay the same and uploads succeed; `aclose` when done."""

    def __init__(self, context: FilesContext | None = None) -> None:  # (the bucket is in settings)
        self._session: AioSession | None = None
        self._client: _Client | None = None
        self._making = asyncio.Lock()

    async def store(self, settings: S3Settings, key: str, body: bytes) -> Stored:
        deadline = CONNECT_TIMEOUT + READ_TIMEOUT + len(body) / SLOWEST_BYTES_PER_SECOND
        try:
            async with asyncio.timeout(deadline):
                stored = Stored(Verdict.DELIVERED, await self._put(settings, key, body))
        except TimeoutError:
            stored = Stored(Verdict.RETRY, error=f"no answer within {deadline:.0f} s (timeout)")
        except ClientError as exc:
            stored = _answer(exc)
        except (NoCredentialsError, PartialCredentialsError, NoRegionError) as exc:
            stored = Stored(Verdict.ABORT, error=f"AWS credentials: {exc}")
        except ParamValidationError as exc:
            stored = Stored(Verdict.ABORT, error=str(exc))
        except (BotoCoreError, OSError) as exc:
            # Connection refused or reset, timeouts, DNS, instance metadata out of reach.
            stored = Stored(Verdict.RETRY, error=str(exc) or type(exc).__name__)
        if stored.error is not None and settings.accessKey:
            stored = Stored(
                stored.verdict, stored.status, secrets.mask(stored.error, [settings.accessKey])
            )
        return stored

    async def remove(self, settings: S3Settings, keys: list[str]) -> None:
        """Delete objects this uploader stored (a warehouse's load files, once loaded)."""
        held = await self._hold(settings)
        try:
            objects = [{"Key": key} for key in keys]
            for start in range(0, len(objects), 1000):  # DeleteObjects takes up to 1,000
                await held.s3.delete_objects(
                    Bucket=settings.bucketName,
                    Delete={"Objects": objects[start : start + 1000], "Quiet": True},
                )
        finally:
            held.users -= 1
            if held.retired and not held.users:
                await held.stack.aclose()

    async def credentials(self, settings: S3Settings) -> tuple[str, str, str]:
        """The keys requests are signed with — the settings', else the host's AWS credentials —
        as (key id, secret, session token or "")."""
        if settings.accessKeyID:
            return settings.accessKeyID, settings.accessKey, ""
        found = await self._aws().get_credentials()
        if found is None:
            raise NoCredentialsError()
        frozen = await found.get_frozen_credentials()
        return frozen.access_key, frozen.secret_key, frozen.token or ""

    async def aclose(self) -> None:
        if self._client is not None:
            await self._retire(self._client)

    async def _retire(self, client: _Client) -> None:
        """Hand `client` out no more; close it once its uploads are done."""
        if self._client is client:
            self._client = None
        client.retired = True
        if not client.users:
            await client.stack.aclose()

    async def _hold(self, settings: S3Settings) -> _Client:
        wanted = msgspec.structs.astuple(settings)
        async with self._making:
            if self._client is not None and self._client.settings != wanted:
                await self._retire(self._client)
            if self._client is None:
                stack = AsyncExitStack()
                s3 = await stack.enter_async_context(client(settings, self._aws()))
                self._client = _Client(wanted, stack, s3)
            self._client.users += 1
            return self._client

    def _aws(self) -> "AioSession":
        if self._session is None:
            # The SDK takes ~0.6 s to import, which every process that reads the catalog (the
            # CLI, the gateway) would otherwise pay.
            from aiobotocore.session import get_session

            self._session = get_session()
        return self._session

    async def _put(self, settings: S3Settings, key: str, body: bytes) -> int | None:
        """PutObject; the service's HTTP status when it succeeded."""
        extra = {"ServerSideEncryption": "AES256"} if settings.enableSSE else {}
        held = await self._hold(settings)
        try:
            answer = await held.s3.put_object(
                Bucket=settings.bucketName,
                Key=key,
                Body=body,
                ContentType=CONTENT_TYPE,
                ContentMD5=_md5(body),
                **extra,
            )
        except BaseException:
            held.users -= 1
            await self._retire(held)  # the next upload starts afresh
            raise
        held.users -= 1
        if held.retired and not held.users:
            await held.stack.aclose()
        status = _mapping(_mapping(answer).get("ResponseMetadata")).get("HTTPStatusCode")
        return status if isinstance(status, int) else None


@asynccontextmanager
async def client(settings: S3Settings, session: "AioSession | None" = None) -> AsyncIterator[Any]:
    """An S3 client for the bucket these settings describe: their keys, else the host's AWS
    credential chain; one attempt per call (callers decide about retrying)."""
    if session is None:
        from aiobotocore.session import get_session

        session = get_session()
    credentials = (
        {"aws_access_key_id": settings.accessKeyID, "aws_secret_access_key": settings.accessKey}
        if settings.accessKeyID
        else {}
    )
    async with session.create_client(
        "s3",
        region_name=settings.region_name,
        endpoint_url=settings.endpoint_url,
        config=_config(settings),
        **credentials,
    ) as s3:
        yield s3


def _md5(body: bytes) -> str:
    return base64.b64encode(hashlib.md5(body, usedforsecurity=False).digest()).decode()


def _config(settings: S3Settings) -> "AioConfig":
    from aiobotocore.config import AioConfig

    return AioConfig(
        connect_timeout=CONNECT_TIMEOUT,
        read_timeout=READ_TIMEOUT,
        retries={"total_max_attempts": 1},
        max_pool_connections=MAX_UPLOADS,
        s3={"addressing_style": "path" if settings.path_style else "auto"},
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        user_agent_extra="sluice",
    )


def _answer(exc: ClientError) -> Stored:
    """The storage service's refusal, judged, in its own words."""
    response = exc.response if isinstance(exc.response, dict) else {}
    error, meta = _mapping(response.get("Error")), _mapping(response.get("ResponseMetadata"))
    status = meta.get("HTTPStatusCode")
    status = status if isinstance(status, int) else None
    code, message = str(error.get("Code") or ""), str(error.get("Message") or "")
    if code and not code.isdigit():
        text = f"{code}: {message}" if message else code
    elif status is not None:  # no S3 error document (a proxy's page): the status says it
        text = f"HTTP {status}" + (f": {message}" if message else "")
    else:
        text = message or "the storage service answered without an error code"
    transient = code in _TRANSIENT_CODES or status is None or status == 429 or status >= 500
    return Stored(Verdict.RETRY if transient else Verdict.ABORT, status, text[:1000])


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


S3 = DestinationType(
    name="s3",
    title="Amazon S3",
    category="Storage",
    description="Every event as gzipped JSON lines in an S3 (or compatible) bucket.",
    settings=S3Settings,
    map=map_event,
    secret_keys=("accessKey",),
    files=Files(key=object_key, uploads=Uploader),
)
