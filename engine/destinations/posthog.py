"""PostHog: every call becomes one event for PostHog's capture API, sent in batches to `/batch`
(RudderStack's `posthog` keys).

Host: `https://app.posthog.com`, or `yourInstance` (PostHog Cloud EU, a self-hosted instance),
or the `endpoint` setting, which takes precedence over both. Auth: the project API key
(`teamApiKey`, `phc_…`) travels in the body as `api_key`; there is no auth header. A personal
API key (`phx_…`) is refused with the settings, as PostHog's capture API refuses it.

Each call's event (RudderStack's shape, so a workspace moved from RudderStack keeps its
persons and events):
* Common: top-level `distinct_id` is `userId`, else the traits' `userId`/`id`, else
  `anonymousId` (as text); an event with neither `userId` nor `anonymousId` cannot be sent.
  `messageId` (not for alias, as RudderStack sends it) and `timestamp` (the event's
  `timestamp`, else `originalTimestamp`, as written; only text, which PostHog requires) are
  forwarded. `properties` holds copies of the context (`$os`, `$current_url`, `$pathname`,
  `$host` read from that URL, `$screen_*`, `$lib`, `$lib_version`, `$device_*`, `$app_*`,
  `$network_carrier`, `$locale`, `$timezone`, `$useragent`, `$ip`, `utm_*` from
  `context.campaign`, `$viewport_*`, `$time`/`$timestamp`, `$anon_distinct_id`, `distinct_id`),
  with the event's own properties over them, and `context.traits` as `$set` (identify aside).
  Web events (`channel: web`) also get `$browser`, `$browser_version` and `$os` read from the
  user agent.
* track → `capture` of the event name as sent (a track call without a name is refused: PostHog
  refuses the whole batch that carries one).
* page → `page`, `$pageview`; screen → `screen`, `$screen` with `$screen_name` (the screen's
  `event`, else `name`); both carry `name` and `category` at the top level.
* identify → `identify`, `$identify`, the traits (`traits`, else `context.traits`) in the
  top-level `$set`: PostHog merges the anonymous person (`$anon_distinct_id`) into the user.
* group → `group`, `$groupidentify`. With `useV2Group`, PostHog's group analytics:
  `$group_type` from `traits.groupType`, `$group_key` from `groupId`, `$group_set` the other
  traits and `$groups {type: key}`; without a group type or key the call is refused. Without
  `useV2Group` (RudderStack's default), the legacy shape: `groupId` and `traits` at the top.
* alias → `alias`, `$create_alias`: `properties.distinct_id` (the user) and `alias`
  (`previousId`, required).

PostHog refuses events over 1 MB; an event whose JSON passes 900,000 bytes is refused here
(RudderStack's margin), alone, rather than sinking its batch.

Batching: all requests of a destination combine into `{api_key, batch: [events]}` (the key
taken out of each event), up to 1000 events and 5 MB of stored requests (RudderStack sends up
to 10 MB).

Answers: PostHog has no partial success: one invalid event refuses the whole request, naming
none. 2xx is delivered; 429 (rate or billing limit) and 5xx are retried. A batch refused with
400 (an event PostHog finds malformed) or 413 (one too large) is sent again event by event
(`split_on`, and the router's own rule for 413), so only the bad event fails, with PostHog's
words; any other 4xx (401: a missing or invalid project key) refuses the batch.

Dedup: each event carries `uuid`, PostHog's event UUID, made from the messageId (uuid5 under a
namespace of Sluice's own, so the same messageId always gives the same UUID, and no other
sender's scheme gives it); an event without a messageId gets none and PostHog makes one.
PostHog documents `uuid` as the event's id, recommends sending one with every event so that a
retried event can be recognised, and treats events with the same UUID, event name, timestamp
and distinct_id as duplicates, removed in time (its ingestion pipeline docs); an invalid UUID
gets the event dropped. So an event Sluice sends again (a lost answer, a crash, a replay from
`sluice failed`) is counted once. RudderStack sends no `uuid`. `messageId` is also forwarded as
is (PostHog reads nothing from it).
"""

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID, uuid5

import msgspec

from engine import codec
from engine.destinations import segment, useragent
from engine.destinations.base import (
    DestinationType,
    Judgement,
    Request,
    Unsendable,
    Verdict,
    base_url,
    check_endpoint,
    classify_status,
    for_call,
)

