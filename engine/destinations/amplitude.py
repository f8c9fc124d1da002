"""Amplitude: events through the HTTP V2 API, groups and aliases through its form APIs.

Events (track, page, screen) and user updates (identify, and the user side of group) go to
`/2/httpapi` as event objects; identify is an `$identify` event with the traits in
`user_properties`, as RudderStack sends it (not the separate Identify API). Group properties go
to `/groupidentify` and aliases to `/usermap`, both form posts (the sender labels them
with the form Content-Type) holding a JSON text field. The API key travels in the
body (`api_key`), so the EU host (`residencyServer: EU`) or an `endpoint` only changes the URL.

The event object:
* `user_id` ← userId, `device_id` ← anonymousId: one of them is needed, or the event is refused.
  `options.min_id_length: 1` lifts Amplitude's 5-character minimum, which real ids often miss.
* `insert_id` ← messageId (Amplitude drops a repeat within 7 days, so a resend after a lost
  answer is harmless); product events get `<messageId>-<n>`. The user side of a group call has
  none, as in RudderStack's requests.
* `time` ← timestamp (else originalTimestamp) in ms; `session_id` ← the number after the last
  `:` of a root `session_id`, else `context.sessionId`, else -1 (Amplitude's "no session").
* Web events (`channel: web`) take `platform: Web` and the browser as `os_name`/`os_version`
  and the OS as `device_model`, read from the user agent, as Amplitude's browser SDK reports
  them; other events take `context.os`, `context.device` and `context.network.carrier` as they
  are, with the advertising ids of iOS (`idfa`, `idfv`) and Android (`adid`).
* `context.location` gives `city`, `country`, `region`, `dma`, `location_lat`, `location_lng`
  (an address's city and country when there is no location). Traits go to `user_properties`
  without `city`/`country` (Amplitude keeps location in those top-level fields, not as
  custom user properties), plus the page's initial referrer and the campaign's `utm_*`.
* page: `Viewed <name or category> Page`, screen: `Viewed <name> Screen` (or the configured
  template, with `{{name}}` and `{{category}}`); the name is added to `event_properties.name`.
* identify: traits named in `traitsToIncrement`/`traitsToSetOnce`/`traitsToAppend`/
  `traitsToPrepend` move under `$add`/`$setOnce`/`$append`/`$prepend`;
  `integrations.Amplitude.fieldsToUnset` become `$unset`.
* group: the group type and value are the traits named by `groupTypeTrait`/`groupValueTrait`
  (or `integrations.Amplitude.groups: {groupType, groupValue}`). With neither the settings nor
  the option, a group call is filtered (counted, with the reason naming the settings), not
  failed; an event without the named traits is refused, since Amplitude has no group without a
  type. The user is put in the group with an
  `$identify` event (`groups` and a user property), and the group's traits go to
  `/groupidentify`.
* Revenue: a track with `properties.revenue` carries `revenue`, `price` (else the revenue),
  `quantity` (when a price is given, else 1), `revenueType` (default `Purchased`) and
  `productId` top-level, taken out of `event_properties`. Its `products` also become
  `Product Purchased` events unless `trackProductsOnce` (then they stay in the order's
  properties); with `trackRevenuePerProduct` the revenue is counted per product instead of on
  the order. Other tracks with products are sent as they are: a product list that was viewed
  is not a purchase.

Batching: every events request made here holds one event; the router combines up to
`batch_size` of them (each of a different user) into one `/2/httpapi` request. HTTP V2 rather
than the Batch API: a batch of one and a batch of many are the same request to the same
endpoint, its answers name refused events by index, and events are not delayed the way batch
uploads can be. Its limits are 2000 events and 1 MB; the batches stay well inside (1000
events, 800 kB of stored requests, which are larger than what they add to the combined body).
A 400 that names events by index aborts those events and resends the rest, which Amplitude
did not ingest either; a 400 without such detail refuses the request as a whole.
"""

import hashlib
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import msgspec
from msgspec import Raw

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
)

STANDARD_HOST = "https://api2.amplitude.com"
EU_HOST = "https://api.eu.amplitude.com"
EVENTS = "/2/httpapi"
GROUP_IDENTIFY = "/groupidentify"
USER_MAP = "/usermap"
MAX_REQUEST_BYTES = 1_000_000  # HTTP V2, Group Identify: 1 MB per request
MAX_EVENTS = 2000  # HTTP V2: events per request

