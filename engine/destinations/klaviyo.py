"""Klaviyo: profiles to `/api/profile-import`, events to `/api/events`, list subscriptions to
the bulk subscription jobs (RudderStack's `klaviyo` keys).

Host: `https://a.klaviyo.com` (no regional hosts), or the `endpoint` setting. Bodies are
JSON:API documents; every request carries `Authorization: Klaviyo-API-Key <privateApiKey>` and
the `revision` header that pins Klaviyo's API version: `apiVersion` v1 (RudderStack's meaning of
an absent setting) → `2023-02-22`, v2 → `2024-10-15`, v3 → `2026-04-15`.

* identify (v2, v3) → `POST /api/profile-import`: a profile with `external_id` (userId),
  `anonymous_id`, `email`, `phone_number` (E.164: other numbers are refused before sending),
  names, `title`, `organization`, `location` (address, ip, timezone, coordinates), the other
  traits as custom `properties` (dot-flattened with `flattenProperties`) and `data.id` from a
  `klaviyo-profileId` external id. `integrations.Klaviyo.fieldsToUnset/fieldsToAppend/
  fieldsToUnappend` become `meta.patch_properties`. When `traits.properties.subscribe` is set
  and a list is named (`traits.properties.listId`, else the `listId` setting) the event makes a
  second job: a subscription (true) or unsubscription (false) of the user to that list.
* identify (v1, also an absent apiVersion) → `PATCH /api/profiles/<id>` with the 2023 profile
  (`external_id`, email, phone as written, names, title, organization, `location`, image, the
  other traits as `properties`), the id found when the request is sent (`resolve`, each
  attempt): the profile is created (`POST /api/profiles`, a write: a preview needs its answer
  given) and the id read from the 201, or from a 409's `errors[0].meta.duplicate_profile_id`
  when it exists. After a 201 the PATCH is sent anyway, with the new id (it repeats what the
  create wrote, harmlessly; RudderStack does the same unless its server suppresses it). With
  `traits.properties.subscribe` true and a list, a subscription job follows (v1 only
  subscribes: false sends none, as in RudderStack).
* track, screen → `POST /api/events`: the metric (event name; a screen's `name`), the profile
  as above (with its `meta`), the properties, `value` (revenue, else total, else value; a
  number), `value_currency`, `time` and `unique_id` = messageId, Klaviyo's dedup key. v1 sends
  the 2023 shape: `{metric: {name}, profile: {$email, $id, …}, properties}`, e-commerce events
  (product viewed/clicked, product added, checkout started) under Klaviyo's metric and property
  names.
* group → a subscription (`traits.subscribe` true) or unsubscription (false) of the user to
  the list named by `groupId`.
* Subscriptions give each channel of the consent (`traits.consent`, else
  `traits.properties.consent`, else the `consent` setting) the user has an address for (email,
  sms) a marketing consent of SUBSCRIBED or UNSUBSCRIBED; v3 requires one, v2 subscribes without
  consent when none is given, v1 (group only, subscribe only) names the channels.
* `enforceEmailAsPrimary` identifies profiles by email and phone: userId moves to the `_id`
  property and an event with neither is refused. page and alias are not Klaviyo calls (page is
  device mode only): they are filtered.

Batching: only subscription jobs combine, per list, operation and credentials, up to 100
profiles in one job (RudderStack's limit); profile and event requests go one per event, and a
user's profile request is sent before their subscription job (per-user order).

Answers (Klaviyo has no per-item results): 2xx delivered; 429 (with `Retry-After`) and 5xx
retried; any other answer refused, with the first JSON:API error's words; a combined job
refused with 413 is judged whole, so that the router sends its jobs again one by one. A 400
to a combined subscription job whose errors all point at profiles of the job (`source.pointer`
`/data/attributes/profiles/data/<i>/…`) refuses those profiles' events only: Klaviyo applied
nothing of the job, so the others go again without them. The v1 profile create answered
otherwise than 201 or 409 fails the event with Klaviyo's words (429, 5xx or no answer: it is
tried again later).
"""

import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import quote

import msgspec
from msgspec import Raw

from engine import codec
from engine.destinations import segment
from engine.destinations.base import (
    DestinationType,
    Judgement,
    LookupFailed,
    Lookups,
    Request,
    Unsendable,
    Verdict,
    base_url,
    check_endpoint,
    for_call,
)

