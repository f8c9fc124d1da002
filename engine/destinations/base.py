"""The shape every destination plug-in has: settings, mapping, batching, response rules.

A destination module (one file per vendor in this package) defines a `DestinationType`, the
plug-in: its name and title, the settings it reads (a msgspec Struct with RudderStack's keys,
which says which are required and is also the schema the UI renders), which call types it
takes, how an event becomes request(s), how requests combine into a batch, and what the vendor's
answers mean. A *destination* is one the user configured: a type with settings (see
`engine.specs.DestinationSpec`, and `engine.pipeline.topology.Target` for the pipeline's view).
"""

import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar
from urllib.parse import urlsplit
from uuid import UUID

import msgspec
import msgspec.inspect

from engine import codec
from engine.destinations.filters import Declines
from engine.errors import SluiceError
from engine.warehouses.warehouse import WarehouseKind

ALL_TYPES = frozenset({"track", "identify", "page", "screen", "group", "alias"})


class Request(msgspec.Struct, omit_defaults=True):
    """One HTTP request to a vendor, stored with the job and shown by `sluice preview`."""

    method: str
    url: str
    headers: dict[str, str] = {}
    params: dict[str, str] = {}
    body: Any = None
    body_format: Literal["json", "form"] = "json"
    # What `resolve` needs to know that the vendor is not sent (whom to look up): stored with
    # the request, never sent.
    hints: dict[str, str] = {}


_requests = msgspec.json.Decoder(Request, float_hook=codec.number_text)


def decode_request(text: str | bytes) -> Request:
    """A stored request (JSON), numbers kept as they were written."""
    return _requests.decode(text)


class Verdict(Enum):
    DELIVERED = "delivered"
    RETRY = "retry"
    ABORT = "aborted"


class Unsendable(SluiceError):
    """The event cannot become a valid request for this destination; sending it would fail."""


class BadSettings(SluiceError):
    """The destination's settings are incomplete or of the wrong type."""


class LookupFailed(SluiceError):
    """A look-up the request needs got no usable answer (no answer, 429, 5xx): the event is
    tried again later rather than sent wrong."""


@dataclass(frozen=True)
class Looked:
    """The vendor's answer to a look-up: its status and its body, decoded (None when it was
    empty or not JSON)."""

    status: int
    body: Any


class Lookups(Protocol):
    """How a destination asks its vendor what a request needs (a contact's id, a property's
    type) just before sending it: through the router's sender, or from answers given in
    advance (`sluice preview --lookups`)."""

    async def ask(self, request: Request, keep: float = 0.0, writes: bool = False) -> Looked:
        """The answer to `request`; the same request's answer may be reused for `keep` seconds.
        `writes`: the look-up changes something at the vendor (Intercom's company upsert),
        which a preview does not do. Raises LookupFailed when there is no usable answer."""
        ...


# The request an event makes, completed with what the vendor says when it is sent.
Resolve = Callable[[Request, Any, Lookups], Awaitable[Request]]


@dataclass(frozen=True)
class Judgement:
    """What a vendor's answer means for one event of a batch, and why (the vendor's words)."""

    verdict: Verdict
    reason: str | None = None


# A vendor's answer, judged: one verdict for the whole request, or one per event it carried
# (in the order they were combined) when the vendor accepts some and refuses others.
Classify = Callable[[int, bytes, int], Verdict | Sequence[Judgement]]
# The same, read with the stored requests the answered request was made of (in combined order).
ClassifySent = Callable[[int, bytes, Sequence["Request"]], Verdict | Sequence[Judgement]]


def classify_status(status: int, body: bytes, count: int = 1) -> Verdict:
    """The generic rule: 2xx delivered, 429 and 5xx retried, any other answer aborted."""
    if 200 <= status < 300:
        return Verdict.DELIVERED
    if status == 429 or 500 <= status < 600:
        return Verdict.RETRY
    return Verdict.ABORT


C = TypeVar("C")


def for_call(event: dict[str, Any], calls: Mapping[str, C]) -> C:
    """What `calls` holds for the event's call type; an event of another type is refused (the
    router filters call types a destination does not take: this guards the mapping itself)."""
    kind = event.get("type")
    found = calls.get(kind) if isinstance(kind, str) else None
    if found is None:
        raise Unsendable(f"unsupported call type {str(kind)[:50]!r}")
    return found


def json_answer(body: bytes) -> Any:
    """A vendor's answer as JSON values (numbers kept as written), or None when it is not JSON."""
    try:
        return codec.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError):
        return None


