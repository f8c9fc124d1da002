"""Customer.io: people, events, devices and objects through the Track API (RudderStack's
`customerio` keys).

Hosts: `https://track.customer.io`, `https://track-eu.customer.io` when `datacenter` is EU (or,
in configs from older RudderStack versions, `datacenterEU` is true), or the `endpoint` setting,
which replaces either. Auth: `Authorization: Basic
base64(siteID:apiKey)` on every request.

Two request shapes, chosen by the `trackApi` setting. RudderStack switches between them with a
rollout flag of its own (`CUSTOMERIO_BATCHING_FRAMEWORK_ENABLED_WORKSPACE_IDS`, set per
workspace by whoever runs the servers); in Sluice the choice is the user's, per destination,
because it changes what Customer.io receives (and how errors come back), not how Sluice runs.
The default is `v1`, RudderStack's default, so a configuration brought from RudderStack sends
what it sent there.

`v1`: one Track API v1 call per event (ids in paths percent-encoded, `/` too; an id or device
token that is `.` or `..` is refused, as a path would read it as "this" or "the parent").
* identify → `PUT /api/v1/customers/<id>`, id = userId (else the traits' `userId`/`id`), else
  the email trait; neither: refused. Body: the traits (`traits`, else `context.traits`) less
  `userId`, `anonymousId`, `createdAt` and `address`, whose fields (`city`, `country`,
  `postalCode`, `state`, `street`) go at the top level; `user_properties` over them;
  `created_at` (traits' `createdAt`), `_timestamp` (`timestamp`, else `originalTimestamp`) in
  unix seconds; `anonymous_id`.
* track → `POST /api/v1/customers/<id>/events` `{name, type: "event", data: properties,
  timestamp}`; without userId or email, `POST /api/v1/events` with `anonymous_id` (required),
  the name cut to Customer.io's 100 bytes. page → the same with `type: "page"` and the page's
  `name` (else `properties.url`); screen → `Viewed <name> Screen` (anonymous: the name cut to
  86 bytes, so the whole stays within 100).
* track "Application Installed"/"Application Opened" (or the `deviceTokenEventName`) with a
  user and `context.device.token` → `PUT /api/v1/customers/<id>/devices {device: {id: token,
  platform (ios for Apple systems), last_used, …properties}}` (without both, an ordinary
  event); "Application Uninstalled" → `DELETE /api/v1/customers/<id>/devices/<token>` (both
  required).
* alias → `POST /api/v1/merge_customers {primary: {id|email: userId}, secondary: {id|email:
  previousId}}`, `email` when the value is an address; both ids required.
* group → an object action for `POST /api/v2/batch` (the only call v1 cannot make):
  `{type: "object", action: traits.action (identify, delete, add_relationships,
  delete_relationships; default identify), identifiers: {object_id: groupId, object_type_id:
  traits.objectTypeId or "1"}, attributes: traits less action, cio_relationships: [the user, by
  id or email]}`.

`v2`: every call is one action of `POST /api/v2/batch`, identifying the person by `{id}`, else
`{email}`, else `{anonymous_id}` (none: refused): identify → `identify` with the v1 body as
`attributes` (it needs userId or email); track, page, screen → `event`, `page`, `screen`
`{name, attributes: properties, timestamp}`; the device events → `add_device {device: {token,
platform, last_used, attributes: {device_os, device_model, app_version, device_locale,
…properties}}}` and `delete_device {device: {token}}`; alias → `merge {primary, secondary}`;
group → the object action above.

Batching: batch actions combine into `{batch: […]}` (Content-Type set), same credentials, up
to 1000 actions (RudderStack's limit for v1's objects) and 500 KB of stored requests
(Customer.io's limit for a batch request); an action over 32 KB is refused alone, before
sending (Customer.io refuses such an action). v1 calls travel one per request.

Answers: 207 to a batch is a partial success: the actions whose position is listed in
`errors[].batch_index` are refused, with Customer.io's reason, field and message; the others
were applied. Any other 2xx is delivered. 429 (Customer.io asks for about 3,000 requests per 3
seconds at most) and 5xx are retried; a 413 is judged for the batch as a whole (the router
sends its events again one by one); any other answer (400 `{"meta": {"error"}}`, 401, 404) is
refused, with Customer.io's words.

Dedup: events carry `id`, Customer.io's deduplication id, which it requires to be a ULID
(https://github.com/ulid/spec): its Track API documents `id` on v1 events (`/customers/<id>/
events` and anonymous `/events`, of every type: event, page, screen) and on v2 person `event`,
`page` and `screen` actions, and ignores an event whose id it has already received (no window
is documented). Nowhere else (identify, devices, merge, objects) is an id documented, nor sent.
The ULID is made from the event, so every copy of it has the same one: the first 48 bits are
the event's time in ms (`timestamp`, else `originalTimestamp`, else `receivedAt`, else 0), the
other 80 the start of the SHA-256 of its messageId; an event without a messageId gets none.
An event Sluice sends again (a lost answer, a crash, a replay from `sluice failed`) is recorded
once. RudderStack sends no `id`.
"""