HOST = "https://a.klaviyo.com"
REVISIONS = {"v1": "2023-02-22", "v2": "2024-10-15", "v3": "2026-04-15"}
MAX_PROFILES = 100  # per subscription job (RudderStack's MAX_BATCH_SIZE)
_PROFILE_IMPORT = "/api/profile-import"
_PROFILES = "/api/profiles"  # v1: create (a look-up), then PATCH /api/profiles/<id>
_FIND_PROFILE = "klaviyo.profile"  # a stored request's hint: its profile id is looked up
_EVENTS = "/api/events"
_JOBS = {
    "subscribe": (
        "/api/profile-subscription-bulk-create-jobs",
        "profile-subscription-bulk-create-job",
    ),
    "unsubscribe": (
        "/api/profile-subscription-bulk-delete-jobs",
        "profile-subscription-bulk-delete-job",
    ),
}
_JOB_PATHS = frozenset(path for path, _ in _JOBS.values())
_CONSENT = {"subscribe": "SUBSCRIBED", "unsubscribe": "UNSUBSCRIBED"}
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")  # country code and number, 7 to 15 digits
_REASON = 300  # characters of Klaviyo's reason kept per event
# Where a 400 to a subscription job points at one of its profiles (v2/v3, then v1 shape).
# (Bounded: a job holds at most 1000 profiles, and a pointer is the vendor's text.)
_PROFILE_POINTER = re.compile(r"^/data/attributes/(?:profiles/data|subscriptions)/(\d{1,6})(?:/|$)")
_PUBLIC_KEY = re.compile(r"^[A-Za-z0-9]{6}$")  # a site ID, the public key of the web SDK


class KlaviyoSettings(msgspec.Struct):
    privateApiKey: str
    publicApiKey: str | None = None  # for device mode (the site's SDK): accepted, not used
    apiVersion: Literal["v1", "v2", "v3"] | None = "v1"
    listId: str | None = None
    consent: list[Literal["email", "sms"]] = []
    flattenProperties: bool = False
    enforceEmailAsPrimary: bool = False
    endpoint: str | None = None

    def __post_init__(self) -> None:
        self.privateApiKey = key = self.privateApiKey.strip()  # as pasted, spaces around
        if not key:
            raise ValueError("privateApiKey (a Klaviyo private API key, pk_…) is required")
        if any(c.isspace() for c in key):
            raise ValueError("privateApiKey must be the key alone, without spaces")
        if _PUBLIC_KEY.match(key):
            raise ValueError(
                "privateApiKey: this looks like the public key (site ID); use a private API "
                "key, pk_…"
            )
        self.apiVersion = self.apiVersion or "v1"  # RudderStack reads an absent version as v1
        if self.listId is not None:
            self.listId = self.listId.strip() or None
        check_endpoint(self.endpoint)

    @property
    def version(self) -> Literal["v1", "v2", "v3"]:
        assert self.apiVersion is not None  # (set by __post_init__)
        return self.apiVersion

    @property
    def revision(self) -> str:
        return REVISIONS[self.version]

    @property
    def legacy(self) -> bool:
        return self.version == "v1"


HELP = {
    "privateApiKey": "A private API key of the Klaviyo account (pk_…), with write access to "
    "profiles, events, lists and subscriptions.",
    "publicApiKey": "The public key (site ID) used by Klaviyo's web SDK in device mode; "
    "not used by Sluice.",
    "apiVersion": "Klaviyo API revision: v3 (2026-04-15) is current; v2 (2024-10-15); v1 "
    "(2023-02-22, RudderStack's reading of no version).",
    "listId": "The list identify calls subscribe users to when traits.properties.subscribe is "
    "set and the event names no traits.properties.listId.",
    "consent": 'Channels subscriptions give marketing consent for: ["email"], ["sms"] or both '
    "(an event's traits.consent overrides them).",
    "flattenProperties": "Send nested profile and event properties as dotted keys "
    "(address.city) instead of objects.",
    "enforceEmailAsPrimary": "Identify profiles by email and phone only: userId is sent as the "
    "_id property, and events with neither email nor phone are refused.",
    "endpoint": "Replaces https://a.klaviyo.com (a proxy, or a test server).",
}


# ---------------------------------------------------------------------------------------------
# Reading the event


def _value(value: Any) -> Any:
    """A value fit for a mapped field: non-empty text, a boolean or a number; else None."""
    if isinstance(value, str):
        return value or None
    if isinstance(value, bool | int | float | Raw):
        return value
    return None


def _first(event: dict[str, Any], paths: Sequence[str]) -> Any:
    for path in paths:
        if (value := _value(segment.dig(event, path))) is not None:
            return value
    return None


def _text(event: dict[str, Any], paths: Sequence[str]) -> str | None:
    return segment.text(_first(event, paths))


def _user_paths(key: str) -> tuple[str, ...]:
    return (f"traits.{key}", f"context.traits.{key}")


def _traits_or_properties(*keys: str) -> tuple[str, ...]:
    found = [p for key in keys for p in (f"traits.{key}", f"traits.address.{key}")]
    found += [p for key in keys for p in (f"context.traits.{key}", f"context.traits.address.{key}")]
    return (*found, *(f"properties.{key}" for key in keys))


