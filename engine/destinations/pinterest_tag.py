"""Pinterest Conversions API: track, page and screen calls as conversion events (RudderStack's
`pinterest_tag` keys).

Hosts and auth, by `apiVersion`: `legacyApi` (the default) posts to
`https://ct.pinterest.com/events/v3` without credentials, each event naming its
`advertiser_id`; `newApi` posts to `https://api.pinterest.com/v5/ad_accounts/<adAccountId>/events`
with `Authorization: Bearer <conversionToken>`. The `endpoint` setting replaces the host (the
paths stay). `sendAsTestEvent` adds `test=true`: Pinterest checks the events and answers as
usual, but does not record them.

Calls: track, page and screen (identify, group and alias mean nothing to Pinterest: filtered).
Each becomes one event per event name, one request (job) each:

* Name: a track or screen is named by `eventsMapping` (every row whose `from` is the event's
  name, exactly; the targets are snake-cased, `WatchVideo` → `watch_video`, so one event may
  become several), else by the Segment e-commerce spec (Order Completed → `checkout`, Product
  Added → `add_to_cart`, Products Searched and Product List Filtered → `search`, any case),
  else `custom` with `sendAsCustomEvent`, else its own name when that is one of Pinterest's
  (`lead`, `signup`, … as Pinterest spells them: RudderStack sends the name as it is, and
  Pinterest refuses any other); otherwise the event is refused before sending. A page is
  `view_category` when it has a category, else `page_visit`.
* `event_time` (unix seconds) is the event's timestamp (else originalTimestamp, else when the
  gateway received it); `event_id`, Pinterest's key for dropping a conversion it also had from
  the tag in the browser, is the value at the `deduplicationKey` path (with
  `enableDeduplication`), else the messageId.
* `action_source` is `action_source`/`actionSource` in the traits (then the context's traits,
  then the properties), else the channel: `web`, or for `channel: mobile` the app's platform
  (`app_android`/`app_ios`, from `context.os.name`). Pinterest takes only app_android, app_ios,
  web and offline: any other value refuses the event, saying where to set it.
* Context: `event_source_url` (context.page.url, else properties.url), `app_id` (setting),
  `app_name`, `app_version`, `device_brand`, `device_model`, `device_type`, `device_carrier`,
  `os_version`, `wifi`, `language` (ISO 639-1, cut from the locale), `opt_out` (the inverse of
  `context.device.adTrackingEnabled`; v5 also `advertiser_tracking_enabled`), `partner_name`.
* `user_data`: email, phone, gender, birthday, first and last name, address (city, state, zip,
  country; `traits.address`, else top-level traits), the advertising id (`hashed_maids`) and,
  with `sendExternalId`, the user id (`external_id`) — each a list (array traits give several
  values). With `sendingUnHashedData` (the default) they are normalised as Pinterest matches
  them (lower-cased and trimmed; phone digits without leading zeros; gender f/m/n; birthday
  YYYYMMDD; city and state without spaces; zip digits) and SHA-256 hashed; otherwise they are
  taken as hashed already. `client_ip_address`, `client_user_agent`, `click_id`
  (properties.clickId) and `partner_id` (traits.partnerId) travel as they are. Pinterest needs
  an email, an advertising id, or both IP and user agent: without them the event is refused.
* `custom_data` (track only): `currency`, `value` (value, else total, else revenue, as text),
  `order_id`, `search_string` (query), `opt_out_type` (optOutType), `content_name`,
  `content_category`, `content_brand`, `np`, and from `products[]` (else the properties, when
  they name one product) `content_ids`, `contents[]` and `num_items` (numOfItems wins).
  `customProperties` (property keys copied into the browser tag's event data) is accepted but
  not sent: it is a setting of the Pinterest tag in the browser (RudderStack's device mode); the
  Conversions API takes only the `custom_data` fields above, and RudderStack's cloud mode does
  not send them either.

Batching: a request carries one event as it is stored; the router sends jobs to the same
endpoint with the same token and test flag as `{"data": [...]}`, up to 1000 events (Pinterest's
limit) and 1 MB of stored requests, in job order — which is what lets Pinterest's answer,
event by event in that order, be read per job.

Answers: 200 `{num_events_received, num_events_processed, events: [{status, error_message,
warning_message}]}` — events whose status is `failed` are refused with Pinterest's message,
the others are delivered (nothing is sent again). 422 ("not all events were processed") is read
the same way when it lists the events, and refuses the batch when it does not. 429 and 5xx are
retried; 400, 401, 403 and other 4xx refuse the batch with Pinterest's `{code, message}`. A 413
is judged for the batch as a whole (the router sends its events again one by one).
"""