import base64
import hashlib
import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import quote

import msgspec

from engine import codec
from engine.destinations import segment
from engine.destinations.base import (
    DestinationType,
    Judgement,
    Request,
    Unsendable,
    Verdict,
    base_url,
    check_endpoint,
    json_answer,
)

HOSTS = {"US": "https://track.customer.io", "EU": "https://track-eu.customer.io"}
BATCH_PATH = "/api/v2/batch"
MAX_ACTIONS = 1000  # per batch request (RudderStack's limit for v1's objects)
MAX_BATCH_BYTES = 500_000  # Customer.io's limit for a batch request
MAX_ACTION_BYTES = 32 * 1024  # Customer.io's limit for one action of a batch
MAX_NAME_BYTES = 100  # an anonymous event's name
MAX_ID_BYTES = 150  # a customer id
DEVICE_EVENTS = frozenset({"Application Installed", "Application Opened"})
UNINSTALLED = "Application Uninstalled"
OBJECT_ACTIONS = frozenset({"identify", "delete", "add_relationships", "delete_relationships"})
_ADDRESS = ("city", "country", "postalCode", "state", "street")
_NOT_ATTRIBUTES = frozenset({"address", "createdAt", "userId", "anonymousId"})
_APPLE = frozenset({"ios", "ipados", "tvos", "watchos"})
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_JSON = {"Content-Type": "application/json"}
_REASON = 300  # characters of Customer.io's reason kept per event
_BATCH_INDEX = re.compile(rb'"batch_index"\s*:\s*(\d+)')
# The ULID spec's alphabet: Crockford's base32, without I, L, O and U.
ULID_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_ULID_MAX_MS = (1 << 48) - 1

HELP = {
    "siteID": "The Site ID of a Track API key (Customer.io: Settings → API Credentials).",
    "apiKey": "The API Key paired with that Site ID (a Track API key, not an App API key).",
    "datacenter": "Where the workspace's data lives: US (track.customer.io) or EU "
    "(track-eu.customer.io).",
    "datacenterEU": "RudderStack's older EU switch: on sends to track-eu.customer.io, as "
    "datacenter EU does.",
    "deviceTokenEventName": "A track event that registers the device's push token "
    "(context.device.token), besides Application Installed and Application Opened.",
    "trackApi": "v1: one Track API request per event, as RudderStack does by default; v2: every "
    "event as an action of /api/v2/batch requests (fewer requests, errors per event).",
    "endpoint": "Replaces the Customer.io host (a proxy, a test server); wins over datacenter.",
}