_EMAIL = (*_user_paths("email"), "properties.email")
_PHONE = (*_user_paths("phone"), "properties.phone")
_USER_ID = ("userId", *_user_paths("userId"), *_user_paths("id"))
_FIRST_NAME = tuple(p for k in ("firstName", "firstname", "first_name") for p in _user_paths(k))
_LAST_NAME = tuple(p for k in ("lastName", "lastname", "last_name") for p in _user_paths(k))
_LOCATION: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("address1", _traits_or_properties("street")),
    ("city", _traits_or_properties("city")),
    ("region", _traits_or_properties("region", "state")),
    ("country", _traits_or_properties("country")),
    ("zip", _traits_or_properties("zip", "postalcode", "postalCode")),
    ("timezone", (*_user_paths("timezone"), "properties.timezone")),
    ("ip", ("context.ip", "request_ip")),
    ("latitude", ("latitude", "context.address.latitude", "context.location.latitude")),
    ("longitude", ("longitude", "context.address.longitude", "context.location.longitude")),
)
# Traits the profile's own fields carry: not repeated among its custom properties.
_PROFILE_TRAITS = frozenset({
    "email", "firstName", "firstname", "first_name", "lastName", "lastname", "last_name",
    "phone", "title", "organization", "city", "region", "country", "zip", "image", "timezone",
    "anonymousId", "userId", "properties", "location", "_kx", "street", "address",
})  # fmt: skip
# ... and for the v1 event profile, which names fewer of them.
_LEGACY_TRAITS = frozenset({
    "email", "firstName", "firstname", "first_name", "lastName", "lastname", "last_name",
    "phone", "title", "organization", "city", "region", "country", "zip", "image", "timezone",
    "id", "anonymousId", "userId", "properties",
})  # fmt: skip


def _traits(event: dict[str, Any]) -> dict[str, Any]:
    """Every user trait of the event: `context.traits`, then the call's own `traits`."""
    return segment.mapping(segment.context(event).get("traits")) | segment.traits(event)


def _custom(event: dict[str, Any], excluded: frozenset[str] | set[str]) -> dict[str, Any]:
    return {k: v for k, v in _traits(event).items() if k not in excluded and v is not None}


def _flat(node: dict[str, Any]) -> dict[str, Any]:
    """Nested objects as dotted keys (`a.b`), arrays of objects as `a[0].b`; arrays of plain
    values stay arrays. Iterative: events may nest deeply."""
    flat: dict[str, Any] = {}
    stack: list[tuple[str, Any]] = [(k, v) for k, v in reversed(node.items())]
    while stack:
        prefix, value = stack.pop()
        if isinstance(value, dict) and value:
            stack.extend((f"{prefix}.{k}", v) for k, v in reversed(value.items()))
        elif isinstance(value, list) and value and isinstance(value[0], dict | list):
            stack.extend((f"{prefix}[{i}]", v) for i, v in reversed(list(enumerate(value))))
        else:
            flat[prefix] = value
    return flat


def _number(value: Any, name: str) -> int | float | Raw:
    """A numeric value as sent (a Raw keeps its text), numeric text as a number."""
    if isinstance(value, int | Raw) and not isinstance(value, bool):
        return value
    number = segment.number(value)
    if number is None:
        raise Unsendable(f"{name} must be a number, not {codec.encode(value)[:40].decode()!r}")
    return number


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _phone(phone: str | None) -> str | None:
    """A phone number Klaviyo takes (E.164 once spaces, dashes and brackets are removed)."""
    if phone is not None and not _E164.match(re.sub(r"[^\d+]", "", phone)):
        raise Unsendable(
            f"phone {phone[:40]!r} is not in E.164 format (+ country code and number, "
            "e.g. +15551234567)"
        )
    return phone


def _event_name(event: dict[str, Any], *paths: str) -> str:
    for path in paths:
        name = segment.dig(event, path)
        if name is None or name == "":
            continue
        if not isinstance(name, str):
            raise Unsendable("the event name must be text")
        if name.strip():
            return name
    raise Unsendable("a track or screen call needs an event name (Klaviyo's metric)")


# ---------------------------------------------------------------------------------------------
# Requests


def _request(
    settings: KlaviyoSettings,
    path: str,
    body: dict[str, Any],
    method: str = "POST",
    hints: dict[str, str] | None = None,
) -> Request:
    headers = {
        "Authorization": f"Klaviyo-API-Key {settings.privateApiKey}",
        "Accept": "application/json",
        "Content-Type": "application/json",
        "revision": settings.revision,
    }
    url = f"{base_url(settings.endpoint, HOST)}{path}"
    return Request(method, url, headers, {}, body, hints=hints or {})


# ---------------------------------------------------------------------------------------------
# Profiles (v2, v3)


