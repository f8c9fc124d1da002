"""HubSpot: contacts and custom behavioural events through HubSpot's CRM v3 API (`apiVersion:
newApi`, the default) or its legacy v1 API (`legacyApi`), with RudderStack's `hs` keys.

Hosts: `https://api.hubapi.com`; the legacy event pixel goes to `https://track.hubspot.com`.
The `endpoint` setting replaces both (a proxy, a test server). Authentication
(`authorizationType`): `newPrivateAppApi` (the default when an `accessToken` is set) sends
`Authorization: Bearer <accessToken>`; `legacyApiKey` sends the `hapikey=<apiKey>` query
parameter on every call, look-ups included (HubSpot has retired API keys; they are kept for
RudderStack's configs).

What an event becomes (page, screen, group and alias are no HubSpot calls: filtered):
* Contact properties (identify, and legacy track) are the standard ones — `email`, `firstname`,
  `lastname`, `phone`, `address`, `city`, `state`, `country`, `zip` (from `address.*`) and
  `company` (from `company.name`), read in `traits`, `context.traits`, then `properties` — and
  every other trait (of `traits`, else `context.traits`, else the properties) whose name,
  lower-cased with spaces and dots made `_`, is a contact property of the account. Those are
  typed against the account's properties (`GET /properties/v1/contacts/properties`, asked only
  when such traits exist and kept 5 minutes): to a string property an object goes as JSON text
  and other values as text; a date property gets the date's UTC midnight in milliseconds (a
  date out of any calendar refuses the event); an object for a bool or anything but a number
  for a number property refuses the event. A null trait clears the property (`""`).
  `hs_object_id` is HubSpot's own and never sent.
* identify, newApi: an `email` trait that is no email address refuses the event; `lookupField`
  names the property that identifies the contact (its value is read at the event's top level,
  then in `traits`, `context.traits`, `properties`; else the email is used). The request is
  completed when it is sent (`resolve`, asked again on every attempt): with a
  `context.externalId` of type `hsContactId` the contact is updated; else, when the field is a
  unique-value property (`GET /crm/v3/properties/contacts`, kept 5 minutes) the contact is
  upserted `{id: <value>, idProperty: <field>, properties, objectWriteTraceId}`; else HubSpot
  is searched (`POST /crm/v3/objects/contacts/search`, `<field> EQ <value>`, never kept: a
  contact created a moment ago must be found) and the contact created (none found) or updated
  (one found; more than one refuses the event). The three go to
  `/crm/v3/objects/contacts/batch/{upsert,create,update}` `{inputs: […]}`.
* identify, legacyApi: `POST /contacts/v1/contact/batch/` with a JSON array of
  `{email, properties: [{property, value}]}`; an identify without an email trait is refused.
* track, newApi: `POST /events/v3/send {eventName, email | utk | objectId, occurredAt,
  properties}`: the event name must be one of `hubspotEvents` (compared trimmed and without
  case), which gives the HubSpot event name and renames properties (`eventProperties`
  from → to; only those named are sent, with `hs_city`, `hs_country`, `hs_device_name`,
  `hs_asset_*`, `hs_element_*` and `hs_campaign_id` read from the event); the email is read in
  the traits, the properties, else the first `context.externalId` of identifier type email.
  One event per request.
* track, legacyApi: `GET https://track.hubspot.com/v1/event?_a=<hubID>&_n=<event>&_m=<revenue,
  value or total>&id=<externalId hubspotId>&<contact properties>` (no `hapikey`: the hub id
  names the account; `hubID` is needed); no trait replaces `_a`, `_n`, `_m` or `id`.

What a request needs to learn from HubSpot travels in the stored request, a draft that `resolve`
completes: identify drafts are `POST /crm/v3/objects/contacts` (newApi) or the legacy batch
address, their body holding the mapped properties and the traits still to type (`traits`), their
`hints` (stored, never sent) the contact's id or its lookup property, value and trace id; a
legacy track draft holds its traits to type as a body. A completed request keeps its hints, by
which `combine` merges creates for one lookup value. Look-ups go to the host, with the
credentials, of the destination's settings at the time they are made.

Batching: up to 100 contacts per request (HubSpot's limit for the CRM batch endpoints; the legacy
endpoint takes 1000, and gets 100 too), of one endpoint and one credential. Inputs for the same
contact (same `idProperty`/`id` for upsert, same id for update, same lookup value — else email —
for create, same email for the legacy endpoint) are merged into one, later values winning:
HubSpot refuses a batch naming a contact twice, and two creates for one lookup value would make
two contacts. The jobs merged share the input's outcome. Tracks are never batched.

Answers: 2xx delivered, but a CRM batch answer with neither `results` nor `errors` refuses the
batch (HubSpot took nothing). A 207 (or any 2xx with `errors`) is a partial success: the inputs
its errors name by `objectWriteTraceId` (upserts carry one of Sluice's own: the messageId,
made unique within the request) or by `context.ids` (updates) are refused with HubSpot's
message, the others were taken; errors that name no input, with no results, refuse all. 429
(`TEN_SECONDLY_ROLLING` and the daily limit) and 5xx are retried; other 4xx are final, with
HubSpot's `category` and `message`. A batch of several jobs refused whole with a 400 (one bad
input refuses them all) or a 409 is sent again job by job (`split_on`), so that only the bad one
fails. A 409 to a create of one contact (created since the search: HubSpot's search index
trails its writes) is retried, and the next attempt's search finds it and updates it. Events
carry no dedup id: an event sent again after a lost answer is recorded twice (contact writes are
idempotent).
"""

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import msgspec
from msgspec import Raw