def same_endpoint(request: Request) -> str | None:
    """The default batch key: requests to the same method and URL combine."""
    return f"{request.method} {request.url}"


def base_url(endpoint: str | None, default: str) -> str:
    """The vendor's base URL, or the `endpoint` setting that replaces it (a regional host, a
    proxy, a test server); API paths are added to it."""
    return (endpoint or default).rstrip("/")


def check_endpoint(endpoint: str | None) -> None:
    """For settings' `__post_init__`: an `endpoint` must be an http(s) URL without a query."""
    if endpoint is None or endpoint == "":
        return
    try:
        parts = urlsplit(endpoint)
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"endpoint {endpoint!r} is not an http(s) URL")
    if parts.query or parts.fragment or any(c.isspace() for c in endpoint):
        raise ValueError(f"endpoint {endpoint!r} must be a base URL, without query or spaces")


# Ids end up in URL paths: nothing that could add a path segment, a query or a fragment.
_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
_TOKEN = re.compile(r"[\x21-\x7e]+")  # printable, no spaces


def check_id(key: str, value: str) -> None:
    """For settings' `__post_init__`: an id (a pixel's, an account's) that goes in a path."""
    if not _ID.fullmatch(value):
        raise ValueError(f"{key} {value[:80]!r} must be an id made of letters, digits, '_', '-'")


def check_token(key: str, value: str | None, *, required: bool = True) -> None:
    """A token is a secret: the message says what is wrong without showing it."""
    if value is None or value == "":
        if required:
            raise ValueError(f"{key} must not be empty")
        return
    if not _TOKEN.fullmatch(value):
        raise ValueError(f"{key} must be a single word of printable characters (no spaces)")


def blank(value: str | None) -> str | None:
    """An optional text setting: RudderStack configs carry empty strings for unset values."""
    return (value.strip() or None) if isinstance(value, str) else None


@dataclass(frozen=True)
class Validation:
    """A vendor endpoint that checks requests without recording them (GA4's debug endpoint):
    how a request is addressed to it, and how its answer reads as messages (none: valid)."""

    request: Callable[[Request], Request]
    messages: Callable[[bytes], list[str]]


@dataclass(frozen=True)
class Stored:
    """The outcome of storing one file of events (see `Files`): the storage service's verdict,
    its HTTP status and, when it failed, its own error message."""

    verdict: Verdict
    status: int | None = None
    error: str | None = None


class Uploads(Protocol):
    """A batch router's connection to a storage service, kept open between its files."""

    async def store(self, settings: Any, key: str, body: bytes) -> Stored: ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True)
class FilesContext:
    """Where a batch router stores: its destination, and this host's data dir (files that
    stay on the host: a warehouse's staged rows)."""

    destination_id: UUID
    data_dir: Path | None = None


@dataclass(frozen=True)
class Files:
    """A destination that stores events as files (S3) rather than sending requests: the batch
    router gathers a source's jobs, in order, into newline-delimited JSON files (gzipped unless
    `compress` is off).

    `key(settings, source id, first job's creation time, first job id)` names a file: the same
    first job always gives the same key, so a file uploaded again after a crash replaces the
    first upload rather than doubling it. `uploads(context)` gives each batch router its own
    `Uploads`, whose `store(settings, key, body)` stores a file.
    """

    key: Callable[[Any, UUID, datetime, int], str]
    uploads: Callable[[FilesContext], Uploads]
    compress: bool = True


@dataclass(frozen=True)
class Origin:
    """Where an event comes from and goes, for the mappings that write it down."""

    destination_id: UUID
    source_id: UUID | None = None  # None: a preview, with no source
    received_at: datetime | None = None