def _patch(event: dict[str, Any]) -> tuple[dict[str, Any], set[str]]:
    """`meta.patch_properties` from the event's Klaviyo options, and the traits it uses."""
    options = segment.integration(event, "Klaviyo")
    traits = segment.traits(event)
    patch: dict[str, Any] = {}
    used: set[str] = set()
    unset = options.get("fieldsToUnset")
    if isinstance(unset, list):
        patch["unset"] = unset
        used.update(k for k in unset if isinstance(k, str))
    for option, operation in (("fieldsToAppend", "append"), ("fieldsToUnappend", "unappend")):
        keys = options.get(option)
        if isinstance(keys, list):
            names = [k for k in keys if isinstance(k, str)]
            patch[operation] = {k: traits[k] for k in names if traits.get(k) is not None}
            used.update(names)
    return patch, used


def _profile_attributes(event: dict[str, Any], settings: KlaviyoSettings) -> dict[str, Any]:
    attributes: dict[str, Any] = {}
    fields: tuple[tuple[str, Any], ...] = (
        ("external_id", _text(event, _USER_ID)),
        ("anonymous_id", segment.anonymous_id(event)),
        ("email", _text(event, _EMAIL)),
        ("first_name", _first(event, _FIRST_NAME)),
        ("last_name", _first(event, _LAST_NAME)),
        ("phone_number", _phone(_text(event, _PHONE))),
        ("title", _first(event, (*_user_paths("title"), "properties.title"))),
        ("organization", _first(event, (*_user_paths("organization"), "properties.organization"))),
        ("image", _first(event, (*_user_paths("image"), "properties.image"))),
        ("_kx", _first(event, _user_paths("_kx"))),
    )
    attributes.update((name, value) for name, value in fields if value is not None)
    location = {name: v for name, paths in _LOCATION if (v := _first(event, paths)) is not None}
    if location:
        attributes["location"] = location
    if settings.enforceEmailAsPrimary:
        attributes.pop("external_id", None)
        if "email" not in attributes and "phone_number" not in attributes:
            raise Unsendable("enforceEmailAsPrimary is on and the event has no email or phone")
    return attributes


def _profile(
    event: dict[str, Any], settings: KlaviyoSettings, *, meta_inside: bool
) -> dict[str, Any]:
    """The profile document (`{type, id?, attributes, meta}`); an event's profile carries its
    `meta` among the attributes, a profile import beside them."""
    attributes = _profile_attributes(event, settings)
    patch, used = _patch(event)
    properties = _custom(event, _PROFILE_TRAITS | used)
    if settings.flattenProperties:
        properties = _flat(properties)
    if settings.enforceEmailAsPrimary and (user := _text(event, _USER_ID)) is not None:
        properties["_id"] = user
    attributes["properties"] = properties
    profile: dict[str, Any] = {"type": "profile"}
    if (profile_id := segment.external_id(event, "klaviyo-profileId")) is not None:
        profile["id"] = profile_id
    elif not any(k in attributes for k in ("external_id", "email", "phone_number", "anonymous_id")):
        raise Unsendable("the event names no user: no userId, anonymousId, email or phone")
    profile["attributes"] = attributes
    if meta_inside:
        attributes["meta"] = {"patch_properties": patch}
    else:
        profile["meta"] = {"patch_properties": patch}
    return profile


def _identify(event: dict[str, Any], settings: KlaviyoSettings, now: datetime) -> list[Request]:
    if settings.legacy:
        return _legacy_identify(event, settings)
    traits = segment.traits(event)
    options = segment.mapping(traits.get("properties"))
    subscription = None
    list_id = segment.text(options.get("listId")) or settings.listId
    if list_id is not None:  # (without a list the flag means nothing)
        subscribe = _flag(options.get("subscribe"), "traits.properties.subscribe")
        if subscribe is not None:
            subscription = _subscription(event, settings, traits, list_id, subscribe)
    profile = _profile(event, settings, meta_inside=False)
    requests = [_request(settings, _PROFILE_IMPORT, {"data": profile})]
    return requests if subscription is None else [*requests, subscription]


# ---------------------------------------------------------------------------------------------
# Profiles (v1)

# The 2023 profile's fields (RudderStack's KlaviyoIdentify mapping).
_LEGACY_FIELDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("external_id", (*_USER_ID, "anonymousId")),
    ("email", _EMAIL),
    ("first_name", _FIRST_NAME),
    ("last_name", _LAST_NAME),
    ("phone_number", _PHONE),
    ("title", (*_user_paths("title"), "properties.title")),
    ("organization", (*_user_paths("organization"), "properties.organization")),
    ("image", (*_user_paths("image"), "properties.image")),
)
_LEGACY_LOCATION: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("city", _traits_or_properties("city")),
    ("region", _traits_or_properties("region", "state")),
    ("country", _traits_or_properties("country")),
    ("zip", _traits_or_properties("zip", "postalcode", "postalCode")),
    ("timezone", (*_user_paths("timezone"), "properties.timezone")),
    ("address1", _traits_or_properties("street")),
)