from engine.destinations import segment
from engine.destinations.base import (
    DestinationType,
    Judgement,
    Lookups,
    Request,
    Unsendable,
    Verdict,
    base_url,
    check_endpoint,
    for_call,
    json_answer,
)

API = "https://api.hubapi.com"
TRACK = "https://track.hubspot.com"
PROPERTY_TYPES = "/properties/v1/contacts/properties"
UNIQUE = "/crm/v3/properties/contacts"
SEARCH = "/crm/v3/objects/contacts/search"
CONTACTS = "/crm/v3/objects/contacts"  # a newApi identify's draft; its batches are below it
BATCH = "/crm/v3/objects/contacts/batch/"  # + upsert, create or update
EVENTS = "/events/v3/send"
LEGACY_BATCH = "/contacts/v1/contact/batch/"
LEGACY_TRACK = "/v1/event"
MAX_INPUTS = 100
# Statuses at which HubSpot refuses a whole batch for one input's sake: a bad value (400), a
# contact that exists already (409, a create).
SPLIT_ON = frozenset({400, 409})
KEPT = 300.0  # seconds an account's property definitions are reused
# A draft's hints (stored with it, never sent): the contact's HubSpot id, or the property that
# identifies it, its value and the objectWriteTraceId to give an upsert.
CONTACT, FIELD, VALUE, TRACE = "contact", "field", "value", "trace"
TRACE_LENGTH = 64  # characters of a messageId kept as objectWriteTraceId
_JSON = "application/json"
_REASON = 300  # characters of HubSpot's words kept in an error
_SYSTEM = frozenset({"hs_object_id"})  # properties HubSpot maintains itself
_PIXEL = frozenset({"_a", "_n", "_m", "id", "hapikey"})  # the legacy event's own parameters
_EMAIL = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+"
    r"[A-Za-z]{2,63}$"
)
_SPACES = re.compile(r"\s+")
_TRAIT_ROOTS = (("traits",), ("context", "traits"), ("properties",))

HELP = {
    "authorizationType": "newPrivateAppApi: a private app's access token; legacyApiKey: an API "
    "key (retired by HubSpot).",
    "accessToken": "The private app's access token (Settings → Integrations → Private Apps).",
    "apiKey": "The legacy API key, sent as the hapikey parameter (legacyApiKey only).",
    "hubID": "Your HubSpot account's hub id: needed by the legacy API's events.",
    "apiVersion": "newApi uses the CRM v3 API (contacts, custom events); legacyApi the v1 API.",
    "lookupField": "The contact property that identifies a contact on identify (usually email).",
    "hubspotEvents": "Track events to send: the event name, the HubSpot event's internal name, "
    "and properties to rename (newApi).",
    "doAssociation": "RudderStack's reverse-ETL associations: accepted, not used by Sluice.",
    "endpoint": "Replaces HubSpot's base URLs (a proxy or a test server); paths are kept.",
}