import re
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any, Literal

import msgspec

from engine.destinations import facebook, segment
from engine.destinations.base import (
    DestinationType,
    Judgement,
    Request,
    Unsendable,
    Verdict,
    base_url,
    blank,
    check_endpoint,
    check_id,
    check_token,
    classify_status,
    json_answer,
)

V3_HOST = "https://ct.pinterest.com"
V3_PATH = "/events/v3"
V5_HOST = "https://api.pinterest.com"
MAX_EVENTS = 1000  # Pinterest's limit per request, both versions
ACTION_SOURCES = ("app_android", "app_ios", "web", "offline")
# The event names Pinterest takes (both API versions).
EVENT_NAMES = frozenset({"add_to_cart", "checkout", "custom", "lead", "page_visit", "search",
                         "signup", "view_category", "watch_video"})  # fmt: skip
_JSON = {"Content-Type": "application/json"}
_REASON = 300  # characters of Pinterest's explanation kept per event
_COMMERCE = {
    "order completed": "checkout",
    "product added": "add_to_cart",
    "products searched": "search",
    "product list filtered": "search",
}


class EventMap(msgspec.Struct):
    """An `eventsMapping` row: a track's name → one of Pinterest's event names."""

    from_: str = msgspec.field(name="from", default="")
    to: str = ""


class CustomProperty(msgspec.Struct):
    """A `customProperties` row: a property key (device mode's; see the module's notes)."""

    properties: str = ""


class PinterestSettings(msgspec.Struct):
    apiVersion: Literal["legacyApi", "newApi"] = "legacyApi"
    advertiserId: str | int | None = None  # v3
    adAccountId: str | int | None = None  # v5
    conversionToken: str | None = None  # v5
    appId: str | int | None = None
    sendingUnHashedData: bool = True
    enableDeduplication: bool = False
    deduplicationKey: str | None = None
    eventsMapping: list[EventMap] = []
    sendAsCustomEvent: bool = False
    sendExternalId: bool = False
    sendAsTestEvent: bool = False
    customProperties: list[CustomProperty] = []  # device mode only: accepted, not sent
    endpoint: str | None = None

    def __post_init__(self) -> None:
        self.advertiserId = _id_text(self.advertiserId)
        self.adAccountId = _id_text(self.adAccountId)
        self.appId = _id_text(self.appId)
        self.deduplicationKey = blank(self.deduplicationKey)
        if self.apiVersion == "legacyApi":
            if self.advertiserId is None:
                raise ValueError(
                    "advertiserId is required with the legacy API (v3): the advertiser id "
                    "from Pinterest Ads Manager, or choose newApi"
                )
        else:
            if self.adAccountId is None:
                raise ValueError("adAccountId is required with the new API (v5)")
            check_id("adAccountId", self.adAccountId)  # it goes into the URL path
            if blank(self.conversionToken) is None:
                raise ValueError(
                    "conversionToken is required with apiVersion newApi: the conversion access "
                    "token generated in Pinterest Ads Manager (Conversions)"
                )
            check_token("conversionToken", self.conversionToken)
        check_endpoint(self.endpoint)

    @property
    def v5(self) -> bool:
        return self.apiVersion == "newApi"