DEFAULT_HOST = "https://app.posthog.com"
PATH = "/batch"
# PostHog refuses events over 1 MB; RudderStack found some just under it refused too, and keeps
# this margin.
MAX_EVENT_BYTES = 900_000
MAX_EVENTS = 1000
MAX_STORED_BYTES = 5_000_000
_JSON = {"Content-Type": "application/json"}
_REASON = 300  # characters of PostHog's answer kept as the reason
# One malformed event refuses a whole batch with 400, naming none: the router then sends the
# batch's events one by one, so that only that event fails.
SPLIT_ON = frozenset({400})
_SPLIT = SPLIT_ON | {413}  # (a batch refused as too large is split by the router itself)
_DEFAULT_PORTS = {"http": 80, "https": 443}
# Sluice's own namespace for PostHog event UUIDs (uuid5 of the messageId): fixed for good, as a
# change would give every event sent again a new UUID, which PostHog would count anew.
UUID_NAMESPACE = UUID("6f1d3c2a-8b4e-5f70-9a2d-5c1e7b3f0d84")

HELP = {
    "teamApiKey": "The project API key (phc_…) from your PostHog project settings.",
    "yourInstance": "Your PostHog host, e.g. https://eu.i.posthog.com or your own instance; "
    "default https://app.posthog.com.",
    "useV2Group": "Send group calls as PostHog groups ($group_type from traits.groupType, "
    "$group_key from groupId); off: RudderStack's legacy groupId/traits shape.",
    "endpoint": "Replaces the PostHog host (a proxy, a test server); wins over yourInstance.",
}


class PostHogSettings(msgspec.Struct):
    teamApiKey: str
    yourInstance: str = ""
    useV2Group: bool = False
    endpoint: str | None = None

    def __post_init__(self) -> None:
        self.teamApiKey = self.teamApiKey.strip()
        if not self.teamApiKey:
            raise ValueError("teamApiKey is empty: copy the project API key from PostHog")
        if any(c.isspace() for c in self.teamApiKey):
            raise ValueError("teamApiKey contains spaces: copy the project API key exactly")
        if self.teamApiKey.startswith("phx_"):
            raise ValueError(
                "teamApiKey is a personal API key (phx_…): PostHog takes events with the "
                "project API key (phc_…), from the project settings"
            )
        self.yourInstance = self.yourInstance.strip()
        try:
            check_endpoint(self.yourInstance)
        except ValueError:
            raise ValueError(
                f"yourInstance {self.yourInstance[:100]!r} is not a PostHog host: give its URL, "
                "such as https://eu.i.posthog.com"
            ) from None
        check_endpoint(self.endpoint)

    @property
    def url(self) -> str:
        return base_url(self.endpoint or self.yourInstance, DEFAULT_HOST) + PATH


# ---------------------------------------------------------------------------------------------
# Reading the event


def _present(value: Any) -> bool:
    """Whether a value counts as given (RudderStack's rule: anything but null and "")."""
    return value is not None and value != ""


def _first(event: dict[str, Any], *paths: str) -> Any:
    for path in paths:
        if _present(value := segment.dig(event, path)):
            return value
    return None


def _first_text(event: dict[str, Any], *paths: str) -> str | None:
    for path in paths:
        if (value := segment.text(segment.dig(event, path))) is not None:
            return value
    return None


def _distinct_id(event: dict[str, Any]) -> str:
    """The person PostHog files the event under (RudderStack's order, so that persons made
    through RudderStack stay the same)."""
    if segment.user_id(event) is None and segment.anonymous_id(event) is None:
        raise Unsendable("the event has neither userId nor anonymousId")
    found = _first_text(
        event,
        "userId",
        "traits.userId",
        "traits.id",
        "context.traits.userId",
        "context.traits.id",
        "anonymousId",
    )
    assert found is not None  # (anonymousId or userId, at least)
    return found


def _timestamp(event: dict[str, Any]) -> str | None:
    """The event's time as written (PostHog reads it); only text, which PostHog requires."""
    for key in ("timestamp", "originalTimestamp"):
        value = event.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def _host(url: Any) -> str | None:
    """The host (and port, unless the scheme's default) of an absolute URL."""
    if not isinstance(url, str):
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if not parts.scheme or not parts.hostname:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    if port is not None and port != _DEFAULT_PORTS.get(parts.scheme.lower()):
        host = f"{host}:{port}"
    return host