class EventProperty(msgspec.Struct):
    """One property of a track event and the HubSpot event property it becomes."""

    from_: str = msgspec.field(default="", name="from")
    to: str = ""


class HubspotEvent(msgspec.Struct):
    """A track event sent to HubSpot as a custom behavioural event."""

    rsEventName: str = ""
    hubspotEventName: str = ""
    eventProperties: list[EventProperty] = []


class HubSpotSettings(msgspec.Struct):
    authorizationType: Literal["newPrivateAppApi", "legacyApiKey"] | None = None
    accessToken: str | None = None
    apiKey: str | None = None
    hubID: str | int | None = None
    apiVersion: Literal["newApi", "legacyApi"] | None = "newApi"
    lookupField: str | None = None
    hubspotEvents: list[HubspotEvent] = []
    doAssociation: bool = False  # RudderStack's reverse ETL: not used
    endpoint: str | None = None

    def __post_init__(self) -> None:
        self.accessToken = (self.accessToken or "").strip() or None
        self.apiKey = (self.apiKey or "").strip() or None
        if self.authorizationType is None:  # (a key alone means a legacy one)
            legacy = self.apiKey is not None and self.accessToken is None
            self.authorizationType = "legacyApiKey" if legacy else "newPrivateAppApi"
        if self.private_app and self.accessToken is None:
            raise ValueError("accessToken is required: your private app's access token")
        if not self.private_app and self.apiKey is None:
            raise ValueError("apiKey is required with authorizationType legacyApiKey")
        for name in ("accessToken", "apiKey"):
            value = getattr(self, name)
            if value is not None and any(c.isspace() for c in value):
                raise ValueError(f"{name} must be the key alone, without spaces")
        self.hubID = str(self.hubID).strip() if self.hubID not in (None, "") else None
        self.apiVersion = self.apiVersion or "newApi"
        self.lookupField = (self.lookupField or "").strip() or None
        check_endpoint(self.endpoint)

    @property
    def private_app(self) -> bool:
        return self.authorizationType == "newPrivateAppApi"

    @property
    def legacy(self) -> bool:
        return self.apiVersion == "legacyApi"


# ---------------------------------------------------------------------------------------------
# Addresses and credentials


def _api(settings: HubSpotSettings) -> str:
    return base_url(settings.endpoint, API)


def _auth(settings: HubSpotSettings) -> tuple[dict[str, str], dict[str, str]]:
    """The headers and query parameters that authenticate a call."""
    if settings.private_app:
        return {"Authorization": f"Bearer {settings.accessToken}"}, {}
    return {}, {"hapikey": settings.apiKey or ""}


def _post(settings: HubSpotSettings, url: str, body: Any) -> Request:
    headers, params = _auth(settings)
    return Request("POST", url, {"Content-Type": _JSON, **headers}, params, body)


# ---------------------------------------------------------------------------------------------
# Reading the event


def _at(event: dict[str, Any], path: Sequence[str]) -> Any:
    node: Any = event
    for key in path:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node


def _first(event: dict[str, Any], *paths: str) -> Any:
    """The first value present (not null) at any of the dotted `paths`."""
    for path in paths:
        if (value := _at(event, path.split("."))) is not None:
            return value
    return None


def _in_traits(event: dict[str, Any], *names: str) -> Any:
    """The first of `names` in `traits`, then `context.traits`, then `properties`."""
    paths = [".".join((*root, name)) for root in _TRAIT_ROOTS for name in names]
    return _first(event, *paths)


def _traits(event: dict[str, Any]) -> dict[str, Any]:
    """The traits that become contact properties: `traits`, else `context.traits`, else the
    properties (RudderStack's rule)."""
    return segment.traits(event) or segment.properties(event)


def _paths(roots: Sequence[str], names: Sequence[str]) -> list[str]:
    return [f"{root}.{name}" for root in roots for name in names]


_FIRST = (*_paths(("traits", "context.traits"), ("firstName", "firstname", "first_name")),
          "properties.firstname")  # fmt: skip
_LAST = (*_paths(("traits", "context.traits"), ("lastName", "lastname", "last_name")),
         "properties.lastname")  # fmt: skip