class CustomerIOSettings(msgspec.Struct):
    siteID: str
    apiKey: str
    # Text rather than a Literal, so that a wrong value gets a message that says what to do.
    datacenter: str | None = "US"
    datacenterEU: bool = False  # RudderStack's older setting, in configs imported from it
    deviceTokenEventName: str = ""
    trackApi: Literal["v1", "v2"] = "v1"
    endpoint: str | None = None

    def __post_init__(self) -> None:
        for name in ("siteID", "apiKey"):
            value = getattr(self, name).strip()
            if not value:
                raise ValueError(f"{name} is required: copy it from Customer.io's API Credentials")
            if any(c.isspace() for c in value) or (name == "siteID" and ":" in value):
                raise ValueError(f"{name} must be the value alone, without spaces or colons")
            setattr(self, name, value)
        datacenter = (self.datacenter or "US").strip().upper() or "US"
        if datacenter not in HOSTS:
            raise ValueError(
                f"datacenter must be EU for an account in Customer.io's EU region (signed in at "
                f"fly-eu.customer.io), else US; not {str(self.datacenter)[:20]!r}"
            )
        self.datacenter = "EU" if self.datacenterEU else datacenter
        self.deviceTokenEventName = self.deviceTokenEventName.strip()
        check_endpoint(self.endpoint)

    @property
    def base(self) -> str:
        return base_url(self.endpoint, HOSTS[self.datacenter or "US"])

    @property
    def auth(self) -> dict[str, str]:
        credentials = base64.b64encode(f"{self.siteID}:{self.apiKey}".encode()).decode()
        return {"Authorization": f"Basic {credentials}"}


# ---------------------------------------------------------------------------------------------
# Reading the event


def _given(value: Any) -> bool:
    """RudderStack's rule for a field that is there: anything but null and ""."""
    return value is not None and value != ""


def _first_text(event: dict[str, Any], paths: Sequence[str]) -> str | None:
    for path in paths:
        if (value := segment.text(segment.dig(event, path))) is not None:
            return value
    return None


def _user(event: dict[str, Any]) -> str | None:
    """The customer id: userId, else the traits' userId or id (RudderStack's order)."""
    paths = ("userId", "traits.userId", "traits.id", "context.traits.userId", "context.traits.id")
    return _first_text(event, paths)


def _email(event: dict[str, Any]) -> str | None:
    return _first_text(event, ("traits.email", "context.traits.email", "properties.email"))


def _traits(event: dict[str, Any]) -> dict[str, Any]:
    """The person's traits: `traits` when the call has them, else `context.traits`."""
    own = event.get("traits")
    if isinstance(own, dict) and own:
        return own
    return segment.mapping(segment.context(event).get("traits"))


def _unix(when: datetime | None) -> int | None:
    return None if when is None else (when - _EPOCH) // timedelta(seconds=1)


def _seconds(value: Any) -> int | None:
    """A date (ISO 8601 text) in unix seconds, else None."""
    return _unix(segment.event_time({"timestamp": value}))


def _when(event: dict[str, Any]) -> int | None:
    """When the event happened (`timestamp`, else `originalTimestamp`), in unix seconds."""
    return _unix(segment.event_time(event))


def ulid(ms: int, entropy: bytes) -> str:
    """A ULID: `ms` as its 48-bit time (clamped to what fits), the first 10 bytes of `entropy`
    as its 80 other bits; 26 characters of Crockford's base32, most significant first."""
    if len(entropy) < 10:
        raise ValueError("a ULID needs 10 bytes (80 bits) besides its time")
    value = min(max(ms, 0), _ULID_MAX_MS) << 80 | int.from_bytes(entropy[:10], "big")
    return "".join(ULID_ALPHABET[(value >> shift) & 31] for shift in range(125, -5, -5))


def event_ulid(event: dict[str, Any]) -> str | None:
    """Customer.io's dedup id for an event: the same for every copy of it (same messageId and
    time), none without a messageId."""
    message_id = segment.text(event.get("messageId"))
    if message_id is None:
        return None
    when = segment.event_time(event) or segment.event_time({"timestamp": event.get("receivedAt")})
    ms = 0 if when is None else (when - _EPOCH) // timedelta(milliseconds=1)
    return ulid(ms, hashlib.sha256(message_id.encode()).digest())


def _cut(text: str, limit: int) -> str:
    """At most `limit` bytes of UTF-8, never half a character."""
    return text.encode()[:limit].decode(errors="ignore")