HELP = {
    "apiVersion": "legacyApi: Conversions API v3 (advertiser id, no token); newApi: API v5 "
    "(ad account id and conversion token)",
    "advertiserId": "Your Pinterest advertiser id (legacy API only)",
    "adAccountId": "The ad account the conversions belong to (new API only)",
    "conversionToken": "The conversion access token generated in Ads Manager (new API only)",
    "appId": "Your app's store id, sent as app_id with every event",
    "sendingUnHashedData": "On: Sluice normalises and SHA-256 hashes the user's details; off: "
    "the events carry them hashed already",
    "enableDeduplication": "Take each event's event_id from the deduplication key below "
    "instead of its messageId",
    "deduplicationKey": "Path of the event field holding the id your Pinterest tag also "
    "sends (e.g. properties.eventId)",
    "eventsMapping": "Event names mapped to Pinterest's (Checkout, AddToCart, Signup, Lead, "
    "WatchVideo, …); one name may map to several",
    "sendAsCustomEvent": "Send events with no Pinterest name as `custom` rather than under "
    "their own name",
    "sendExternalId": "Send the user id, hashed, as external_id",
    "sendAsTestEvent": "Mark requests as tests: Pinterest checks the events but does not "
    "record them",
    "customProperties": "For the Pinterest tag in the browser (device mode) only: the "
    "Conversions API takes no other properties, so these are not sent",
    "endpoint": "Replaces Pinterest's host (a proxy, a test server); the API paths are added",
}


def _id_text(value: str | int | None) -> str | None:
    """An id setting as text (RudderStack configs may carry numbers), None when unset."""
    if isinstance(value, int):
        return str(value)
    return blank(value)


# ---------------------------------------------------------------------------------------------
# Requests


def _request(settings: PinterestSettings, event: dict[str, Any]) -> Request:
    params = {"test": "true"} if settings.sendAsTestEvent else {}
    if settings.v5:
        url = f"{base_url(settings.endpoint, V5_HOST)}/v5/ad_accounts/{settings.adAccountId}/events"
        headers = {**_JSON, "Authorization": f"Bearer {settings.conversionToken}"}
        return Request("POST", url, headers, params, event)
    return Request(
        "POST", base_url(settings.endpoint, V3_HOST) + V3_PATH, dict(_JSON), params, event
    )


def batch_key(request: Request) -> str | None:
    """Events combine when they go to the same endpoint with the same token and test flag."""
    params = "&".join(f"{k}={v}" for k, v in sorted(request.params.items()))
    return f"{request.method} {request.url}?{params} {request.headers.get('Authorization', '')}"


def combine(requests: Sequence[Request]) -> Request:
    first = requests[0]
    data = [request.body for request in requests]
    return Request(first.method, first.url, first.headers, first.params, {"data": data})


# ---------------------------------------------------------------------------------------------
# Reading the event


def _first(*values: Any) -> str | None:
    """The first value that reads as text (RudderStack's `a ?? b ?? c`, stringified)."""
    return next((t for v in values if (t := segment.text(v)) is not None), None)


def _trait(event: dict[str, Any], *keys: str) -> Any:
    """A trait from `traits`, else `context.traits`, under any of `keys` (the first found)."""
    sources = (
        segment.mapping(event.get("traits")),
        segment.mapping(segment.context(event).get("traits")),
    )
    for key in keys:
        for traits in sources:
            if traits.get(key) is not None:
                return traits[key]
    return None


def _snake(name: str) -> str:
    """Pinterest's spelling of a mapped name: `WatchVideo` → `watch_video`."""
    return re.sub(r"\s+", "_", re.sub(r"([a-z])([A-Z])", r"\1_\2", name.strip())).lower()


def _names(event: dict[str, Any], settings: PinterestSettings) -> list[str]:
    if event.get("type") == "page":
        return ["view_category" if segment.text(event.get("category")) else "page_visit"]
    name = event.get("event") if isinstance(event.get("event"), str) else None
    name = name or event.get("name")
    if not isinstance(name, str) or not name.strip():
        raise Unsendable("the event has no name (`event`, or `name` for a screen call)")
    mapped = [_snake(row.to) for row in settings.eventsMapping if row.from_ == name and row.to]
    if mapped := [m for m in dict.fromkeys(mapped) if m]:
        return mapped
    if (commerce := _COMMERCE.get(name.strip().lower())) is not None:
        return [commerce]
    if settings.sendAsCustomEvent:
        return ["custom"]
    if name in EVENT_NAMES:  # Pinterest's own name (RudderStack sends any name as it is)
        return [name]
    raise Unsendable(
        f"event {name[:80]!r} has no Pinterest event name: map it in eventsMapping or turn on "
        "sendAsCustomEvent (Pinterest refuses names other than its own: "
        f"{', '.join(sorted(EVENT_NAMES))})"
    )