# The standard contact properties and where each is read.
_STANDARD: dict[str, Callable[[dict[str, Any]], Any]] = {
    "email": lambda e: _in_traits(e, "email"),
    "firstname": lambda e: _first(e, *_FIRST),
    "lastname": lambda e: _first(e, *_LAST),
    "phone": lambda e: _in_traits(e, "phone"),
    "address": lambda e: _in_traits(e, "address.street"),
    "city": lambda e: _in_traits(e, "address.city"),
    "country": lambda e: _in_traits(e, "address.country"),
    "state": lambda e: _in_traits(e, "address.state"),
    "zip": lambda e: _in_traits(e, "address.postalcode"),
    "company": lambda e: _in_traits(e, "company.name"),
}


def _properties(event: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The standard properties the event gives, and the other traits, which become properties
    once the account's property types say which exist (`_typed`)."""
    standard = {
        name: value for name, read in _STANDARD.items() if (value := read(event)) is not None
    }
    rest = {k: v for k, v in _traits(event).items() if not _truthy(standard.get(k))}
    return standard, rest


def _truthy(value: Any) -> bool:
    return value not in (None, "", 0, False)


def _lookup(event: dict[str, Any], field: str) -> tuple[str, str] | None:
    """The property identifying the contact and its value: `field`, else the email; each read
    at the event's top level (a dotted path), then in the traits and the properties."""
    for name in (field, "email"):
        found = segment.text(_first(event, name))
        for root in _TRAIT_ROOTS:
            if found is None:
                found = segment.text(segment.mapping(_at(event, root)).get(name))
        if found is not None:
            return name, found
    return None


def _trace(event: dict[str, Any]) -> str:
    return (segment.text(event.get("messageId")) or "")[:TRACE_LENGTH]


def _as_param(value: Any) -> str:
    """A property as a query parameter's text."""
    if isinstance(value, dict | list):
        return segment.json_text(value)
    return segment.text(value) or ""


# ---------------------------------------------------------------------------------------------
# identify


def _identify(event: dict[str, Any], settings: HubSpotSettings, now: datetime) -> list[Request]:
    email = segment.traits(event).get("email")
    if email not in (None, "") and (not isinstance(email, str) or not _EMAIL.match(email)):
        raise Unsendable(f"the email trait {segment.json_text(email)[:100]} is no email address")
    standard, rest = _properties(event)
    if settings.legacy:
        if email in (None, ""):
            raise Unsendable("the legacy API identifies contacts by email: the identify has none")
        url = f"{_api(settings)}{LEGACY_BATCH}"
        return [_post(settings, url, {"email": email, "properties": standard, "traits": rest})]
    if settings.lookupField is None:
        raise Unsendable("set lookupField (usually email) in the destination's settings")
    draft = _post(settings, f"{_api(settings)}{CONTACTS}", {"properties": standard, "traits": rest})
    contact = segment.external_id(event, "hsContactId")
    if contact is not None:
        return [msgspec.structs.replace(draft, hints={CONTACT: contact})]
    found = _lookup(event, settings.lookupField)
    if found is None:
        raise Unsendable(
            f"the identify has no {settings.lookupField!r} (the lookupField) and no email"
            " to find the contact by"
        )
    hints = {FIELD: found[0], VALUE: found[1], TRACE: _trace(event)}
    return [msgspec.structs.replace(draft, hints=hints)]


# ---------------------------------------------------------------------------------------------
# track

_TRACK_PROPERTIES = {
    "hs_asset_description": ("properties.assetDescription", "properties.hsAssetDescription"),
    "hs_asset_type": ("properties.assetType", "properties.hsAssetType"),
    "hs_campaign_id": ("properties.campaignId",),
    "hs_city": ("traits.address.city", "context.traits.address.city", "properties.address.city"),
    "hs_country": tuple(_paths(("traits", "context.traits", "properties"), ("address.country",))),
    "hs_device_name": ("context.device.name",),
    "hs_element_class": ("properties.elementClass", "properties.hsElementClass"),
    "hs_element_id": ("properties.elementId", "properties.hsElementId"),
}


def _track(event: dict[str, Any], settings: HubSpotSettings, now: datetime) -> list[Request]:
    name = event.get("event")
    if not isinstance(name, str) or not name.strip():
        raise Unsendable("the track has no event name")
    return [_track_v1(event, settings, name) if settings.legacy else _track_v3(event, settings)]


def _track_v3(event: dict[str, Any], settings: HubSpotSettings) -> Request:
    mapped = _mapped_event(settings, str(event["event"]))
    properties: dict[str, Any] = {}
    for prop in mapped.eventProperties:
        if prop.from_ and prop.to:
            value = _at(segment.properties(event), prop.from_.split("."))
            if value not in (None, "", {}, []):
                properties[prop.to] = value
    for key, paths in _TRACK_PROPERTIES.items():
        if (value := _first(event, *paths)) is not None:
            properties[key] = value
    body = {
        "utk": _in_traits(event, "utk"),
        "email": _in_traits(event, "email") or _email_id(event),
        "occurredAt": _first(event, "properties.occurred_at", "timestamp", "originalTimestamp"),
        "objectId": _in_traits(event, "objectId"),
        "eventName": mapped.hubspotEventName.strip(),
        "properties": properties,
    }
    if not (body["email"] or body["utk"] or body["objectId"]):
        raise Unsendable(
            "a HubSpot event names its contact by an email, utk or objectId (in the traits or"
            " the properties): the track has none"
        )
    url = f"{_api(settings)}{EVENTS}"
    return _post(settings, url, {k: v for k, v in body.items() if v is not None})


def _mapped_event(settings: HubSpotSettings, name: str) -> HubspotEvent:
    if not settings.hubspotEvents:
        raise Unsendable("no track event is mapped to a HubSpot event: fill in hubspotEvents")
    wanted = name.strip().lower()
    for mapped in settings.hubspotEvents:
        if mapped.rsEventName.strip().lower() == wanted and mapped.hubspotEventName.strip():
            return mapped
    raise Unsendable(f"the event {wanted[:100]!r} is not in hubspotEvents: add it to send it")


def _email_id(event: dict[str, Any]) -> str | None:
    """The first `context.externalId` whose identifier type is email (reverse-ETL events)."""
    entries = segment.context(event).get("externalId")
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, dict) and entry.get("identifierType") == "email":
            return segment.text(entry.get("id"))
    return None