# Context copies, in RudderStack's names: each from the first of its paths that is given.
_CONTEXT: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("$os", ("context.os.name",)),
    ("$current_url", ("context.page.url",)),
    ("$pathname", ("context.page.path",)),
    ("$screen_height", ("context.screen.height",)),
    ("$screen_width", ("context.screen.width",)),
    ("$lib", ("context.library.name",)),
    ("$lib_version", ("context.library.version",)),
    ("$device_id", ("context.device.id",)),
    ("$ip", ("context.ip", "request_ip")),
    ("$anon_distinct_id", ("anonymousId",)),
    ("$screen_density", ("context.screen.density",)),
    ("$device_manufacturer", ("context.device.manufacturer",)),
    ("$os_version", ("context.os.version",)),
    ("$timezone", ("context.timezone",)),
    ("$locale", ("context.locale",)),
    ("$useragent", ("context.userAgent",)),
    ("$app_version", ("context.app.version",)),
    ("$device_name", ("context.device.name",)),
    ("$network_carrier", ("context.network.carrier",)),
    ("$app_name", ("context.app.name",)),
    ("$device_model", ("context.device.model",)),
    ("$app_namespace", ("context.app.namespace",)),
    ("$app_build", ("context.app.build",)),
    ("$viewport_height", ("properties.viewport_height",)),
    ("$viewport_width", ("properties.viewport_width",)),
    ("utm_source", ("context.campaign.source",)),
    ("utm_medium", ("context.campaign.medium",)),
    ("utm_campaign", ("context.campaign.name",)),
    ("utm_content", ("context.campaign.content",)),
    ("utm_term", ("context.campaign.term",)),
    ("$performance_page_loaded", ("context.page.loaded",)),
)


def _context_properties(event: dict[str, Any]) -> dict[str, Any]:
    """What every event's `properties` start with: the context, as PostHog's SDKs report it."""
    found: dict[str, Any] = {}
    traits = segment.context(event).get("traits")
    if event.get("type") != "identify" and isinstance(traits, dict) and traits:
        found["$set"] = traits
    for name, paths in _CONTEXT:
        if (value := _first(event, *paths)) is not None:
            found[name] = value
    if (stamp := _timestamp(event)) is not None:
        found["$time"] = found["$timestamp"] = stamp
    if (distinct := _first_text(event, "userId", "anonymousId")) is not None:
        found["distinct_id"] = distinct
    found |= _browser(event)
    if (host := _host(found.get("$current_url"))) is not None:
        found["$host"] = host
    return found


def _browser(event: dict[str, Any]) -> dict[str, Any]:
    """The browser and OS of a web event, as PostHog's JavaScript SDK reports them."""
    agent = segment.context(event).get("userAgent")
    if str(event.get("channel") or "").lower() != "web" or not isinstance(agent, str):
        return {}
    browser, system = useragent.read(agent)
    found: dict[str, Any] = {}
    if system is not None:
        found["$os"] = system.name
    if browser is not None:
        found["$browser"] = browser.name
        if browser.version is not None:
            found["$browser_version"] = browser.version
    return found


# ---------------------------------------------------------------------------------------------
# Calls


def _payload(
    event: dict[str, Any], kind: str, name: str, properties: dict[str, Any]
) -> dict[str, Any]:
    """An event for `/batch`: the context first, then what the call adds (which wins)."""
    payload: dict[str, Any] = {"type": kind, "event": name}
    # The event's time, else a `timestamp` among the properties (RudderStack's fallback).
    stamp = _timestamp(event) or properties.get("timestamp")
    if isinstance(stamp, str) and stamp:
        payload["timestamp"] = stamp
    payload["properties"] = _context_properties(event) | properties
    return payload


def _with_ids(payload: dict[str, Any], event: dict[str, Any]) -> dict[str, Any]:
    payload["distinct_id"] = _distinct_id(event)
    if (message_id := segment.text(event.get("messageId"))) is not None:
        payload["messageId"] = message_id
    return payload


def _track(event: dict[str, Any], settings: PostHogSettings) -> dict[str, Any]:
    name = segment.text(event.get("event"))
    if name is None or not name.strip():
        raise Unsendable("a track call needs an event name")
    return _with_ids(_payload(event, "capture", name, segment.properties(event)), event)


def _page(event: dict[str, Any], settings: PostHogSettings) -> dict[str, Any]:
    screen = event.get("type") == "screen"
    properties = dict(segment.properties(event))
    if screen and (screen_name := _first(event, "event", "name")) is not None:
        properties = {"$screen_name": screen_name, **properties}
    kind, name = ("screen", "$screen") if screen else ("page", "$pageview")
    payload = _with_ids(_payload(event, kind, name, properties), event)
    for key in ("name", "category"):
        if _present(value := event.get(key)):
            payload[key] = value
    return payload


def _identify(event: dict[str, Any], settings: PostHogSettings) -> dict[str, Any]:
    payload = _with_ids(_payload(event, "identify", "$identify", {}), event)
    # Without traits it still merges the anonymous person into the user: sent all the same.
    if traits := segment.traits(event):
        payload["$set"] = traits
    return payload