_JSON = {"Content-Type": "application/json"}
_OPTIONS = {"min_id_length": 1}
_LIBRARY = "sluice"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_LOCATION_TRAITS = ("city", "country")
_REVENUE_KEYS = ("revenue", "price", "quantity", "productId", "product_id")
_OPERATIONS = (
    ("traitsToIncrement", "$add"),
    ("traitsToSetOnce", "$setOnce"),
    ("traitsToAppend", "$append"),
    ("traitsToPrepend", "$prepend"),
)
_PLACEHOLDER = re.compile(r"\{\{\s*(name|category)\s*\}\}")
_GROUP_SETTINGS = ("groupTypeTrait", "groupValueTrait")


class TraitName(msgspec.Struct):
    """One row of a trait list in RudderStack's config (`[{"traits": "age"}]`)."""

    traits: str = ""


class AmplitudeSettings(msgspec.Struct):
    apiKey: str
    apiSecret: str = ""  # used by Amplitude's deletion API only; kept so that it is masked
    residencyServer: str = "standard"
    groupTypeTrait: str = ""
    groupValueTrait: str = ""
    trackProductsOnce: bool = False
    trackRevenuePerProduct: bool = False
    traitsToIncrement: list[TraitName] = []
    traitsToSetOnce: list[TraitName] = []
    traitsToAppend: list[TraitName] = []
    traitsToPrepend: list[TraitName] = []
    useUserDefinedPageEventName: bool = False
    userProvidedPageEventString: str = ""
    useUserDefinedScreenEventName: bool = False
    userProvidedScreenEventString: str = ""
    endpoint: str | None = None

    def __post_init__(self) -> None:
        if not self.apiKey.strip():
            raise ValueError("apiKey is empty: copy the project's API key from Amplitude")
        if any(c.isspace() for c in self.apiKey):
            raise ValueError("apiKey contains spaces: copy the project's API key exactly")
        if self.residencyServer.lower() not in ("", "standard", "eu"):
            raise ValueError(
                f"residencyServer must be 'standard' or 'EU', not {self.residencyServer!r}"
            )
        check_endpoint(self.endpoint)
        for flag, template, kind in (
            (self.useUserDefinedPageEventName, self.userProvidedPageEventString, "Page"),
            (self.useUserDefinedScreenEventName, self.userProvidedScreenEventString, "Screen"),
        ):
            if flag and not template.strip():
                raise ValueError(
                    f"useUserDefined{kind}EventName is on but userProvided{kind}EventString "
                    "is empty: give a name such as 'Viewed {{name}} " + kind + "'"
                )

    @property
    def base(self) -> str:
        eu = self.residencyServer.lower() == "eu"
        return base_url(self.endpoint, EU_HOST if eu else STANDARD_HOST)


# --- mapping --------------------------------------------------------------------------------


def map_event(event: dict[str, Any], settings: AmplitudeSettings, now: datetime) -> list[Request]:
    kind = event.get("type")
    if kind == "alias":
        return [_alias(event, settings)]
    if kind not in ("track", "page", "screen", "identify", "group"):
        shown = segment.text(kind)
        raise Unsendable(
            "Amplitude takes track, page, screen, identify, group and alias calls, not "
            + (repr(shown[:40]) if shown else "an event without a type")
        )
    base = _base(event, _user_traits(event))
    if "user_id" not in base and "device_id" not in base:
        raise Unsendable("Amplitude needs a userId or an anonymousId: the event has neither")
    if kind == "group":
        return _group(event, settings, base)
    message_id = segment.text(event.get("messageId"))
    if message_id:
        base["insert_id"] = message_id
    if kind == "identify":
        user_properties = _identify_properties(event, settings)
        return [_events_request(settings, {**base, "event_type": "$identify",
                                           "user_properties": user_properties})]  # fmt: skip
    base["user_properties"] = _user_properties(_user_traits(event), event)
    if kind == "track":
        return _track(event, settings, base, message_id)
    name, event_type = _viewed(event, settings, kind)
    properties = segment.properties(event)
    if name is not None:
        properties = {**properties, "name": name}
    return [_events_request(settings, {**base, "event_type": event_type,
                                       "event_properties": properties})]  # fmt: skip