def _track_v1(event: dict[str, Any], settings: HubSpotSettings, name: str) -> Request:
    if settings.hubID is None:
        raise Unsendable("set hubID in the destination's settings: the legacy API needs it")
    revenue = next(
        (
            v
            for k in ("revenue", "value", "total")
            if _truthy(v := segment.properties(event).get(k))
        ),
        None,
    )
    standard, rest = _properties(event)
    params = {
        "_a": str(settings.hubID),
        "_n": name,
        "_m": _as_param(revenue) if revenue is not None else None,
        "id": segment.external_id(event, "hubspotId"),
        **{k: _as_param(v) for k, v in standard.items() if k not in _SYSTEM},
    }
    headers = _auth(settings)[0]  # (the hub id names the account: no hapikey)
    url = f"{base_url(settings.endpoint, TRACK)}{LEGACY_TRACK}"
    kept = {k: v for k, v in params.items() if v is not None}
    return Request("GET", url, headers, kept, {"traits": rest} if rest else None)


# ---------------------------------------------------------------------------------------------
# Completing drafts with HubSpot's answers (resolve)


async def resolve(request: Request, settings: HubSpotSettings, lookups: Lookups) -> Request:
    """The request to send: a draft completed with the account's property types and the
    contact's address (upsert, create or update). Look-ups use the destination's settings."""
    body = request.body if isinstance(request.body, dict) else None
    if body is None or "traits" not in body:
        return request  # (a track: complete as stored)
    asking = _Asking(settings, lookups)
    typed = await _typed(body["traits"], asking)
    properties = {**segment.mapping(body.get("properties")), **typed}
    properties = {k: v for k, v in properties.items() if k not in _SYSTEM}
    if request.method == "GET":  # a legacy track: its own parameters are not the traits'
        traits = {k: _as_param(v) for k, v in properties.items() if k not in _PIXEL}
        params = {**request.params, **traits}
        return msgspec.structs.replace(request, params=params, body=None)
    if request.url.endswith(LEGACY_BATCH):
        rows = [{"property": k, "value": v} for k, v in properties.items() if k != "email"]
        return msgspec.structs.replace(request, body={"email": body["email"], "properties": rows})
    return await _contact_write(request, properties, asking)