def _group(event: dict[str, Any], settings: PostHogSettings) -> dict[str, Any]:
    group_id = _first(event, "groupId", "traits.groupId")
    if not settings.useV2Group:
        payload = _with_ids(_payload(event, "group", "$groupidentify", {}), event)
        if group_id is not None:
            payload["groupId"] = group_id
        if traits := segment.traits(event):
            payload["traits"] = traits
        return payload
    key = segment.text(group_id)
    traits = segment.mapping(event.get("traits"))
    kind = segment.text(traits.get("groupType"))
    if key is None:
        raise Unsendable("a group call needs a groupId (PostHog's group key)")
    if kind is None:
        raise Unsendable(
            "a group call needs traits.groupType (the PostHog group type, such as company) "
            "when useV2Group is on"
        )
    group = {
        "$group_key": key,
        "$group_set": {k: v for k, v in traits.items() if k != "groupType"},
        "$group_type": kind,
        "$groups": {kind: key},
    }
    return _with_ids(_payload(event, "group", "$groupidentify", group), event)


def _alias(event: dict[str, Any], settings: PostHogSettings) -> dict[str, Any]:
    previous = _first_text(event, "previousId")
    if previous is None:
        raise Unsendable("an alias call needs previousId (the id to merge into the user)")
    properties = {"distinct_id": _distinct_id(event), "alias": previous}
    return _payload(event, "alias", "$create_alias", properties)


_CALLS: dict[str, Callable[[dict[str, Any], PostHogSettings], dict[str, Any]]] = {
    "track": _track,
    "page": _page,
    "screen": _page,
    "identify": _identify,
    "group": _group,
    "alias": _alias,
}


def event_uuid(event: dict[str, Any]) -> str | None:
    """PostHog's event UUID for an event: the same for every copy of it (same messageId)."""
    message_id = segment.text(event.get("messageId"))
    return None if message_id is None else str(uuid5(UUID_NAMESPACE, message_id))


def map_event(event: dict[str, Any], settings: PostHogSettings, now: datetime) -> list[Request]:
    call = for_call(event, _CALLS)
    payload = call(event, settings)
    if (uuid := event_uuid(event)) is not None:
        payload["uuid"] = uuid
    size = len(codec.encode(payload))
    if size > MAX_EVENT_BYTES:
        raise Unsendable(
            f"the event is {size} bytes as PostHog would receive it; PostHog refuses events "
            f"over 1 MB (Sluice sends up to {MAX_EVENT_BYTES}): send fewer or smaller properties"
        )
    body = {**payload, "api_key": settings.teamApiKey}
    return [Request("POST", settings.url, dict(_JSON), body=body)]


# ---------------------------------------------------------------------------------------------
# Batches and answers


def batch_key(request: Request) -> str | None:
    """Events combine when they go to the same host with the same project key."""
    body = request.body if isinstance(request.body, dict) else {}
    return f"{request.method} {request.url} {body.get('api_key')}"


def combine(requests: Sequence[Request]) -> Request:
    first = requests[0]
    events = [
        {k: v for k, v in request.body.items() if k != "api_key"}
        for request in requests
        if isinstance(request.body, dict)
    ]
    body = {"api_key": first.body["api_key"], "batch": events}
    return Request(first.method, first.url, first.headers, first.params, body)


def classify(status: int, body: bytes, count: int) -> Verdict | Sequence[Judgement]:
    verdict = classify_status(status, body, count)
    if verdict is not Verdict.ABORT:
        return verdict
    if count > 1 and status in _SPLIT:
        # One verdict for the batch (the router splits only a batch judged as a whole), so
        # that its events go again one by one; each answer then has PostHog's words for its
        # own event.
        return verdict
    reason = _reason(body)
    return Verdict.ABORT if reason is None else [Judgement(Verdict.ABORT, reason)] * count


def _reason(body: bytes) -> str | None:
    """PostHog's words: the capture service answers plain text, older versions JSON with a
    `detail`."""
    try:
        answer = codec.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError):
        answer = None
    if isinstance(answer, dict):
        for key in ("detail", "error", "message"):
            if isinstance(text := answer.get(key), str) and text.strip():
                return text.strip()[:_REASON]
        return None
    if answer is None:  # not JSON: the capture service's plain text
        text = body.decode("utf-8", "replace")
    elif isinstance(answer, str):
        text = answer
    else:
        return None
    return text.strip()[:_REASON] or None


POSTHOG = DestinationType(
    name="posthog",
    title="PostHog",
    category="Analytics",
    description="Product analytics: events, persons, groups and aliases.",
    settings=PostHogSettings,
    map=map_event,
    secret_keys=("teamApiKey",),
    help=HELP,
    batch_size=MAX_EVENTS,
    batch_bytes=MAX_STORED_BYTES,
    batch_key=batch_key,
    combine=combine,
    split_on=SPLIT_ON,
    classify=classify,
)