def _legacy_identify(event: dict[str, Any], settings: KlaviyoSettings) -> list[Request]:
    """The profile update, its id looked up when sent (`resolve`), and the subscription."""
    attributes = {
        name: v for name, paths in _LEGACY_FIELDS if (v := _first(event, paths)) is not None
    }
    location = {
        name: v for name, paths in _LEGACY_LOCATION if (v := _first(event, paths)) is not None
    }
    if location:
        attributes["location"] = location
    properties = _custom(event, _LEGACY_TRAITS)  # (`street` too, as RudderStack sends it)
    if settings.enforceEmailAsPrimary:
        if "email" not in attributes and "phone_number" not in attributes:
            raise Unsendable("enforceEmailAsPrimary is on and the event has no email or phone")
        if (user := attributes.pop("external_id", None)) is not None:
            properties["_id"] = user
    if not any(k in attributes for k in ("external_id", "email", "phone_number")):
        raise Unsendable("the event names no user: no userId, anonymousId, email or phone")
    if properties:
        attributes["properties"] = _flat(properties) if settings.flattenProperties else properties
    body = {"data": {"type": "profile", "attributes": attributes}}
    requests = [_request(settings, _PROFILES, body, "PATCH", {_FIND_PROFILE: "create"})]
    traits = segment.traits(event)
    options = segment.mapping(traits.get("properties"))
    list_id = segment.text(options.get("listId")) or settings.listId
    if list_id is not None and _flag(options.get("subscribe"), "traits.properties.subscribe"):
        requests.append(_legacy_subscription(event, settings, traits, list_id, True))
    return requests


async def resolve(request: Request, settings: KlaviyoSettings, lookups: Lookups) -> Request:
    """A v1 profile update completed with the profile's id: the profile is created (a write
    at Klaviyo, made again on every attempt: a create that finds the profile answers 409 with
    its id). Other requests are sent as stored."""
    if _FIND_PROFILE not in request.hints:
        return request
    create = Request("POST", request.url, request.headers, request.params, request.body)
    looked = await lookups.ask(create, writes=True)
    profile_id = _profile_id(looked.status, looked.body)
    data = {**segment.mapping(segment.mapping(request.body).get("data")), "id": profile_id}
    url = f"{request.url}/{quote(profile_id, safe='')}"
    return Request("PATCH", url, request.headers, request.params, {"data": data})