async def _contact_write(draft: Request, properties: dict[str, Any], asking: "_Asking") -> Request:
    root = draft.url.removesuffix(CONTACTS) + BATCH
    contact = draft.hints.get(CONTACT)
    field, value = draft.hints.get(FIELD, ""), draft.hints.get(VALUE, "")
    if contact is None and await asking.unique(field):
        upsert = {"id": value, "idProperty": field, "properties": properties,
                  "objectWriteTraceId": draft.hints.get(TRACE, "")}  # fmt: skip
        return msgspec.structs.replace(draft, url=root + "upsert", body=upsert)
    if contact is None:
        contact = await asking.contact(field, value)
    if contact is None:
        # Creates for one lookup value are one contact (the search found none for either):
        # the hints, kept, let `combine` merge them.
        create = {"properties": properties}
        return msgspec.structs.replace(draft, url=root + "create", body=create)
    update = {"id": str(contact), "properties": properties}
    return msgspec.structs.replace(draft, url=root + "update", body=update)


class _Asking:
    """Look-ups to HubSpot's API, authenticated as the destination's settings say."""

    def __init__(self, settings: HubSpotSettings, lookups: Lookups) -> None:
        self.settings, self.lookups = settings, lookups
        self.headers, self.params = _auth(settings)

    async def ask(
        self, method: str, path: str, doing: str, body: Any = None, keep: float = 0
    ) -> Any:
        headers = self.headers if body is None else {"Content-Type": _JSON, **self.headers}
        request = Request(method, f"{_api(self.settings)}{path}", headers, self.params, body)
        looked = await self.lookups.ask(request, keep)
        if 200 <= looked.status < 300:
            return looked.body
        said = f"HubSpot answered HTTP {looked.status} {doing}"
        reason = _reason(looked.body)
        raise Unsendable(f"{said}: {reason}" if reason else said)

    async def types(self) -> dict[str, str]:
        """The account's contact properties and their types."""
        answer = await self.ask("GET", PROPERTY_TYPES, "reading the contact properties", keep=KEPT)
        found = {}
        for item in answer if isinstance(answer, list) else []:
            item = segment.mapping(item)
            if isinstance(name := item.get("name"), str) and isinstance(
                kind := item.get("type"), str
            ):
                found[name] = kind
        return found

    async def unique(self, field: str) -> bool:
        """Whether `field` is a unique-value contact property (an upsert can name it)."""
        answer = await self.ask("GET", UNIQUE, "reading the contact properties", keep=KEPT)
        results = segment.mapping(answer).get("results")
        for item in results if isinstance(results, list) else []:
            item = segment.mapping(item)
            if item.get("name") == field:
                return item.get("hasUniqueValue") is True
        return False

    async def contact(self, field: str, value: str) -> str | None:
        """The id of the one contact whose `field` is `value`, or None."""
        query = {
            "filterGroups": [
                {"filters": [{"propertyName": field, "operator": "EQ", "value": value}]}
            ],
            "properties": [field],
            "limit": 2,
        }
        answer = await self.ask("POST", SEARCH, "searching the contact", body=query)
        results = segment.mapping(answer).get("results")
        found = results if isinstance(results, list) else []
        if len(found) > 1:
            raise Unsendable(
                f"more than one HubSpot contact has {field} {value[:100]!r}: set lookupField to"
                " a property that names one contact"
            )
        return segment.text(segment.mapping(found[0]).get("id")) if found else None


async def _typed(traits: Any, asking: _Asking) -> dict[str, Any]:
    """The traits that are contact properties of the account, as their types want them."""
    traits = segment.mapping(traits)
    if not traits:
        return {}
    types = await asking.types()
    typed: dict[str, Any] = {}
    for key, value in traits.items():
        name = _SPACES.sub("_", key.lower()).replace(".", "_")
        kind = types.get(name)
        if kind is not None:
            typed[name] = "" if value is None else _value(kind, key, value)  # "": clears it
    return typed


def _value(kind: str, key: str, value: Any) -> Any:
    if kind == "date" and isinstance(value, str | int | Raw) and not isinstance(value, bool):
        return _midnight(key, value)
    if kind == "string" and not isinstance(value, str):
        return segment.json_text(value) if isinstance(value, dict | list) else _as_param(value)
    numeric = isinstance(value, int | float | Raw) and not isinstance(value, bool)
    if (kind == "bool" and isinstance(value, dict | list)) or (kind == "number" and not numeric):
        raise Unsendable(
            f"the trait {key[:100]!r} is of type {_js_type(value)}, but HubSpot's property is"
            f" of type {kind}"
        )
    return value