def _path_id(value: str, what: str) -> str:
    if len(value.encode()) > MAX_ID_BYTES:
        raise Unsendable(f"the {what} is longer than Customer.io's {MAX_ID_BYTES} bytes")
    return _segment(value, what)


def _segment(value: str, what: str) -> str:
    """A value as one path segment. Percent-encoding leaves `.` as it is, and a path segment
    `.` or `..` means "this" or "the parent": `/customers/../` would reach another resource
    (anything else, `%2e` included, is encoded to text that no path resolves)."""
    if value in (".", ".."):
        raise Unsendable(f"the {what} {value!r} cannot name anything in Customer.io's paths")
    return quote(value, safe="")


def _who(value: str) -> dict[str, str]:
    """A person named by an id or, when the value is an address, by email."""
    return {"email" if _EMAIL.match(value) else "id": value}


def _event_name(event: dict[str, Any]) -> str:
    name = event.get("event")
    if not isinstance(name, str) or not name.strip():
        raise Unsendable("a track call needs an event name (text)")
    return name


def _page_name(event: dict[str, Any]) -> str:
    name = segment.text(event.get("name")) or segment.text(segment.properties(event).get("url"))
    if name is None:
        raise Unsendable("a page call needs a name or properties.url (Customer.io's page name)")
    return name


def _screen_name(event: dict[str, Any]) -> str:
    paths = ("event", "name", "properties.name")
    name = _first_text(event, paths)
    if name is None:
        raise Unsendable("a screen call needs the screen's name (event, name or properties.name)")
    return name


def _attributes(event: dict[str, Any]) -> dict[str, Any]:
    """A person's attributes: the traits, address fields at the top level, and the
    (deprecated) `user_properties` over them."""
    traits = _traits(event)
    address = segment.mapping(traits.get("address"))
    found = {key: address[key] for key in _ADDRESS if key in address and address[key] is not None}
    found |= {k: v for k, v in traits.items() if k not in _NOT_ATTRIBUTES}
    found |= segment.mapping(event.get("user_properties"))
    created = _seconds(traits.get("createdAt"))
    if created is not None:
        found["created_at"] = created
    return found


def _device(event: dict[str, Any], settings: CustomerIOSettings) -> str | None:
    """What a track call does to the user's devices: "add", "delete" or nothing (None)."""
    name = event.get("event")
    if name == UNINSTALLED:
        return "delete"
    if name in DEVICE_EVENTS or (
        settings.deviceTokenEventName and name == settings.deviceTokenEventName
    ):
        # Without a user and a token it is an ordinary event (RudderStack's rule).
        return "add" if (_user(event) or _email(event)) and _token(event) else None
    return None


def _token(event: dict[str, Any]) -> str | None:
    return segment.text(segment.dig(event, "context.device.token"))


def _platform(event: dict[str, Any]) -> dict[str, str]:
    kind = segment.dig(event, "context.device.type")
    if not isinstance(kind, str) or not kind:
        return {}
    return {"platform": "ios" if kind.lower() in _APPLE else kind.lower()}


# ---------------------------------------------------------------------------------------------
# v1: one call per event


def _v1(settings: CustomerIOSettings, method: str, path: str, body: Any = None) -> Request:
    return Request(method, settings.base + path, dict(settings.auth), body=body)


def _v1_identify(event: dict[str, Any], settings: CustomerIOSettings) -> Request:
    who = _user(event) or _email(event)
    if who is None:
        raise Unsendable("an identify call needs userId or an email trait")
    body = _attributes(event)
    if (when := _when(event)) is not None:
        body["_timestamp"] = when
    if (anonymous := segment.anonymous_id(event)) is not None:
        body["anonymous_id"] = anonymous
    return _v1(settings, "PUT", f"/api/v1/customers/{_path_id(who, 'userId')}", body)