def _action_source(event: dict[str, Any]) -> str:
    props = segment.properties(event)
    given = _first(
        _trait(event, "action_source"), _trait(event, "actionSource"),
        props.get("action_source"), props.get("actionSource"),
    )  # fmt: skip
    if given is None:
        given = _from_channel(event)
    if given is None or given.strip().lower() not in ACTION_SOURCES:
        shown = "none" if given is None else repr(given[:50])
        raise Unsendable(
            f"action_source is {shown}: Pinterest takes only {', '.join(ACTION_SOURCES)} "
            "(set properties.actionSource, or send the event with channel web)"
        )
    return given.strip().lower()


def _from_channel(event: dict[str, Any]) -> str | None:
    """The event's channel as an action source; a mobile app's by its platform."""
    channel = segment.text(event.get("channel"))
    if channel != "mobile":
        return channel
    os_name = (segment.text(segment.dig(segment.context(event), "os.name")) or "").lower()
    if os_name == "android":
        return "app_android"
    if os_name in ("ios", "ipados", "iphone os"):
        return "app_ios"
    return channel


def _event_id(event: dict[str, Any], settings: PinterestSettings) -> str:
    found = None
    if settings.enableDeduplication and settings.deduplicationKey:
        found = segment.text(segment.dig(event, settings.deduplicationKey))
    found = found or segment.text(event.get("messageId"))
    if found is None:
        raise Unsendable("the event has no messageId (Pinterest needs an event_id per event)")
    return found


def _language(event: dict[str, Any]) -> str | None:
    """ISO 639-1, as Pinterest takes it: `en-US` → `en` (anything else as it is)."""
    given = _first(
        segment.properties(event).get("language"),
        segment.mapping(segment.context(event).get("traits")).get("language"),
        segment.context(event).get("locale"),
    )
    if given is None:
        return None
    head = re.split(r"[-_]", given.strip(), maxsplit=1)[0]
    return head.lower() if re.fullmatch(r"[A-Za-z]{2}", head) else given


def _common(event: dict[str, Any], settings: PinterestSettings, now: datetime) -> dict[str, Any]:
    ctx, props = segment.context(event), segment.properties(event)
    made: dict[str, Any] = {
        "event_time": int(segment.occurred(event, now).timestamp()),
        "action_source": _action_source(event),
        "event_id": _event_id(event, settings),
    }
    optional = {
        "event_source_url": _first(segment.dig(ctx, "page.url"), props.get("url")),
        "app_id": settings.appId,
        "advertiser_id": None if settings.v5 else settings.advertiserId,
        "app_name": _first(props.get("appName"), segment.dig(ctx, "app.name")),
        "app_version": _first(props.get("appVersion"), segment.dig(ctx, "app.version")),
        "device_brand": _first(props.get("manufacturer"), segment.dig(ctx, "device.manufacturer")),
        "device_model": _first(props.get("deviceModel"), segment.dig(ctx, "device.model")),
        "device_type": _first(props.get("deviceType"), segment.dig(ctx, "device.type")),
        "device_carrier": _first(segment.dig(ctx, "network.carrier")),
        "os_version": _first(segment.dig(ctx, "os.version")),
        "language": _language(event),
        "partner_name": _first(props.get("partnerName")),
    }
    made.update((k, v) for k, v in optional.items() if v is not None)
    if isinstance(wifi := segment.dig(ctx, "network.wifi"), bool):
        made["wifi"] = wifi
    if isinstance(tracking := segment.dig(ctx, "device.adTrackingEnabled"), bool):
        made["opt_out"] = not tracking
        if settings.v5:
            made["advertiser_tracking_enabled"] = tracking
    return made


# ---------------------------------------------------------------------------------------------
# user_data

_GENDERS = {"f": "f", "female": "f", "m": "m", "male": "m", "n": "n", "non-binary": "n",
            "non binary": "n", "nonbinary": "n"}  # fmt: skip
_BIRTHDAY = ("birthday", "dateOfBirth", "dateofbirth", "dob", "DOB")
_FIRST_NAME = ("firstName", "firstname", "first_name")
_LAST_NAME = ("lastName", "lastname", "last_name")


def _values(value: Any) -> Iterator[str]:
    """Each text value of a field that may hold one value or a list of them."""
    for item in value if isinstance(value, list) else [value]:
        if (text := segment.text(item)) is not None and not isinstance(item, bool):
            yield text