def _js_type(value: Any) -> str:
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float | Raw):
        return "number"
    return "object"


def _midnight(key: str, value: str | int | Raw) -> Any:
    """A date as HubSpot's date properties take it: its UTC midnight in milliseconds; a value
    that is no date is sent as it is (HubSpot says what it makes of it)."""
    number = segment.number(value) if not isinstance(value, str) else None
    try:
        if number is not None:
            when = datetime.fromtimestamp(number / 1000, UTC)
        else:
            try:
                when = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
            except ValueError:
                return value
            when = when if when.tzinfo else when.replace(tzinfo=UTC)
        day = when.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    except (OverflowError, OSError, ValueError):  # out of any calendar: no date at all
        raise Unsendable(f"the trait {key[:100]!r} is a date out of range") from None
    return int(day.timestamp()) * 1000


# ---------------------------------------------------------------------------------------------
# Batching


def batch_key(request: Request) -> str | None:
    """Contact writes combine by endpoint and credentials; drafts (newApi identifies before
    their look-ups) combine with each other, and split by endpoint once completed."""
    if request.method != "POST" or not _batched(request.url):
        return None
    auth = request.headers.get("Authorization", "") + request.params.get("hapikey", "")
    return f"{request.url} {auth}"


def _batched(url: str) -> bool:
    return url.endswith((CONTACTS, LEGACY_BATCH)) or _operation(url) is not None


def _operation(url: str) -> str | None:
    """upsert, create or update: the CRM batch endpoint `url` is, if it is one."""
    head, _, operation = url.rpartition("/")
    return operation if head.endswith(BATCH.rstrip("/")) else None


@dataclass
class _Input:
    """One input of a combined request and the jobs (positions) it carries."""

    body: dict[str, Any]
    jobs: list[int]


def _identity(request: Request, body: dict[str, Any]) -> str | None:
    """What makes two inputs the same contact for HubSpot (None: never merged)."""
    operation = _operation(request.url)
    if operation == "create" and FIELD in request.hints:
        return f"{request.hints[FIELD]}\n{request.hints.get(VALUE, '')}"
    if operation == "update":
        return segment.text(body.get("id"))
    if operation == "upsert":
        field, value = str(body.get("idProperty")), segment.text(body.get("id")) or ""
        return f"{field}\n{value.lower() if field == 'email' else value}"
    email = (
        body.get("email")
        if operation is None
        else segment.mapping(body.get("properties")).get("email")
    )
    return email.lower() if isinstance(email, str) and email else None


def _merged(requests: Sequence[Request]) -> list[_Input]:
    """The requests' inputs, those for one contact merged (later values win)."""
    inputs: list[_Input] = []
    seen: dict[str, _Input] = {}
    for position, request in enumerate(requests):
        body = segment.mapping(request.body)
        identity = _identity(request, body)
        same = seen.get(identity) if identity is not None else None
        if same is None:
            item = _Input(dict(body), [position])
            inputs.append(item)
            if identity is not None:
                seen[identity] = item
            continue
        same.jobs.append(position)
        same.body["properties"] = _merge(same.body.get("properties"), body.get("properties"))
    traces: set[str] = set()
    for item in inputs:  # each input's trace id names it alone
        if "objectWriteTraceId" in item.body:
            trace, n = str(item.body["objectWriteTraceId"]) or "sluice", 1
            while trace in traces:
                n += 1
                trace = f"{item.body['objectWriteTraceId'] or 'sluice'}~{n}"
            traces.add(trace)
            item.body["objectWriteTraceId"] = trace
    return inputs


def _merge(earlier: Any, later: Any) -> Any:
    if isinstance(earlier, list) and isinstance(later, list):  # legacy [{property, value}]
        rows = {segment.mapping(r).get("property"): r for r in [*earlier, *later]}
        return list(rows.values())
    return {**segment.mapping(earlier), **segment.mapping(later)}


def combine(requests: Sequence[Request]) -> Request:
    first = requests[0]
    inputs = [item.body for item in _merged(requests)]
    body: Any = inputs if first.url.endswith(LEGACY_BATCH) else {"inputs": inputs}
    return Request(first.method, first.url, first.headers, first.params, body)


# ---------------------------------------------------------------------------------------------
# Answers