def _v1_event(
    event: dict[str, Any], settings: CustomerIOSettings, kind: str, name: str, short: str
) -> Request:
    """An event of a known customer, else an anonymous one (named `short`: Customer.io takes
    anonymous event names of up to 100 bytes)."""
    body: dict[str, Any] = {}
    if isinstance(properties := event.get("properties"), dict):
        body["data"] = properties
    body |= {"name": name, "type": kind}
    if (when := _when(event)) is not None:
        body["timestamp"] = when
    if (dedup := event_ulid(event)) is not None:
        body["id"] = dedup
    who = _user(event) or _email(event)
    if who is not None:
        path = f"/api/v1/customers/{_path_id(who, 'userId')}/events"
        return _v1(settings, "POST", path, body)
    anonymous = segment.anonymous_id(event)
    if anonymous is None:
        raise Unsendable("the event has neither userId, email nor anonymousId")
    body |= {"name": short, "anonymous_id": anonymous}
    return _v1(settings, "POST", "/api/v1/events", body)


def _v1_device(event: dict[str, Any], settings: CustomerIOSettings, action: str) -> Request:
    who, token = _user(event) or _email(event), _token(event)
    if who is None or token is None:
        raise Unsendable("a device event needs userId (or email) and context.device.token")
    path = f"/api/v1/customers/{_path_id(who, 'userId')}/devices"
    if action == "delete":
        return _v1(settings, "DELETE", f"{path}/{_segment(token, 'device token')}")
    device: dict[str, Any] = {**segment.properties(event), "id": token}
    if (when := _when(event)) is not None:
        device["last_used"] = when
    return _v1(settings, "PUT", path, {"device": device | _platform(event)})


def _v1_track(event: dict[str, Any], settings: CustomerIOSettings) -> Request:
    action = _device(event, settings)
    if action is not None:
        return _v1_device(event, settings, action)
    name = _event_name(event)
    return _v1_event(event, settings, "event", name, _cut(name, MAX_NAME_BYTES))


def _v1_page(event: dict[str, Any], settings: CustomerIOSettings) -> Request:
    name = _page_name(event)
    return _v1_event(event, settings, "page", name, _cut(name, MAX_NAME_BYTES))


def _v1_screen(event: dict[str, Any], settings: CustomerIOSettings) -> Request:
    screen = _screen_name(event)
    short = _cut(screen, MAX_NAME_BYTES - len("Viewed  Screen"))
    return _v1_event(event, settings, "event", f"Viewed {screen} Screen", f"Viewed {short} Screen")


def _merge(event: dict[str, Any]) -> dict[str, Any]:
    user, previous = _user(event), segment.text(event.get("previousId"))
    if user is None or previous is None:
        raise Unsendable("an alias call needs userId and previousId")
    if user == previous:
        raise Unsendable("an alias call's previousId is its userId: nothing to merge")
    return {"primary": _who(user), "secondary": _who(previous)}


def _v1_alias(event: dict[str, Any], settings: CustomerIOSettings) -> Request:
    return _v1(settings, "POST", "/api/v1/merge_customers", _merge(event))


def _v1_group(event: dict[str, Any], settings: CustomerIOSettings) -> Request:
    return _v1(settings, "POST", BATCH_PATH, _sized(_object(event)))


# ---------------------------------------------------------------------------------------------
# Batch actions (v2, and v1's group calls)


def _object(event: dict[str, Any]) -> dict[str, Any]:
    """A group call as an object action: the group's attributes and the user's relationship."""
    group = segment.text(event.get("groupId")) or segment.text(segment.dig(event, "traits.groupId"))
    if group is None:
        raise Unsendable("a group call needs groupId (the Customer.io object id)")
    traits = segment.mapping(event.get("traits"))
    action = traits.get("action", segment.properties(event).get("action"))
    kind = segment.text(traits.get("objectTypeId")) or "1"
    # The user, as a relationship: not the traits' id, which is the group's here.
    paths = ("userId", "context.traits.userId", "context.traits.id")
    user = _first_text(event, paths)
    user = user or _first_text(event, ("context.traits.email", "properties.email"))
    return {
        "type": "object",
        "action": action if action in OBJECT_ACTIONS else "identify",
        "identifiers": {"object_id": group, "object_type_id": kind},
        "attributes": {k: v for k, v in traits.items() if k != "action"},
        "cio_relationships": [{"identifiers": _who(user)}] if user else [],
    }