def _normalised(field: str, text: str) -> str | None:
    """A value as Pinterest matches it (before hashing), or None when it cannot be one."""
    if field == "ge":
        return _GENDERS.get(text.strip().lower())
    if field == "zp":  # only digits; a US ZIP+4 is its first five
        return "".join(c for c in facebook.normalised("zp", text) or "" if c.isdigit()) or None
    if field in ("hashed_maids", "external_id"):
        return text.strip() or None
    return facebook.normalised(field, text)


def _address(event: dict[str, Any], key: str) -> Any:
    found = segment.dig(segment.mapping(_trait(event, "address")), key)
    return found if found is not None else _trait(event, key)


def _person(event: dict[str, Any], settings: PinterestSettings) -> dict[str, Any]:
    """The hashed (or said to be hashed) fields, each a list of values."""
    ctx, props = segment.context(event), segment.properties(event)
    raw: dict[str, Any] = {
        "em": _trait(event, "email") or props.get("email"),
        "ph": _trait(event, "phone") or props.get("phone"),
        "ge": _trait(event, "gender"),
        "db": _trait(event, *_BIRTHDAY),
        "ln": _trait(event, *_LAST_NAME),
        "fn": _trait(event, *_FIRST_NAME),
        "ct": _address(event, "city"),
        "st": _address(event, "state"),
        "zp": _address(event, "zip"),
        "country": _address(event, "country"),
        "hashed_maids": segment.dig(ctx, "device.advertisingId"),
    }
    if settings.sendExternalId:
        raw["external_id"] = (
            segment.user_id(event) or _trait(event, "userId", "id") or event.get("anonymousId")
        )
    person: dict[str, Any] = {}
    for field, value in raw.items():
        if settings.sendingUnHashedData:
            normal = (_normalised(field, text) for text in _values(value))
            hashed = [facebook.sha256(n) for n in normal if n is not None]
        else:  # hashed by the sender already: sent as given
            hashed = [t for text in _values(value) if (t := text.strip())]
        if hashed:
            person[field] = hashed
    return person


def _user_data(event: dict[str, Any], settings: PinterestSettings) -> dict[str, Any]:
    data = _person(event, settings)
    plain = {
        "client_ip_address": facebook.client_ip(event),
        "client_user_agent": _first(segment.context(event).get("userAgent")),
        "click_id": _first(segment.properties(event).get("clickId")),
        "partner_id": _first(_trait(event, "partnerId")),
    }
    data.update((k, v) for k, v in plain.items() if v is not None)
    if not (
        data.get("em")
        or data.get("hashed_maids")
        or ("client_ip_address" in data and "client_user_agent" in data)
    ):
        raise Unsendable(
            "Pinterest needs an email (traits.email), an advertising id "
            "(context.device.advertisingId), or both the client's IP and user agent"
        )
    return data


# ---------------------------------------------------------------------------------------------
# custom_data


def _count(value: Any) -> int | float | None:
    """A quantity as Pinterest's integer takes it (2.0 → 2)."""
    number = segment.number(value)
    if isinstance(number, float) and number.is_integer():
        return int(number)
    return number


def _product_id(product: dict[str, Any]) -> str | None:
    return _first(product.get("product_id"), product.get("sku"), product.get("id"))


def _content(product: dict[str, Any], quantity: Any, price: Any) -> dict[str, Any]:
    item = {
        "id": _product_id(product),
        "quantity": _count(quantity) or 1,
        "item_price": _first(price),
        "item_name": _first(product.get("name")),
        "item_category": _first(product.get("category")),
        "item_brand": _first(product.get("brand")),
    }
    return {k: v for k, v in item.items() if v is not None}


def _either(product: dict[str, Any], props: dict[str, Any], key: str) -> Any:
    return product[key] if product.get(key) is not None else props.get(key)


def _products(props: dict[str, Any]) -> dict[str, Any]:
    """content_ids, contents and num_items, from `products[]` or from one product's fields."""
    listed = props.get("products")
    products = [p for p in listed if isinstance(p, dict)] if isinstance(listed, list) else []
    if products:
        quantities = [q for p in products if (q := _count(p.get("quantity"))) is not None]
        # A product without its own quantity or price takes the event's.
        contents = [
            _content(p, _either(p, props, "quantity"), _either(p, props, "price")) for p in products
        ]
        return {
            "num_items": sum(quantities),
            "content_ids": [pid for p in products if (pid := _product_id(p)) is not None],
            "contents": contents,
        }
    if _product_id(props) is None:  # no product named: nothing to describe
        return {}
    return {
        "num_items": _count(props.get("quantity")) or 0,
        "content_ids": [_product_id(props)],
        "contents": [_content(props, props.get("quantity"), props.get("price"))],
    }