def _profile_id(status: int, answer: Any) -> str:
    """The profile's id from the create's answer: a new profile's (201), an existing one's
    (409). Any other refusal fails the event with Klaviyo's words."""
    answered = f"Klaviyo answered HTTP {status} to creating the profile"
    if status == 429 or status >= 500:
        raise LookupFailed(answered)
    errors = segment.mapping(answer).get("errors")
    errors = [e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []
    if 200 <= status < 300:
        found = segment.text(segment.dig(answer, "data.id"))
    elif status == 409:
        found = (
            segment.text(segment.dig(errors[0], "meta.duplicate_profile_id")) if errors else None
        )
    else:
        reason = _reason(errors[0]) if errors else None
        raise Unsendable(f"{answered}: {reason}" if reason else answered)
    if found is None:  # (RudderStack retries this too)
        raise LookupFailed(f"{answered}, naming no profile id")
    return found


# ---------------------------------------------------------------------------------------------
# Subscriptions


def _flag(value: Any, name: str) -> bool | None:
    """A subscribe flag: true or false (RudderStack's text spellings too), None when absent."""
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise Unsendable(f"{name} must be true or false")


def _channels(value: Any) -> list[str]:
    items = value if isinstance(value, list) else [value]
    return [c for c in items if c in ("email", "sms")]


def _consent(traits: dict[str, Any], settings: KlaviyoSettings) -> list[str] | None:
    """The channels a subscription is about: the event's, else the settings' (None: none)."""
    for value in (traits.get("consent"), segment.mapping(traits.get("properties")).get("consent")):
        if value is not None and value != [] and value != "":
            return _channels(value)
    return list(settings.consent) or None


def _subscription(
    event: dict[str, Any],
    settings: KlaviyoSettings,
    traits: dict[str, Any],
    list_id: str,
    subscribe: bool,
) -> Request:
    if settings.legacy:
        return _legacy_subscription(event, settings, traits, list_id, subscribe)
    operation = "subscribe" if subscribe else "unsubscribe"
    email, phone = _text(event, _EMAIL), _text(event, _PHONE)
    attributes: dict[str, Any] = {}
    if email is not None:
        attributes["email"] = email
    if phone is not None:
        attributes["phone_number"] = phone
    consent = _consent(traits, settings)
    # v2 gives no consent when unsubscribing (the list membership alone goes) or when none is
    # set; v3 always states it, and so needs a channel the user has an address for.
    if settings.apiVersion == "v3" or (subscribe and consent):
        subscriptions = {}
        for channel, address in (("email", email), ("sms", phone)):
            if channel in (consent or []) and address is not None:
                subscriptions[channel] = {"marketing": {"consent": _CONSENT[operation]}}
        if subscriptions:
            attributes["subscriptions"] = subscriptions
        elif settings.apiVersion == "v3":
            raise Unsendable(
                "no consent channel (consent: email, sms) matches an email or phone of the event"
            )
    profile: dict[str, Any] = {"type": "profile"}
    profile_id = segment.external_id(event, "klaviyo-profileId") if subscribe else None
    if profile_id is not None:
        profile["id"] = profile_id
    elif email is None and phone is None:
        raise Unsendable(f"an email or phone is needed to {operation} a user to a list")
    profile["attributes"] = attributes
    path, kind = _JOBS[operation]
    relationships = {"list": {"data": {"type": "list", "id": list_id}}}
    body = {
        "data": {
            "type": kind,
            "attributes": {"profiles": {"data": [profile]}},
            "relationships": relationships,
        }
    }
    return _request(settings, path, body)


def _legacy_subscription(
    event: dict[str, Any],
    settings: KlaviyoSettings,
    traits: dict[str, Any],
    list_id: str,
    subscribe: bool,
) -> Request:
    """The 2023-02-22 subscription job: subscribe only, the channels named."""
    if not subscribe:
        raise Unsendable("apiVersion v1 only subscribes: set apiVersion v3 (or v2) to unsubscribe")
    entry: dict[str, Any] = {}
    if (email := _text(event, _EMAIL)) is not None:
        entry["email"] = email
    if (phone := _text(event, _PHONE)) is not None:
        entry["phone_number"] = phone
    if not entry:
        raise Unsendable("an email or phone is needed to subscribe a user to a list")
    consent = segment.mapping(traits.get("properties")).get("consent") or settings.consent
    if consent:
        channels = _channels(consent)
        entry["channels"] = {channel: ["MARKETING"] for channel in ("email", "sms")
                             if channel in channels}  # fmt: skip
    attributes = {"list_id": list_id, "subscriptions": [entry]}
    body = {"data": {"type": _JOBS["subscribe"][1], "attributes": attributes}}
    return _request(settings, _JOBS["subscribe"][0], body)


def _group(event: dict[str, Any], settings: KlaviyoSettings, now: datetime) -> list[Request]:
    list_id = segment.text(event.get("groupId"))
    if list_id is None:
        raise Unsendable("groupId is a required field for group events (the Klaviyo list id)")
    traits = segment.traits(event)
    subscribe = _flag(traits.get("subscribe"), "traits.subscribe")
    if subscribe is None:
        raise Unsendable("a group call needs traits.subscribe: true or false")
    return [_subscription(event, settings, traits, list_id, subscribe)]


# ---------------------------------------------------------------------------------------------
# Events

_EVENT_EXCLUDED = frozenset(
    {"event", "email", "phone", "revenue", "total", "value", "value_currency", "currency"}
)


def _amount(event: dict[str, Any], *keys: str) -> int | float | Raw | None:
    properties = segment.properties(event)
    for key in keys:
        if properties.get(key) is not None:
            return _number(properties[key], f"properties.{key}")
    return None


def _track(event: dict[str, Any], settings: KlaviyoSettings, now: datetime) -> list[Request]:
    if settings.legacy:
        return [_legacy_track(event, settings)]
    name = _event_name(event, "event", "name")
    properties = {k: v for k, v in segment.properties(event).items() if k not in _EVENT_EXCLUDED}
    if settings.flattenProperties:
        properties = _flat(properties)
    attributes: dict[str, Any] = {"properties": properties}
    if (value := _amount(event, "revenue", "total", "value")) is not None:
        attributes["value"] = value
    if (currency := segment.text(segment.properties(event).get("currency"))) is not None:
        attributes["value_currency"] = currency
    when = segment.event_time(event) or segment.event_time({"timestamp": event.get("receivedAt")})
    if when is not None:
        attributes["time"] = _iso(when)
    attributes["profile"] = {"data": _profile(event, settings, meta_inside=True)}
    attributes["metric"] = {"data": {"type": "metric", "attributes": {"name": name}}}
    if (message_id := segment.text(event.get("messageId"))) is not None:
        attributes["unique_id"] = message_id
    return [_request(settings, _EVENTS, {"data": {"type": "event", "attributes": attributes}})]


# v1 e-commerce events: Klaviyo's metric names, and its property names for theirs.
_ECOMMERCE = {
    "product viewed": "Viewed Product",
    "product clicked": "Viewed Product",
    "product added": "Added to Cart",
    "checkout started": "Started Checkout",
}
_ECOMMERCE_FIELDS: dict[str, tuple[tuple[str, str], ...]] = {
    "Viewed Product": (
        ("ProductName", "name"), ("ProductID", "product_id"), ("SKU", "sku"),
        ("ImageURL", "image_url"), ("URL", "url"), ("Brand", "brand"), ("Price", "price"),
        ("CompareAtPrice", "compare_at_price"), ("Categories", "categories"),
    ),
    "Added to Cart": (
        ("$value", "value"), ("AddedItemProductName", "name"),
        ("AddedItemProductID", "product_id"), ("AddedItemSKU", "sku"),
        ("AddedItemImageURL", "image_url"), ("AddedItemURL", "url"),
        ("AddedItemPrice", "price"), ("AddedItemQuantity", "quantity"),
        ("AddedItemCategories", "categories"), ("ItemNames", "item_names"),
        ("CheckoutURL", "checkout_url"),
    ),
    "Started Checkout": (
        ("$event_id", "order_id"), ("$value", "value"), ("Categories", "categories"),
        ("CheckoutURL", "checkout_url"), ("ItemNames", "item_names"),
    ),
}  # fmt: skip
_ITEM_FIELDS = (
    ("ProductID", "product_id"), ("SKU", "sku"), ("ProductName", "name"),
    ("Quantity", "quantity"), ("ItemPrice", "price"), ("RowTotal", "row_total"),
    ("ProductURL", "url"), ("ImageURL", "image_url"), ("ProductCategories", "categories"),
)  # fmt: skip
_ECOMMERCE_EXCLUDED = frozenset({
    "name", "product_id", "sku", "image_url", "url", "brand", "price", "compare_at_price",
    "quantity", "categories", "products", "product_names", "order_id", "value",
    "checkout_url", "item_names", "items",
})  # fmt: skip
_LEGACY_PROFILE: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("$email", _EMAIL),
    ("$first_name", _FIRST_NAME),
    ("$last_name", _LAST_NAME),
    ("$phone_number", _PHONE),
    ("$city", _traits_or_properties("city")),
    ("$region", _traits_or_properties("region", "state")),
    ("$country", _traits_or_properties("country")),
    ("$zip", _traits_or_properties("zip", "postalcode", "postalCode")),
    ("$image", (*_user_paths("image"), "properties.image")),
    ("$address1", _traits_or_properties("street")),
)