def _sized(action: dict[str, Any]) -> dict[str, Any]:
    size = len(codec.encode(action))
    if size > MAX_ACTION_BYTES:
        raise Unsendable(
            f"the event makes a {size}-byte action; Customer.io takes {MAX_ACTION_BYTES} at most"
        )
    return action


def _person(event: dict[str, Any]) -> dict[str, str]:
    if (user := _user(event)) is not None:
        return {"id": user}
    if (email := _email(event)) is not None:
        return {"email": email}
    if (anonymous := segment.anonymous_id(event)) is not None:
        return {"anonymous_id": anonymous}
    raise Unsendable("the event has neither userId, email nor anonymousId")


def _v2_identify(event: dict[str, Any]) -> dict[str, Any]:
    if _user(event) is None and _email(event) is None:
        raise Unsendable("an identify call needs userId or an email trait")
    attributes = _attributes(event)
    if (when := _when(event)) is not None:
        attributes["_timestamp"] = when
    if (anonymous := segment.anonymous_id(event)) is not None:
        attributes["anonymous_id"] = anonymous
    return {"type": "person", "action": "identify", "identifiers": _person(event),
            "attributes": attributes}  # fmt: skip


def _v2_event(event: dict[str, Any], action: str, name: str) -> dict[str, Any]:
    found: dict[str, Any] = {"type": "person", "action": action, "identifiers": _person(event),
                             "name": name, "attributes": segment.properties(event)}  # fmt: skip
    if (when := _when(event)) is not None:
        found["timestamp"] = when
    if (dedup := event_ulid(event)) is not None:
        found["id"] = dedup
    return found


_DEVICE_ATTRIBUTES = (
    ("device_os", "context.os.name"),
    ("device_model", "context.device.model"),
    ("app_version", "context.app.version"),
    ("device_locale", "context.locale"),
)


def _v2_device(event: dict[str, Any], action: str) -> dict[str, Any]:
    token = _token(event)
    if (_user(event) or _email(event)) is None or token is None:
        raise Unsendable("a device event needs userId (or email) and context.device.token")
    person = _person(event)
    if action == "delete":
        return {"type": "person", "action": "delete_device", "identifiers": person,
                "device": {"token": token}}  # fmt: skip
    device: dict[str, Any] = {"token": token}
    if (when := _when(event)) is not None:
        device["last_used"] = when
    attributes = {k: v for k, path in _DEVICE_ATTRIBUTES if _given(v := segment.dig(event, path))}
    device["attributes"] = attributes | segment.properties(event)
    device |= _platform(event)
    return {"type": "person", "action": "add_device", "identifiers": person, "device": device}


def _v2_track(event: dict[str, Any], settings: CustomerIOSettings) -> dict[str, Any]:
    action = _device(event, settings)
    if action is not None:
        return _v2_device(event, action)
    return _v2_event(event, "event", _event_name(event))


def _v2_alias(event: dict[str, Any]) -> dict[str, Any]:
    return {"type": "person", "action": "merge", **_merge(event)}


_V2: dict[str, Callable[[dict[str, Any], CustomerIOSettings], dict[str, Any]]] = {
    "identify": lambda event, _: _v2_identify(event),
    "track": _v2_track,
    "page": lambda event, _: _v2_event(event, "page", _page_name(event)),
    "screen": lambda event, _: _v2_event(event, "screen", f"Viewed {_screen_name(event)} Screen"),
    "group": lambda event, _: _object(event),
    "alias": lambda event, _: _v2_alias(event),
}
_V1: dict[str, Callable[[dict[str, Any], CustomerIOSettings], Request]] = {
    "identify": _v1_identify,
    "track": _v1_track,
    "page": _v1_page,
    "screen": _v1_screen,
    "group": _v1_group,
    "alias": _v1_alias,
}