def _custom_data(event: dict[str, Any]) -> dict[str, Any]:
    props = segment.properties(event)
    data = _products(props)
    fields = {
        "currency": _first(props.get("currency")),
        "value": _first(props.get("value"), props.get("total"), props.get("revenue")),
        "order_id": _first(props.get("order_id")),
        "search_string": _first(props.get("query")),
        "opt_out_type": _first(props.get("optOutType")),
        "content_name": _first(props.get("contentName")),
        "content_category": _first(props.get("contentCategory")),
        "content_brand": _first(props.get("contentBrand")),
        "np": _first(props.get("np")),
    }
    data.update((k, v) for k, v in fields.items() if v is not None)
    if (items := _count(props.get("numOfItems"))) is not None:
        data["num_items"] = items
    return data


# ---------------------------------------------------------------------------------------------
# The plug-in


def map_event(event: dict[str, Any], settings: PinterestSettings, now: datetime) -> list[Request]:
    kind = event.get("type")
    if kind not in ("track", "page", "screen"):
        raise Unsendable(f"unsupported call type {str(kind)[:50]!r}")
    names = _names(event, settings)
    made = _common(event, settings, now)
    made["user_data"] = _user_data(event, settings)
    if kind == "track" and (custom := _custom_data(event)):
        made["custom_data"] = custom
    return [_request(settings, {"event_name": name, **made}) for name in names]


def classify(status: int, body: bytes, count: int) -> Verdict | Sequence[Judgement]:
    if status == 413:
        # A verdict for the whole batch (no reasons per event): the router sends the events
        # again one by one only on such a verdict, and fails an event too large alone.
        return Verdict.ABORT
    answer = json_answer(body)
    if 200 <= status < 300 or status == 422:
        judged = _per_event(answer, count)
        if judged is not None:
            return judged
        if status != 422:
            return Verdict.DELIVERED
    reason = _error(answer)
    verdict = classify_status(status, body, count)
    if status == 422 or verdict is Verdict.DELIVERED:
        verdict = Verdict.ABORT
    return verdict if reason is None else [Judgement(verdict, reason)] * count


def _per_event(answer: Any, count: int) -> Verdict | list[Judgement] | None:
    """Pinterest's verdict on each event, in the order sent; None when it gives none we can
    place (no list, or not one entry per event)."""
    if not isinstance(answer, dict):
        return None
    events = answer.get("events")
    if not isinstance(events, list) and isinstance(answer.get("details"), dict):
        events = answer["details"].get("events")
    if not isinstance(events, list) or len(events) != count:
        return None
    judged = [_one(entry) for entry in events]
    if all(j.verdict is Verdict.DELIVERED for j in judged):
        return Verdict.DELIVERED
    return judged


def _one(entry: Any) -> Judgement:
    if not isinstance(entry, dict) or entry.get("status") != "failed":
        return Judgement(Verdict.DELIVERED)
    message = segment.text(entry.get("error_message")) or "refused by Pinterest"
    return Judgement(Verdict.ABORT, message[:_REASON])


def _error(answer: Any) -> str | None:
    """Pinterest's `{code, message}`: `Authentication failed. (code 2)`."""
    if not isinstance(answer, dict):
        return None
    message = segment.text(answer.get("message"))
    if message is None:
        return None
    code = segment.text(answer.get("code"))
    return (f"{message} (code {code})" if code else message)[:_REASON]


PINTEREST_TAG = DestinationType(
    name="pinterest_tag",
    title="Pinterest Conversions",
    category="Advertising",
    description="Pinterest Conversions API: conversion events for ads.",
    settings=PinterestSettings,
    map=map_event,
    supported_types=frozenset({"track", "page", "screen"}),
    secret_keys=("conversionToken",),
    help=HELP,
    batch_size=MAX_EVENTS,
    batch_key=batch_key,
    combine=combine,
    classify=classify,
)