def _renamed(source: dict[str, Any], fields: Sequence[tuple[str, str]]) -> dict[str, Any]:
    found = {}
    for name, key in fields:
        value = source.get(key)
        if value is not None:
            found[name] = _number(value, key) if name == "$value" else value
    return found


def _legacy_properties(event: dict[str, Any], name: str) -> tuple[str, dict[str, Any]]:
    """The metric name and the properties of a v1 event (e-commerce ones renamed)."""
    properties = segment.properties(event)
    metric = _ECOMMERCE.get(name.strip().lower())
    if metric is None or not properties:
        excluded = {"email", "phone", "revenue", "total", "value"}
        return name, {k: v for k, v in properties.items() if k not in excluded}
    mapped = _renamed(properties, _ECOMMERCE_FIELDS[metric])
    products = properties.get("items") or properties.get("products")
    items = [_renamed(p, _ITEM_FIELDS) for p in products if isinstance(p, dict)] if isinstance(
        products, list
    ) else []  # fmt: skip
    if items := [item for item in items if item]:
        mapped["items"] = items
    extra = {k: v for k, v in properties.items() if k not in _ECOMMERCE_EXCLUDED}
    return metric, mapped | extra


def _legacy_track(event: dict[str, Any], settings: KlaviyoSettings) -> Request:
    name = _event_name(event, "event", "properties.event", "properties.name", "name")
    metric, properties = _legacy_properties(event, name)
    attributes: dict[str, Any] = {"metric": {"name": metric}}
    if metric == name and (value := _amount(event, "revenue", "total", "value")):
        attributes["value"] = value
    attributes["properties"] = _flat(properties) if settings.flattenProperties else properties
    profile = {
        name: v for name, paths in _LEGACY_PROFILE if (v := _first(event, paths)) is not None
    }
    consent = _first(event, ("context.traits.consent", "traits.consent", "properties.consent"))
    if consent is not None:
        profile["$consent"] = consent
    user = _text(event, (*_USER_ID, "anonymousId"))
    if settings.enforceEmailAsPrimary:
        if "$email" not in profile and "$phone_number" not in profile:
            raise Unsendable("enforceEmailAsPrimary is on and the event has no email or phone")
        if user is not None:
            profile["_id"] = user
    elif user is not None:
        profile["$id"] = user
    if not profile:
        raise Unsendable("the event names no user: no userId, anonymousId, email or phone")
    profile |= _custom(event, _LEGACY_TRAITS | {"street", "address", "consent"})
    attributes["profile"] = _flat(profile) if settings.flattenProperties else profile
    timestamp = segment.event_time({"timestamp": event.get("timestamp")})
    if timestamp is not None:
        attributes["time"] = _iso(timestamp)
    return _request(settings, _EVENTS, {"data": {"type": "event", "attributes": attributes}})