def _events_request(settings: AmplitudeSettings, event: dict[str, Any]) -> Request:
    body = {"api_key": settings.apiKey, "events": [event], "options": dict(_OPTIONS)}
    return _checked(Request("POST", settings.base + EVENTS, headers=dict(_JSON), body=body))


def _form_request(settings: AmplitudeSettings, path: str, body: dict[str, str]) -> Request:
    return _checked(Request("POST", settings.base + path, body=body, body_format="form"))


def _checked(request: Request) -> Request:
    """Refuse now what Amplitude would refuse for its size, whatever it is batched with."""
    body = request.body
    size = len(urlencode(body) if request.body_format == "form" else codec.encode(body))
    if size > MAX_REQUEST_BYTES:
        raise Unsendable(
            f"the event makes a {size}-byte Amplitude request; Amplitude takes at most "
            f"{MAX_REQUEST_BYTES} bytes per request"
        )
    return request


def _user_traits(event: dict[str, Any]) -> dict[str, Any]:
    """The user's traits: an identify's own (or its context's), else the context's (a group's
    traits describe the group)."""
    if event.get("type") == "identify":
        return segment.traits(event)
    return segment.mapping(segment.context(event).get("traits"))


def _base(event: dict[str, Any], traits: dict[str, Any]) -> dict[str, Any]:
    """The fields every event object of this event carries: ids, time, device, location."""
    ctx = segment.context(event)
    app = segment.mapping(ctx.get("app"))
    fields: dict[str, Any] = {
        "user_id": segment.user_id(event),
        "device_id": segment.anonymous_id(event),
        "time": _millis(segment.event_time(event)),
        "session_id": _session(event, ctx),
        "ip": segment.ip(event),
        "language": segment.text(ctx.get("locale")),
        "app_name": segment.text(app.get("name")),
        "app_version": segment.text(app.get("version")),
        **_device(event, ctx),
        **_location(ctx, segment.mapping(traits.get("address"))),
        "library": _LIBRARY,
    }
    return {key: value for key, value in fields.items() if value is not None}


def _millis(when: datetime | None) -> int | None:
    return None if when is None else (when - _EPOCH) // timedelta(milliseconds=1)


def _session(event: dict[str, Any], ctx: dict[str, Any]) -> int:
    root = event.get("session_id")
    if isinstance(root, str):
        root = root.rsplit(":", 1)[-1]
    for candidate in (root, ctx.get("sessionId")):
        number = segment.number(candidate)
        if isinstance(number, float) and number.is_integer():
            number = int(number)
        if isinstance(number, int) and abs(number) < 2**63:
            return number
    return -1


def _device(event: dict[str, Any], ctx: dict[str, Any]) -> dict[str, Any]:
    if str(event.get("channel")).lower() == "web":
        return {"platform": "Web", **_web_device(segment.text(ctx.get("userAgent")))}
    os = segment.mapping(ctx.get("os"))
    device = segment.mapping(ctx.get("device"))
    os_name = segment.text(os.get("name"))
    fields = {
        "os_name": os_name,
        "os_version": segment.text(os.get("version")),
        "device_model": segment.text(device.get("model")),
        "device_manufacturer": segment.text(device.get("manufacturer")),
        "device_brand": segment.text(device.get("brand")),
        "platform": segment.text(device.get("type")) or os_name,
        "carrier": segment.text(segment.mapping(ctx.get("network")).get("carrier")),
    }
    family = (fields["platform"] or "").lower()
    advertising_id = segment.text(device.get("advertisingId"))
    if family in ("ios", "ipados", "tvos", "watchos"):
        fields["idfa"] = advertising_id
        fields["idfv"] = segment.text(device.get("id"))
    elif family == "android":
        fields["adid"] = advertising_id
    return fields


def _web_device(agent: str | None) -> dict[str, Any]:
    """The browser as `os_name`/`os_version` and the OS as `device_model`, which is how
    Amplitude's browser SDK reports them."""
    if not agent:
        return {}
    found = useragent.read(agent)
    fields: dict[str, Any] = {}
    if found.browser is not None:
        fields["os_name"], fields["os_version"] = found.browser
    if found.system is not None:
        fields["device_model"] = found.system.name
    return fields