def _reason(answer: Any) -> str | None:
    """HubSpot's words: its category and message (or the rate-limit policy)."""
    answer = segment.mapping(answer)
    words = [segment.text(answer.get(k)) for k in ("category", "policyName", "message")]
    return ": ".join(w for w in words if w)[:_REASON] or None


def classify(status: int, body: bytes, sent: Sequence[Request]) -> Verdict | Sequence[Judgement]:
    answer = json_answer(body)
    url = sent[0].url if sent else ""
    if 200 <= status < 300:
        return _taken(answer, url, sent)
    if status == 429 or 500 <= status < 600:
        return Verdict.RETRY
    if status in SPLIT_ON and len(sent) > 1:
        # One input refused the batch, unnamed: refused for good as a whole, which makes the
        # router send each job again alone (`split_on`), where HubSpot's answer is its own.
        return Verdict.ABORT
    reason = _reason(answer)
    if status == 409 and _operation(url) == "create":
        # Created since the search: the next attempt updates it (HubSpot's words kept for
        # when the retries run out: a contact with that email under another lookup value).
        return [Judgement(Verdict.RETRY, reason)] * len(sent)
    return Verdict.ABORT if reason is None else [Judgement(Verdict.ABORT, reason)] * len(sent)


def _taken(answer: Any, url: str, sent: Sequence[Request]) -> Verdict | Sequence[Judgement]:
    """A 2xx: all taken, some refused (207: `errors`), or nothing taken."""
    answer = segment.mapping(answer)
    results, errors = answer.get("results"), answer.get("errors")
    errors = errors if isinstance(errors, list) else []
    if _operation(url) is not None and not errors and not (isinstance(results, list) and results):
        silent = "HubSpot answered without results or errors: it took none of the batch"
        return [Judgement(Verdict.ABORT, silent)] * len(sent)
    if not errors:
        return Verdict.DELIVERED
    inputs = _merged(sent)
    refused: dict[int, str] = {}  # job position → why
    for error in errors:
        error = segment.mapping(error)
        why = _reason(error) or "refused by HubSpot"
        named = _named(segment.mapping(error.get("context")))
        for item in inputs:
            if named & _names(item.body):
                refused.update((job, why) for job in item.jobs)
    if not refused and not (isinstance(results, list) and results):
        # Errors naming no input, and no result: HubSpot took none of the batch.
        why = _reason(segment.mapping(errors[0])) or "refused by HubSpot"
        return [Judgement(Verdict.ABORT, why)] * len(sent)
    if not refused:
        return Verdict.DELIVERED
    return [
        Judgement(Verdict.ABORT, refused[n]) if n in refused else Judgement(Verdict.DELIVERED)
        for n in range(len(sent))
    ]


def _named(context: dict[str, Any]) -> set[str]:
    """What an error's context names inputs by: trace ids, and contact ids (updates)."""
    names = set()
    for key in ("objectWriteTraceId", "ids"):
        values = context.get(key)
        for value in values if isinstance(values, list) else []:
            if (text := segment.text(value)) is not None:
                names.add(text)
    return names


def _names(body: dict[str, Any]) -> set[str]:
    """What an input can be named by: its trace id, and an update's contact id."""
    values = (body.get("objectWriteTraceId"), body.get("id") if "idProperty" not in body else None)
    return {text for value in values if (text := segment.text(value)) is not None}


# ---------------------------------------------------------------------------------------------
# The plug-in

_CALLS: dict[str, Callable[[dict[str, Any], HubSpotSettings, datetime], list[Request]]] = {
    "identify": _identify,
    "track": _track,
}


def map_event(event: dict[str, Any], settings: HubSpotSettings, now: datetime) -> list[Request]:
    call = for_call(event, _CALLS)
    return call(event, settings, now)


HS = DestinationType(
    name="hs",
    title="HubSpot",
    category="Marketing",
    description="HubSpot CRM: contacts from identify, custom behavioral events.",
    settings=HubSpotSettings,
    map=map_event,
    supported_types=frozenset(_CALLS),
    secret_keys=("accessToken", "apiKey"),
    help=HELP,
    batch_size=MAX_INPUTS,
    batch_key=batch_key,
    combine=combine,
    split_on=SPLIT_ON,
    classify_sent=classify,
    resolve=resolve,
)