# ---------------------------------------------------------------------------------------------
# The plug-in

_CALLS: dict[str, Callable[[dict[str, Any], KlaviyoSettings, datetime], list[Request]]] = {
    "identify": _identify,
    "track": _track,
    "screen": _track,
    "group": _group,
}


def map_event(event: dict[str, Any], settings: KlaviyoSettings, now: datetime) -> list[Request]:
    call = for_call(event, _CALLS)
    return call(event, settings, now)


def _list_id(request: Request) -> str | None:
    data = segment.mapping(segment.mapping(request.body).get("data"))
    listed = segment.dig(data, "relationships.list.data.id") or segment.dig(
        data, "attributes.list_id"
    )
    return segment.text(listed)


def batch_key(request: Request) -> str | None:
    """Subscription jobs combine per list, operation (the URL), revision and credentials;
    profile and event requests each go alone."""
    if not any(request.url.endswith(path) for path in _JOB_PATHS):
        return None
    list_id = _list_id(request)
    if list_id is None:
        return None
    headers = request.headers
    return "\n".join((request.url, headers.get("revision", ""), headers.get("Authorization", ""),
                      list_id))  # fmt: skip


def _entries(request: Request) -> list[Any]:
    """The profiles a subscription job carries (v2/v3 `profiles.data`, v1 `subscriptions`)."""
    attributes = segment.mapping(segment.dig(request.body, "data.attributes"))
    entries = segment.dig(attributes, "profiles.data")
    if entries is None:
        entries = attributes.get("subscriptions")
    return entries if isinstance(entries, list) else []


def combine(requests: Sequence[Request]) -> Request:
    """One subscription job listing every request's profiles, in job order."""
    first = requests[0]
    entries = [entry for request in requests for entry in _entries(request)]
    data = dict(first.body["data"])
    attributes = dict(data["attributes"])
    if "subscriptions" in attributes:
        attributes["subscriptions"] = entries
    else:
        attributes["profiles"] = {"data": entries}
    data["attributes"] = attributes
    return Request(first.method, first.url, first.headers, first.params, {"data": data})


def classify(status: int, body: bytes, count: int) -> Verdict | Sequence[Judgement]:
    if 200 <= status < 300:
        return Verdict.DELIVERED
    if status == 429 or 500 <= status < 600:
        return Verdict.RETRY
    if status == 413 and count > 1:
        return Verdict.ABORT  # judged whole: the router then sends the jobs one by one
    errors = _errors(body)
    if status == 400 and (judged := _pointed(errors, count)) is not None:
        return judged
    reason = _reason(errors[0]) if errors else None
    return Verdict.ABORT if reason is None else [Judgement(Verdict.ABORT, reason)] * count


def _errors(body: bytes) -> list[dict[str, Any]]:
    """The JSON:API `errors` of an answer."""
    try:
        answer = codec.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError):
        return []
    errors = answer.get("errors") if isinstance(answer, dict) else None
    return [e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []


def _reason(error: dict[str, Any]) -> str | None:
    words = segment.text(error.get("detail")) or segment.text(error.get("title"))
    if words is None:
        return segment.text(error.get("code"))
    pointer = segment.text(segment.mapping(error.get("source")).get("pointer"))
    return (f"{words} ({pointer})" if pointer else words)[:_REASON]


def _pointed(errors: list[dict[str, Any]], count: int) -> list[Judgement] | None:
    """A refused job whose errors all name profiles in it: theirs refused, the others sent
    again. None when any error is about the job as a whole (or names no profile of it)."""
    refused: dict[int, str] = {}
    for error in errors:
        pointer = segment.text(segment.mapping(error.get("source")).get("pointer")) or ""
        found = _PROFILE_POINTER.match(pointer)
        if found is None or int(found[1]) >= count:
            return None
        refused.setdefault(int(found[1]), _reason(error) or "refused by Klaviyo")
    if not refused:
        return None
    again = "sent again: Klaviyo refused the job for another profile in it"
    return [
        Judgement(Verdict.ABORT, refused[i]) if i in refused else Judgement(Verdict.RETRY, again)
        for i in range(count)
    ]


KLAVIYO = DestinationType(
    name="klaviyo",
    title="Klaviyo",
    category="Marketing",
    description="Email and SMS marketing: profiles, events, list subscriptions.",
    settings=KlaviyoSettings,
    map=map_event,
    supported_types=frozenset(_CALLS),
    secret_keys=("privateApiKey",),
    help=HELP,
    batch_size=MAX_PROFILES,
    batch_bytes=4_000_000,  # Klaviyo takes 5 MB bodies; stored requests weigh a little more
    batch_key=batch_key,
    combine=combine,
    classify=classify,
    resolve=resolve,
)