def _location(ctx: dict[str, Any], address: dict[str, Any]) -> dict[str, Any]:
    location = segment.mapping(ctx.get("location"))
    return {
        "city": segment.text(location.get("city")) or segment.text(address.get("city")),
        "country": segment.text(location.get("country")) or segment.text(address.get("country")),
        "region": segment.text(location.get("region")),
        "dma": segment.text(location.get("dma")),
        "location_lat": _scalar(location.get("latitude")),
        "location_lng": _scalar(location.get("longitude")),
    }


def _scalar(value: Any) -> Any:
    """A number or text passed on as sent (Amplitude reads either); anything else dropped."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float | Raw) or (isinstance(value, str) and value):
        return value
    return None


def _user_properties(found: dict[str, Any], event: dict[str, Any]) -> dict[str, Any]:
    """Traits as user properties (location traits go top-level), with page and campaign."""
    properties = {k: v for k, v in found.items() if k not in _LOCATION_TRAITS}
    address = found.get("address")
    if isinstance(address, dict):
        rest = {k: v for k, v in address.items() if k not in _LOCATION_TRAITS}
        if rest:
            properties["address"] = rest
        else:
            del properties["address"]
    ctx = segment.context(event)
    page = segment.mapping(ctx.get("page"))
    for key in ("initial_referrer", "initial_referring_domain"):
        if (value := segment.text(page.get(key))) is not None:
            properties[key] = value
    for key, value in segment.mapping(ctx.get("campaign")).items():
        if isinstance(key, str) and (text := segment.text(value)) is not None:
            properties["utm_campaign" if key == "name" else f"utm_{key}"] = text
    return properties


def _options(event: dict[str, Any]) -> dict[str, Any]:
    return segment.integration(event, "Amplitude", "AM")


def _identify_properties(event: dict[str, Any], settings: AmplitudeSettings) -> dict[str, Any]:
    properties = _user_properties(_user_traits(event), event)
    for setting, operation in _OPERATIONS:
        names = [row.traits for row in getattr(settings, setting) if row.traits]
        moved = {name: properties.pop(name) for name in names if name in properties}
        if moved:
            properties[operation] = moved
    unset = _options(event).get("fieldsToUnset")
    names = [n for n in unset if isinstance(n, str) and n] if isinstance(unset, list) else []
    if names:
        for name in names:
            properties.pop(name, None)
        properties["$unset"] = dict.fromkeys(names, "-")
    return properties


def _viewed(
    event: dict[str, Any], settings: AmplitudeSettings, kind: str
) -> tuple[str | None, str]:
    """The page or screen name, and the event type it gives."""
    properties = segment.properties(event)
    name = segment.text(event.get("name")) or segment.text(properties.get("name"))
    if kind == "screen":
        name = name or segment.text(event.get("event"))
    category = segment.text(properties.get("category")) or segment.text(event.get("category"))
    if kind == "page":
        on, template = settings.useUserDefinedPageEventName, settings.userProvidedPageEventString
    else:
        on = settings.useUserDefinedScreenEventName
        template = settings.userProvidedScreenEventString
    if on:
        values = {"name": name or "", "category": category or ""}
        filled = _PLACEHOLDER.sub(lambda m: values[m.group(1)], template)
        return name, " ".join(filled.split())
    label = name or (category if kind == "page" else None)
    return name, f"Viewed {label} {kind.title()}" if label else f"Viewed {kind.title()}"


def _track(
    event: dict[str, Any], settings: AmplitudeSettings, base: dict[str, Any], message_id: str | None
) -> list[Request]:
    event_type = segment.text(event.get("event"))
    if event_type is None:
        raise Unsendable("a track call needs an event name")
    properties = dict(segment.properties(event))
    main = {**base, "event_type": event_type}
    revenue = _number(properties.get("revenue"))
    products = properties.get("products")
    if revenue is None or not isinstance(products, list):
        products = []
    per_product = bool(products) and settings.trackRevenuePerProduct
    if revenue is not None and not per_product:
        main.update(_revenue(properties, revenue))
        for key in _REVENUE_KEYS:
            properties.pop(key, None)
    if products and not settings.trackProductsOnce:
        del properties["products"]
    main["event_properties"] = properties
    requests = [_events_request(settings, main)]
    if products and (per_product or not settings.trackProductsOnce):
        kind = _revenue_type(properties)
        for n, product in enumerate(products, start=1):
            if isinstance(product, dict):
                made = _product(base, product, per_product, kind)
                if message_id:
                    made["insert_id"] = f"{message_id}-{n}"
                requests.append(_events_request(settings, made))
    return requests


def _number(value: Any) -> Any:
    """A numeric field as Amplitude takes it: numbers as sent, numeric text as a number."""
    if isinstance(value, int | Raw) and not isinstance(value, bool):
        return value if segment.number(value) is not None else None
    return segment.number(value)


def _revenue_type(properties: dict[str, Any]) -> str:
    return (
        segment.text(properties.get("revenue_type"))
        or segment.text(properties.get("revenueType"))
        or "Purchased"
    )


def _revenue(properties: dict[str, Any], revenue: Any) -> dict[str, Any]:
    price = _number(properties.get("price"))
    quantity = _number(properties.get("quantity")) if price is not None else None
    fields = {
        "revenue": revenue,
        "price": revenue if price is None else price,
        "quantity": 1 if quantity is None else quantity,
        "revenueType": _revenue_type(properties),
        "productId": segment.text(properties.get("productId"))
        or segment.text(properties.get("product_id")),
    }
    return {key: value for key, value in fields.items() if value is not None}


def _product(
    base: dict[str, Any], product: dict[str, Any], with_revenue: bool, kind: str
) -> dict[str, Any]:
    made = {**base, "event_type": "Product Purchased", "event_properties": product}
    if not with_revenue:
        return made
    price = _number(product.get("price"))
    own = _number(product.get("revenue"))
    if price is None and own is None:
        return made  # nothing to count
    quantity = _number(product.get("quantity"))
    fields = {
        "price": price,
        "quantity": 1 if quantity is None else quantity,
        "revenue": own,
        "revenueType": kind,
        "productId": segment.text(product.get("productId"))
        or segment.text(product.get("product_id")),
    }
    made.update({key: value for key, value in fields.items() if value is not None})
    made["event_properties"] = {k: v for k, v in product.items() if k not in _REVENUE_KEYS}
    return made


def _group(
    event: dict[str, Any], settings: AmplitudeSettings, base: dict[str, Any]
) -> list[Request]:
    traits = segment.traits(event)
    group_type, group_value = _group_of(event, settings, traits)
    user_properties = {**_user_properties({}, event), group_type: group_value}
    member = {**base, "event_type": "$identify", "user_properties": user_properties,
              "groups": {group_type: group_value}}  # fmt: skip
    requests = [_events_request(settings, member)]
    if traits:
        identification = [
            {"group_type": group_type, "group_value": group_value, "group_properties": traits}
        ]
        body = {"api_key": settings.apiKey, "identification": segment.json_text(identification)}
        requests.append(_form_request(settings, GROUP_IDENTIFY, body))
    return requests


def _group_of(
    event: dict[str, Any], settings: AmplitudeSettings, traits: dict[str, Any]
) -> tuple[str, str]:
    given = segment.mapping(_options(event).get("groups"))
    group_type = segment.text(given.get("groupType"))
    group_value = segment.text(given.get("groupValue"))
    if group_type is None or group_value is None:
        group_type = segment.text(traits.get(settings.groupTypeTrait))
        group_value = segment.text(traits.get(settings.groupValueTrait))
    if group_type is None or group_value is None:
        raise Unsendable(
            f"a group call needs an Amplitude group type and value: the traits "
            f"{settings.groupTypeTrait[:40]!r} and {settings.groupValueTrait[:40]!r} "
            "(groupTypeTrait, groupValueTrait), or integrations.Amplitude.groups with groupType "
            "and groupValue"
        )
    return group_type, group_value


def declines(event: dict[str, Any], config: dict[str, Any]) -> str | None:
    """A group call when the group settings are blank and the event names no group itself."""
    if event.get("type") != "group" or all(
        isinstance(config.get(key), str) and config[key].strip() for key in _GROUP_SETTINGS
    ):
        return None
    given = segment.mapping(_options(event).get("groups"))
    if segment.text(given.get("groupType")) and segment.text(given.get("groupValue")):
        return None
    return (
        "group calls need the settings `groupTypeTrait` and `groupValueTrait` (the traits that "
        "hold the Amplitude group type and value)"
    )


def _alias(event: dict[str, Any], settings: AmplitudeSettings) -> Request:
    previous = segment.text(event.get("previousId"))
    if previous is None:
        raise Unsendable("an alias call needs a previousId (the id to map)")
    if _options(event).get("unmap") is True:
        mapping: dict[str, Any] = {"user_id": previous, "unmap": True}
    else:
        user = segment.user_id(event)
        if user is None:
            raise Unsendable("an alias call needs a userId (the global id to map to)")
        mapping = {"user_id": previous, "global_user_id": user}
    body = {"api_key": settings.apiKey, "mapping": segment.json_text([mapping])}
    return _form_request(settings, USER_MAP, body)


# --- batching and answers -------------------------------------------------------------------


def batch_key(request: Request) -> str | None:
    """Single-event requests to the events endpoint with the same key and options combine;
    form calls never do. (The key is hashed: batch keys are no place for a secret.)"""
    body = request.body
    if not request.url.endswith(EVENTS) or not isinstance(body, dict):
        return None
    events = body.get("events")
    if not isinstance(events, list) or len(events) != 1:
        return None
    same = codec.encode([body.get("api_key"), body.get("options")])
    return f"{request.url} {hashlib.sha256(same).hexdigest()[:32]}"


def combine(requests: Sequence[Request]) -> Request:
    """One HTTP V2 request with the events of all, in order: index i is the i-th job. (Form
    calls never get here: their batch key is None, and the router sends them as they are.)"""
    first = requests[0]
    body = first.body if isinstance(first.body, dict) else {}
    events = [
        e
        for r in requests
        for e in (r.body.get("events") if isinstance(r.body, dict) else None) or []
    ]
    combined = {"api_key": body.get("api_key"), "events": events}
    if body.get("options") is not None:
        combined["options"] = body["options"]
    return Request(first.method, first.url, first.headers, first.params, combined)


_DETAIL = (
    ("events_with_invalid_fields", "invalid"),
    ("events_with_missing_fields", "missing"),
    ("events_with_invalid_id_lengths", "too short"),
)
_NOT_INGESTED = "not ingested: Amplitude refused the batch for other events in it"


def classify(status: int, body: bytes, count: int) -> Verdict | Sequence[Judgement]:
    if status == 413:  # too large: the router splits the batch and sends again
        return Verdict.RETRY
    if status != 400:
        return classify_status(status, body, count)
    answer = _answer(body)
    refused: dict[int, list[str]] = {}
    for key, what in _DETAIL:
        for field, indices in segment.mapping(answer.get(key)).items():
            for index in indices if isinstance(indices, list) else []:
                if isinstance(index, int) and not isinstance(index, bool) and 0 <= index < count:
                    refused.setdefault(index, []).append(f"{field} {what}")
    if not refused:
        return Verdict.ABORT  # the request as a whole (a bad key, a malformed body)
    error = segment.text(answer.get("error")) or "Invalid request"
    return [
        Judgement(Verdict.ABORT, f"{error}: {', '.join(refused[i])}"[:300])
        if i in refused
        else Judgement(Verdict.RETRY, _NOT_INGESTED)
        for i in range(count)
    ]


def _answer(body: bytes) -> dict[str, Any]:
    try:
        decoded = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return {}
    return decoded if isinstance(decoded, dict) else {}


AMPLITUDE = DestinationType(
    name="amplitude",
    title="Amplitude",
    category="Analytics",
    description="Product analytics: events, user properties, groups and aliases.",
    settings=AmplitudeSettings,
    map=map_event,
    declines=declines,
    secret_keys=("apiKey", "apiSecret"),
    help={
        "groupTypeTrait": "The trait of a group call that holds the Amplitude group type (e.g. "
        "company_type). With groupValueTrait it enables group calls: while either is blank they "
        "are filtered (counted, not sent), unless an event names its group in "
        "integrations.Amplitude.groups.",
        "groupValueTrait": "The trait of a group call that holds the group's value (e.g. name). "
        "Needed with groupTypeTrait for group calls.",
    },
    batch_size=MAX_EVENTS // 2,
    batch_bytes=800_000,
    batch_key=batch_key,
    combine=combine,
    classify=classify,
)