# ---------------------------------------------------------------------------------------------
# The plug-in


def map_event(event: dict[str, Any], settings: CustomerIOSettings, now: datetime) -> list[Request]:
    kind = event.get("type")
    if not isinstance(kind, str) or kind not in _V1:
        raise Unsendable(f"unsupported call type {str(kind)[:50]!r}")
    if settings.trackApi == "v1":
        return [_V1[kind](event, settings)]
    action = _sized(_V2[kind](event, settings))
    headers = {**settings.auth, **_JSON}
    return [Request("POST", settings.base + BATCH_PATH, headers, body=action)]


def batch_key(request: Request) -> str | None:
    """Batch actions with the same credentials combine; v1 calls travel alone."""
    if request.method != "POST" or not request.url.endswith(BATCH_PATH):
        return None
    return f"{request.url} {request.headers.get('Authorization', '')}"


def combine(requests: Sequence[Request]) -> Request:
    first = requests[0]
    headers = {**first.headers, **_JSON}
    return Request(first.method, first.url, headers, body={"batch": [r.body for r in requests]})


def classify(status: int, body: bytes, count: int) -> Verdict | Sequence[Judgement]:
    if status == 207:
        return _partial(body, count)
    if 200 <= status < 300:
        return Verdict.DELIVERED
    if status == 413:
        # A verdict for the whole batch (no reasons per event): the router sends the events
        # again one by one only on such a verdict, and fails an event too large alone.
        return Verdict.ABORT
    if status == 429 or 500 <= status < 600:
        return Verdict.RETRY
    reason = _error(body)
    return Verdict.ABORT if reason is None else [Judgement(Verdict.ABORT, reason)] * count


def _error(body: bytes) -> str | None:
    """Customer.io's words for a refusal: `meta.error`, `meta.errors`, or a short text."""
    answer = json_answer(body)
    if isinstance(answer, dict):
        meta = segment.mapping(answer.get("meta"))
        found = meta.get("error") or meta.get("errors") or answer.get("error")
        if isinstance(found, list):
            found = "; ".join(str(item) for item in found)
        text = segment.text(found)
        return text[:_REASON] if text else None
    text = body.decode(errors="replace").strip()
    return text[:_REASON] if text and not text.startswith(("{", "[", "<")) else None


def _partial(body: bytes, count: int) -> list[Judgement]:
    """A 207: the listed actions were refused, the others applied."""
    failed: dict[int, str] = {}
    answer = json_answer(body)
    errors = answer.get("errors") if isinstance(answer, dict) else None
    if isinstance(errors, list):
        for error in errors:
            index = error.get("batch_index") if isinstance(error, dict) else None
            if isinstance(index, int) and not isinstance(index, bool) and 0 <= index < count:
                failed[index] = _reason(error)
    elif answer is None:
        # An answer too long to read whole: the positions can still be read, not the reasons.
        for match in _BATCH_INDEX.finditer(body):
            if (index := int(match.group(1))) < count:
                failed[index] = "refused by Customer.io (its answer was too long to read whole)"
    return [
        Judgement(Verdict.ABORT, failed[i]) if i in failed else Judgement(Verdict.DELIVERED)
        for i in range(count)
    ]


def _reason(error: dict[str, Any]) -> str:
    parts = [
        f"{key}: {text}"
        for key in ("reason", "field", "message")
        if (text := segment.text(error.get(key))) is not None
    ]
    return (", ".join(parts) or "refused by Customer.io")[:_REASON]


CUSTOMERIO = DestinationType(
    name="customerio",
    title="Customer.io",
    category="Marketing",
    description="Messaging automation: people, events, devices and objects.",
    settings=CustomerIOSettings,
    map=map_event,
    secret_keys=("apiKey",),
    help=HELP,
    batch_size=MAX_ACTIONS,
    batch_bytes=MAX_BATCH_BYTES,
    batch_key=batch_key,
    combine=combine,
    classify=classify,
)