def _texts(value: Any) -> list[str]:
    """The text values in settings, in order."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [t for item in value.values() for t in _texts(item)]
    if isinstance(value, list):
        return [t for item in value for t in _texts(item)]
    return []


@dataclass(frozen=True)
class DestinationType:
    name: str  # the type name in the workspace config, e.g. "webhook"
    title: str
    settings: type[msgspec.Struct]
    # event, settings, now (UTC) → the request(s) to send, in order; Unsendable if none can be.
    map: Callable[[dict[str, Any], Any, datetime], list[Request]]
    # The catalog's group (Analytics, Marketing, Advertising, Messaging, Storage, Warehouses)
    # and its line about what the destination does.
    category: str = "Other"
    description: str = ""
    supported_types: frozenset[str] = ALL_TYPES
    # An event it could take only with an optional setting left blank (a group call without
    # the group settings): (event, config) → why, naming the setting. Such events are filtered,
    # counted and explained, not failed (engine.destinations.filters).
    declines: Declines | None = None
    # Settings keys whose values are secrets: masked wherever requests, errors and answers are
    # shown (`sluice failed list`, previews, the UI).
    secret_keys: tuple[str, ...] = ()
    # A line of help per setting, shown under its field in the settings form.
    help: Mapping[str, str] = field(default_factory=dict)
    more_secrets: Callable[[dict[str, Any]], list[str]] | None = None  # secrets kept elsewhere
    # Settings a viewer does not see either, though they are no secret from editors (a
    # webhook's header values and URL): the settings as a viewer sees them. Shown requests
    # hide them from everyone — editors see them only where they edit them.
    private: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    # More than 1: up to this many jobs travel in one request, as long as their requests have
    # the same `batch_key` (None: never combined) and the stored requests add up to at most
    # `batch_bytes` (engine.pipeline.delivery.batching).
    batch_size: int = 1
    batch_bytes: int = 1_000_000
    batch_key: Callable[[Request], str | None] = field(default=same_endpoint)
    combine: Callable[[Sequence[Request]], Request] | None = None
    # Statuses at which one bad event makes the vendor refuse a whole batch, naming none
    # (PostHog's 400): a batch so refused for good is sent again event by event, so that only
    # the bad one fails. (A 413, the vendor's size limit, always splits a batch.)
    split_on: frozenset[int] = frozenset()
    classify: Classify = field(default=classify_status)
    # For vendors that name the events they refused by what those carried (an email, an id, a
    # place in lists the events fill unevenly): the answer read with the requests it answers.
    # Used instead of `classify` when there is one.
    classify_sent: ClassifySent | None = None
    validation: Validation | None = None  # for previews
    files: Files | None = None  # a batch destination: its jobs' request bodies go into files
    # A mapping that also needs the event's origin (warehouses write the source's and the
    # destination's ids into every row): used instead of `map` when there is one.
    map_from: Callable[[dict[str, Any], Any, datetime, Origin], list[Request]] | None = None
    # A mapping that needs the vendor's answers (a contact's id, a property's type): the stored
    # request is completed by `resolve(request, settings, lookups)` each time it is sent, so a
    # retry asks again. It raises LookupFailed (the event is retried) or Unsendable (it fails).
    resolve: Resolve | None = None
    warehouse: WarehouseKind | None = None  # a warehouse: how it is loaded

    @property
    def required(self) -> tuple[str, ...]:
        """The settings a destination of this type cannot do without."""
        info = msgspec.inspect.type_info(self.settings)
        assert isinstance(info, msgspec.inspect.StructType)
        return tuple(f.name for f in info.fields if f.required)

    def requests(
        self, event: dict[str, Any], settings: Any, now: datetime, origin: Origin
    ) -> list[Request]:
        """The request(s) an event makes (Unsendable if none can be)."""
        if self.map_from is not None:
            return self.map_from(event, settings, now, origin)
        return self.map(event, settings, now)

    def judge(
        self, status: int, body: bytes, requests: Sequence[Request]
    ) -> Verdict | Sequence[Judgement]:
        """What the vendor's answer to the request made of `requests` means for each."""
        if self.classify_sent is not None:
            return self.classify_sent(status, body, requests)
        return self.classify(status, body, len(requests))

    def parse_settings(self, config: dict[str, Any]) -> Any:
        try:
            return msgspec.convert(config, self.settings)
        except msgspec.ValidationError as exc:
            raise BadSettings(f"{self.title} settings: {exc}") from None

    def secrets(self, config: dict[str, Any]) -> list[str]:
        """The secret values in a destination's config (see `engine.destinations.secrets`)."""
        found = [v for k in self.secret_keys if isinstance(v := config.get(k), str) and v]
        return found + (self.more_secrets(config) if self.more_secrets is not None else [])

    def for_viewers(self, config: dict[str, Any]) -> dict[str, Any]:
        """The settings as a viewer sees them (secrets are masked apart, by `secrets`)."""
        return self.private(config) if self.private is not None else config

    def private_values(self, config: dict[str, Any]) -> list[tuple[str, str]]:
        """Each text of the settings a viewer sees otherwise, and how they see it."""
        pairs = zip(_texts(config), _texts(self.for_viewers(config)), strict=False)
        return [(text, shown) for text, shown in pairs if text != shown]
