"""TikTok Ads: conversions through TikTok's Events API (RudderStack's `tiktok_ads` keys).

Host: `https://business-api.tiktok.com`, or the `endpoint` setting; paths keep TikTok's
trailing slash. Every request carries the `Access-Token` header (the long-term token of the
TikTok for Business app); the pixel code travels in the body. `version` picks the API:

* Events 1.0 (`v1`, and configs without `version`, as RudderStack reads them): one
  `/open_api/v1.3/pixel/track/` event per request as mapped, `{pixel_code, event, event_id,
  timestamp (ISO, UTC), properties, context{ad.callback, page, user, ip, user_agent}}`.
  `properties` carries `contents[]` (as sent, else built from `products[]`; an item without
  `content_type` takes `properties.contentType`, else `product_group`), `content_id`,
  `content_name`, `content_category`, `content_type`, `currency`, `value`, `order_id`,
  `shop_id`, `status`, `description`, `query`. `context.page`, `context.ad` and
  `context.user` come from `properties.context` when the event has them there, else from its
  context; `properties.clickId` is the ad callback; `context.user` takes the
  `tiktokExternalId` external id and, when absent, the traits' `email` and `phone`.
* Events 2.0 (`v2`): `/open_api/v1.3/event/track/`, `{event_source, event_source_id (the pixel
  code), data[]}` where each entry is `{event, event_id, event_time (unix s), properties,
  page, user, ad, lead, app, limited_data_use}`. `event_source` is `properties.eventSource`
  (or `event_source`) when it is one of web, app, offline, crm, else web; `app` (from
  `properties.app*`, else `context.app`) is sent for app events only. `user` holds `email`
  (trimmed, lower-cased), `phone`, `external_id` (both may be lists), `locale`, `ip`,
  `user_agent`, `ttclid`, `ttp`, `first_name`/`last_name`/`zip_code` (always hashed, as TikTok
  matches them), `city`, `state`, `country`, the advertising ids of iOS (`idfa`, `idfv`) or
  Android (`gaid`) by `context.os.name`, and `att_status`. `properties` adds `contents_ids` and
  `num_items` from the contents, and `content_type: product` for the events TikTok recommends
  it for (AddToCart, CompletePayment, PlaceAnOrder, ViewContent) when none is given.

Only track calls are taken. The event name becomes TikTok's: the standard events the
`eventsToStandard` rows map it to (one event may map to several: v1 sends one request per
standard event, v2 one request with one `data[]` entry per standard event), else TikTok's
standard name from a case-insensitive table (`checkout step completed` → CompletePayment,
`purchase` → Purchase, `subscribe` → Subscribe, …), else the name as sent when
`sendCustomEvents` is on; otherwise the event is refused. `properties.testEventCode` becomes
`test_event_code`: such an event goes alone, never in a batch (TikTok's Test Events tool).

`hashUserProperties` (default on): email, phone and external ids are sent as SHA-256 hex of the
trimmed value (email also lower-cased); a value that already is SHA-256 hex is sent as it is,
since hashing it again would make it match no one. `event_id` (`properties.eventId`, else
`event_id`, else the messageId) is TikTok's dedup key, so a batch sent again after a lost
answer does not count twice.

Batching: events of one pixel and token combine, v1 into `/pixel/batch/` `{pixel_code,
batch[]}` (each entry `type: track`), v2 into one `/event/track/` request per event source.
The router takes 50 jobs a batch: the v1 limit, and well inside v2's 1000 entries even when an
event fans out to several standard events (the settings allow at most 20 per event name).

Answers: TikTok answers HTTP 200 and says what happened in the body's `code`. 0 and 20001
(partial success) are delivered: TikTok's answer does not say which events it kept, and
those it refused would be refused again. 40100 (rate limit) and 40700 (TikTok's internal
error) are retried; 40001 (no permission for the pixel) and 40002 (invalid parameters) are
permanent. One bad event refuses its whole request with 40002: when a v1 batch is refused for
one entry (`Batch.<n>.<field>: …`), that event fails and the others go again without it; a
refusal that names no entry of a batch (Events 2.0 names `data.<n>`, which is not one entry
per job) is judged for the batch as a whole, and the router sends each of its events again
alone, so that only the bad one fails. Any other code is judged by the HTTP status (429 and
5xx retried, other 4xx aborted); with a 2xx status, TikTok's other client-error codes (4xxxx:
a bad or revoked token) are permanent and the rest retried: a non-zero code is no success.
"""

import hashlib
import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

import msgspec
from msgspec import Raw

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
    check_token,
    classify_status,
)

HOST = "https://business-api.tiktok.com"
API = "/open_api/v1.3"
TRACK_V1 = f"{API}/pixel/track/"
BATCH_V1 = f"{API}/pixel/batch/"
TRACK_V2 = f"{API}/event/track/"
MAX_BATCH_V1 = 50
MAX_BATCH_V2 = 1000  # entries in `data[]`
# Standard events one event name may fan out to: keeps 50 jobs within v2's 1000 entries.
MAX_FAN_OUT = MAX_BATCH_V2 // MAX_BATCH_V1
_JSON = {"Content-Type": "application/json"}
_REASON = 300  # characters of TikTok's message kept per event

# RudderStack's names for e-commerce events, and TikTok's standard events, lower-cased.
STANDARD_EVENTS: dict[str, str] = {
    "product added to wishlist": "AddToWishlist",
    "product added": "AddToCart",
    "checkout started": "InitiateCheckout",
    "payment info entered": "AddPaymentInfo",
    "checkout step completed": "CompletePayment",
    "order completed": "PlaceAnOrder",
    "viewcontent": "ViewContent",
    "clickbutton": "ClickButton",
    "search": "Search",
    "contact": "Contact",
    "download": "Download",
    "submitform": "SubmitForm",
    "completeregistration": "CompleteRegistration",
    "subscribe": "Subscribe",
    "purchase": "Purchase",
    "lead": "Lead",
    "customizeproduct": "CustomizeProduct",
    "findlocation": "FindLocation",
    "schedule": "Schedule",
    "application approval": "ApplicationApproval",
    "submit application": "SubmitApplication",
    "start trial": "StartTrial",
}
# Events 2.0 events for which TikTok recommends a content_type (`product` unless given).
_CONTENT_TYPE_EVENTS = frozenset({"AddToCart", "CompletePayment", "PlaceAnOrder", "ViewContent"})
EVENT_SOURCES = ("web", "app", "offline", "crm")
_ATT_STATUSES = frozenset({"AUTHORIZED", "DENIED", "NOT_DETERMINED", "RESTRICTED",
                           "NOT_APPLICABLE"})  # fmt: skip
_APPLE = frozenset({"ios", "ipados", "tvos", "watchos"})
_SHA256 = re.compile(r"[0-9a-f]{64}")
_BATCH_ENTRY = re.compile(r"^batch\.(\d+)\.", re.IGNORECASE)
INVALID = 40002  # TikTok's code for an invalid parameter: one bad event refuses its request
# Codes retried: the rate limit, and TikTok's internal error (RudderStack retries it too).
_RETRIED = frozenset({40100, 40700})


class EventMapping(msgspec.Struct):
    """An `eventsToStandard` row: an event name and the standard event it stands for."""

    from_: str = msgspec.field(name="from", default="")
    to: str = ""


class TikTokAdsSettings(msgspec.Struct):
    accessToken: str
    pixelCode: str
    version: Literal["v1", "v2"] = "v1"
    hashUserProperties: bool = True
    sendCustomEvents: bool = False
    eventsToStandard: list[EventMapping] = []
    endpoint: str | None = None

    def __post_init__(self) -> None:
        check_token("accessToken", self.accessToken)
        self.pixelCode = self.pixelCode.strip()
        if not self.pixelCode:
            raise ValueError("pixelCode (the TikTok pixel's code, from Events Manager) is required")
        fan_out: dict[str, set[str]] = {}
        for row in self.eventsToStandard:
            if not row.from_.strip():
                continue  # RudderStack's form keeps empty rows
            if not row.to.strip():
                raise ValueError(f"eventsToStandard: {row.from_[:80]!r} maps to no event")
            fan_out.setdefault(row.from_.strip().lower(), set()).add(row.to.strip())
        for name, targets in fan_out.items():
            if len(targets) > MAX_FAN_OUT:
                raise ValueError(
                    f"eventsToStandard maps {name[:80]!r} to {len(targets)} events; "
                    f"at most {MAX_FAN_OUT} per event name"
                )
        check_endpoint(self.endpoint)

    def standard(self) -> dict[str, list[str]]:
        """`eventsToStandard` by lower-cased event name, targets in the order given."""
        found: dict[str, list[str]] = {}
        for row in self.eventsToStandard:
            name, target = row.from_.strip().lower(), row.to.strip()
            if name and target not in found.setdefault(name, []):
                found[name].append(target)
        return found


HELP = {
    "accessToken": "The long-term access token of your TikTok for Business app (Events API).",
    "pixelCode": "The code of the TikTok pixel the events are reported to (Events Manager).",
    "version": "Events API version: v2 (Events 2.0, recommended) or v1 (Events 1.0, legacy).",
    "hashUserProperties": "SHA-256 hash email, phone and external id before sending them.",
    "sendCustomEvents": "Send event names that are not TikTok standard events as they are.",
    "eventsToStandard": "Rows {from, to}: send an event name as TikTok standard event(s).",
    "endpoint": "Replaces https://business-api.tiktok.com (a proxy or a test server).",
}


# ---------------------------------------------------------------------------------------------
# Reading the event


def _first(event: dict[str, Any], *paths: str) -> Any:
    """The first value at these paths that is neither missing, null nor an empty string."""
    for path in paths:
        value = segment.dig(event, path)
        if value is not None and value != "":
            return value
    return None


def _scalar(value: Any) -> Any:
    """Text, a number or a boolean as sent; objects and lists are left out."""
    return None if isinstance(value, dict | list) else value


def _text(event: dict[str, Any], *paths: str) -> str | None:
    return next((t for p in paths if (t := segment.text(segment.dig(event, p))) is not None), None)


def _amount(value: Any) -> int | float | Raw | None:
    """A number as sent (numeric text as a number); anything else is left out."""
    if isinstance(value, int | float | Raw) and not isinstance(value, bool):
        return value if segment.number(value) is not None else None
    return segment.number(value) if isinstance(value, str) else None


def _texts(value: Any) -> str | list[str] | None:
    """An id or a list of ids (TikTok takes several external ids or phones), as text."""
    if isinstance(value, list):
        found = [t for item in value if (t := segment.text(item)) is not None]
        return found or None
    return segment.text(value)


def _external_id(event: dict[str, Any]) -> str | list[str] | None:
    """The `tiktokExternalId` entry of `context.externalId` (its id may be a list)."""
    entries = segment.context(event).get("externalId")
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, dict) and entry.get("type") == "tiktokExternalId":
            return _texts(entry.get("id"))
    return None


def _hash(text: str) -> str:
    text = text.strip()
    return text if _SHA256.fullmatch(text) else hashlib.sha256(text.encode()).hexdigest()


def _hashed(value: str | list[str], *, lower: bool = False) -> str | list[str]:
    if isinstance(value, list):
        return [_hash(v.lower() if lower else v) for v in value]
    return _hash(value.lower() if lower else value)


def _iso(when: datetime) -> str:
    when = when.astimezone(UTC)
    spec = "milliseconds" if when.microsecond else "seconds"
    return when.isoformat(timespec=spec).replace("+00:00", "Z")


def _pruned(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None and v != {} and v != []}


# ---------------------------------------------------------------------------------------------
# Event names


def _names(event: dict[str, Any], settings: TikTokAdsSettings) -> list[str]:
    """The TikTok event name(s) an event is sent as."""
    name = event.get("event")
    if not isinstance(name, str) or not name.strip():
        raise Unsendable("a track call needs an event name (`event`)")
    key = name.strip().lower()
    mapped = settings.standard().get(key)
    if mapped:
        return mapped
    if key in STANDARD_EVENTS:
        return [STANDARD_EVENTS[key]]
    if settings.sendCustomEvents:
        return [name]
    raise Unsendable(
        f"event {name[:80]!r} is not a TikTok standard event: map it in eventsToStandard, "
        "or turn on sendCustomEvents"
    )


def _event_id(event: dict[str, Any]) -> str | None:
    return _text(event, "properties.eventId", "properties.event_id", "messageId")


def _test_code(event: dict[str, Any]) -> str | None:
    return segment.text(segment.properties(event).get("testEventCode"))


# ---------------------------------------------------------------------------------------------
# Contents


def _content_id(value: Any) -> str | None:
    """TikTok refuses a content id that is not a string: numbers go as their text."""
    return segment.text(value) if not isinstance(value, bool) else None


def _given_contents(props: dict[str, Any]) -> list[dict[str, Any]] | None:
    given = props.get("contents")
    if given is None or given == "":
        return None
    items = given if isinstance(given, list) else [given]
    contents = []
    for item in items:
        if not isinstance(item, dict):
            continue
        item = dict(item)
        if "content_id" in item:
            item["content_id"] = _content_id(item["content_id"])
        contents.append(_pruned(item))
    return contents


def _product_contents(props: dict[str, Any], content_type: str | None) -> list[dict[str, Any]]:
    """`products[]` as TikTok contents; `content_type` only for Events 1.0."""
    products = props.get("products")
    contents = []
    for product in products if isinstance(products, list) else []:
        if not isinstance(product, dict):
            continue
        kind = None
        if content_type is not None:
            kind = segment.text(product.get("contentType")) or content_type
        product_id = _first(product, "product_id", "productId", "sku", "id")
        item = {
            "content_type": kind,
            "content_id": _content_id(product_id),
            "content_category": segment.text(product.get("category")),
            "content_name": segment.text(product.get("name")),
            "price": _amount(product.get("price")),
            "quantity": _amount(product.get("quantity")),
            "description": segment.text(product.get("description")),
            "brand": segment.text(product.get("brand")),
        }
        contents.append(_pruned(item))
    return contents


# ---------------------------------------------------------------------------------------------
# Events 1.0


def _v1_properties(event: dict[str, Any]) -> dict[str, Any]:
    props = segment.properties(event)
    given_type = _text(event, "properties.contentType")
    contents = _given_contents(props)
    if contents is None and isinstance(props.get("products"), list):
        default = given_type or _text(event, "properties.content_type") or "product"
        contents = _product_contents(props, default)
    for item in contents or []:
        item.setdefault("content_type", given_type or "product_group")
    return _pruned({
        "contents": contents,
        "content_category": _text(event, "properties.category"),
        "status": _text(event, "properties.status"),
        "content_name": _text(event, "properties.name"),
        "content_id": _text(event, "properties.product_id", "properties.productId"),
        "shop_id": _text(event, "properties.shop_id", "properties.shopId"),
        "order_id": _text(event, "properties.order_id", "properties.orderId"),
        "content_type": _text(event, "properties.contentType", "properties.content_type"),
        "currency": _text(event, "properties.currency"),
        "value": _amount(props.get("value")),
        "description": _text(event, "properties.description"),
        "query": _text(event, "properties.query"),
    })  # fmt: skip


def _v1_user(event: dict[str, Any], settings: TikTokAdsSettings) -> dict[str, Any]:
    given = segment.mapping(segment.dig(event, "properties.context.user"))
    traits = segment.traits(event)
    external = _external_id(event) or _texts(given.get("external_id"))
    if isinstance(external, list):  # Events 1.0 takes one external id
        external = external[0]
    email = segment.text(given.get("email")) or segment.text(traits.get("email"))
    phone = segment.text(given.get("phone_number")) or segment.text(traits.get("phone"))
    if settings.hashUserProperties:
        external = _hashed(external) if external else None
        email = _hash(email.lower()) if email else None
        phone = _hash(phone) if phone else None
    return _pruned({"external_id": external, "email": email, "phone_number": phone,
                    "ttp": segment.text(given.get("ttp"))})  # fmt: skip


def _v1_context(event: dict[str, Any], settings: TikTokAdsSettings) -> dict[str, Any]:
    page = segment.mapping(_first(event, "properties.context.page", "context.page"))
    ad = segment.mapping(_first(event, "properties.context.ad", "context.ad"))
    callback = _text(event, "properties.clickId") or segment.text(ad.get("callback"))
    return _pruned({
        "ad": _pruned({"callback": callback}),
        "page": _pruned({"url": segment.text(page.get("url")),
                         "referrer": segment.text(page.get("referrer"))}),
        "user": _v1_user(event, settings),
        "ip": segment.ip(event),
        "user_agent": _text(event, "context.userAgent"),
    })  # fmt: skip


def _v1(event: dict[str, Any], settings: TikTokAdsSettings, now: datetime) -> list[Request]:
    names = _names(event, settings)
    common = _pruned({
        "event_id": _event_id(event),
        "timestamp": _iso(segment.occurred(event, now)),
        "test_event_code": _test_code(event),
        "properties": _v1_properties(event),
        "context": _v1_context(event, settings),
    })  # fmt: skip
    url = f"{base_url(settings.endpoint, HOST)}{TRACK_V1}"
    headers = {"Access-Token": settings.accessToken, **_JSON}
    return [
        Request("POST", url, dict(headers),
                body={"pixel_code": settings.pixelCode, "event": name, **common})
        for name in names
    ]  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Events 2.0


def _event_source(event: dict[str, Any]) -> str:
    props = segment.properties(event)
    for value in (props.get("eventSource"), props.get("event_source")):
        if value in EVENT_SOURCES:
            return str(value)
    return "web"


def _v2_properties(event: dict[str, Any]) -> dict[str, Any]:
    props = segment.properties(event)
    contents = _given_contents(props)
    if contents is None and isinstance(props.get("products"), list):
        contents = _product_contents(props, None)
    ids = [i for item in contents or [] if (i := item.get("content_id"))]
    query = _text(event, "properties.query")
    return _pruned({
        "contents": contents,
        "contents_ids": ids,
        "num_items": len(ids) or None,
        "content_type": _text(event, "properties.contentType", "properties.content_type"),
        "search_string": query,
        "shop_id": _text(event, "properties.shop_id", "properties.shopId"),
        "order_id": _text(event, "properties.order_id", "properties.orderId"),
        "currency": _text(event, "properties.currency"),
        "value": _amount(props.get("value")),
        "description": _text(event, "properties.description"),
        "query": query,
    })  # fmt: skip


def _always_hashed(value: str | None, drop: str = "") -> str | None:
    """Names and zip codes: TikTok matches them hashed, whatever hashUserProperties says."""
    if value is None:
        return None
    text = value.strip().lower()
    for char in drop:
        text = text.replace(char, "")
    return _hash(text) if text else None


def _v2_user(event: dict[str, Any], settings: TikTokAdsSettings) -> dict[str, Any]:
    user = {
        "locale": _text(event, "properties.context.user.locale", "context.locale"),
        **_v2_contact(event, settings),
        "ttclid": _text(event, "properties.ttclid"),
        "ttp": _text(event, "properties.context.user.ttp", "properties.ttp"),
        "ip": _text(event, "properties.context.user.ip") or segment.ip(event),
        "user_agent": _text(event, "properties.context.user.userAgent", "context.userAgent"),
        **_v2_name_and_place(event),
        "att_status": _att_status(event),
    }
    return _pruned(user | _device_ids(event, settings))


def _v2_contact(event: dict[str, Any], settings: TikTokAdsSettings) -> dict[str, Any]:
    """Email (trimmed, lower-cased), phone and external ids, hashed when the settings say so."""
    email = _text(event, "properties.context.user.email", "context.user.email", "traits.email",
                  "context.traits.email", "properties.email")  # fmt: skip
    phone = _texts(_first(event, "properties.context.user.phone", "traits.phone",
                          "context.traits.phone", "properties.phone"))  # fmt: skip
    external = _external_id(event)
    email = email.strip().lower() if email else None
    if settings.hashUserProperties:
        email = _hash(email) if email else None
        phone = _hashed(phone) if phone else None
        external = _hashed(external) if external else None
    return {"email": email, "phone": phone, "external_id": external}


_NAME_KEYS = (
    ("first_name", ("firstName", "firstname", "first_name")),
    ("last_name", ("lastName", "lastname", "last_name")),
    ("zip_code", ("zip", "zipcode", "zipCode", "postalCode", "postal_code", "address.zip",
                  "address.postalCode", "address.postal_code")),
)  # fmt: skip


def _v2_name_and_place(event: dict[str, Any]) -> dict[str, Any]:
    """Names and zip code (always hashed), city, country and state."""
    traits = segment.traits(event)
    name = {key: _text(traits, *paths) for key, paths in _NAME_KEYS}
    return {
        "first_name": _always_hashed(name["first_name"]),
        "last_name": _always_hashed(name["last_name"]),
        "zip_code": _always_hashed(name["zip_code"], drop=" -"),
        "city": _text(event, "context.traits.city", "context.traits.address.city",
                      "properties.city"),
        "country": _text(event, "context.traits.country", "context.traits.address.country",
                         "properties.country"),
        "state": _text(event, "context.traits.address.state", "context.traits.state",
                       "properties.state"),
    }  # fmt: skip


def _att_status(event: dict[str, Any]) -> str | None:
    status = _text(event, "properties.att_status")
    return status.upper() if status and status.upper() in _ATT_STATUSES else None


def _device_ids(event: dict[str, Any], settings: TikTokAdsSettings) -> dict[str, Any]:
    """The advertising id as the platform names it: `idfa` (and `idfv`) or `gaid`."""
    os_name = (_text(event, "context.os.name") or "").lower()
    advertising = _text(event, "context.device.advertisingId")
    advertising = advertising.strip() if advertising else None
    if os_name in _APPLE:
        idfa = _hash(advertising) if advertising and settings.hashUserProperties else advertising
        return {"idfa": idfa, "idfv": _text(event, "context.device.id")}
    if os_name == "android" and advertising:
        gaid = advertising.lower()
        return {"gaid": _hash(gaid) if settings.hashUserProperties else gaid}
    return {}


def _v2_entry(
    event: dict[str, Any], settings: TikTokAdsSettings, name: str, now: datetime, source: str
) -> dict[str, Any]:
    properties = _v2_properties(event)
    if name in _CONTENT_TYPE_EVENTS and "content_type" not in properties:
        properties["content_type"] = "product"
    limited = segment.properties(event).get("limited_data_use")
    return _pruned({
        "event": name,
        "event_id": _event_id(event),
        "event_time": int(segment.occurred(event, now).timestamp()),
        "limited_data_use": limited if isinstance(limited, bool) else None,
        "properties": properties,
        "page": _v2_page(event),
        "user": _v2_user(event, settings),
        "ad": _pruned({k: _scalar(_first(event, *(f"properties.{p}" for p in paths)))
                       for k, paths in _AD}),
        "lead": _v2_lead(event),
        "app": _app(event) if source == "app" else None,
    })  # fmt: skip


def _v2_page(event: dict[str, Any]) -> dict[str, Any]:
    return _pruned({
        "url": _text(event, "properties.context.page.url", "properties.url", "context.page.url"),
        "referrer": _text(event, "properties.context.page.referrer", "properties.referrer",
                          "context.page.referrer"),
    })  # fmt: skip


def _v2_lead(event: dict[str, Any]) -> dict[str, Any]:
    return _pruned({
        "lead_id": _text(event, "properties.leadId", "properties.lead_id"),
        "lead_event_source": _text(event, "properties.leadEventSource",
                                   "properties.lead_event_source"),
    })  # fmt: skip


_AD: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("callback", ("callBack",)),
    ("campaign_id", ("campaignId", "campaign_id")),
    ("ad_id", ("adId", "ad_id")),
    ("creative_id", ("creativeId", "creative_id")),
    ("is_retargeting", ("isRetargeting", "is_retargeting")),
    ("attributed", ("attributed",)),
    ("attribution_type", ("attributionType", "attribution_type")),
    ("attribution_provider", ("attributionProvider", "attribution_provider")),
)


def _app(event: dict[str, Any]) -> dict[str, Any]:
    return _pruned({
        "app_id": _text(event, "properties.appId", "properties.app_id", "context.app.namespace"),
        "app_name": _text(event, "properties.appName", "properties.app_name", "context.app.name"),
        "app_version": _text(event, "properties.appVersion", "properties.app_version",
                             "context.app.version"),
    })  # fmt: skip


def _v2(event: dict[str, Any], settings: TikTokAdsSettings, now: datetime) -> list[Request]:
    names = _names(event, settings)
    source = _event_source(event)
    body = _pruned({
        "event_source": source,
        "event_source_id": settings.pixelCode,
        "test_event_code": _test_code(event),
        "data": [_v2_entry(event, settings, name, now, source) for name in names],
    })  # fmt: skip
    url = f"{base_url(settings.endpoint, HOST)}{TRACK_V2}"
    return [Request("POST", url, {"Access-Token": settings.accessToken, **_JSON}, body=body)]


# ---------------------------------------------------------------------------------------------
# The plug-in


def map_event(event: dict[str, Any], settings: TikTokAdsSettings, now: datetime) -> list[Request]:
    if event.get("type") != "track":
        raise Unsendable(f"TikTok Ads takes track calls only, not {str(event.get('type'))[:50]!r}")
    mapping: Callable[[dict[str, Any], TikTokAdsSettings, datetime], list[Request]]
    mapping = _v2 if settings.version == "v2" else _v1
    return mapping(event, settings, now)


def batch_key(request: Request) -> str | None:
    """Requests of one pixel, token and (v2) event source combine; test events never do."""
    body = request.body if isinstance(request.body, dict) else {}
    if "test_event_code" in body:
        return None
    token = request.headers.get("Access-Token", "")
    if request.url.endswith(TRACK_V1):
        return f"v1 {request.url} {token} {body.get('pixel_code')}"
    return f"v2 {request.url} {token} {body.get('event_source_id')} {body.get('event_source')}"


def combine(requests: Sequence[Request]) -> Request:
    first = requests[0]
    if first.url.endswith(TRACK_V1):
        batch = [
            {**{k: v for k, v in r.body.items() if k != "pixel_code"}, "type": "track"}
            for r in requests
        ]
        url = first.url.removesuffix(TRACK_V1) + BATCH_V1
        return Request("POST", url, first.headers, body={"pixel_code": first.body["pixel_code"],
                                                         "batch": batch})  # fmt: skip
    data = [entry for r in requests for entry in r.body["data"]]
    return Request("POST", first.url, first.headers, body={**first.body, "data": data})


def classify(status: int, body: bytes, count: int) -> Verdict | Sequence[Judgement]:
    answer = _answer(body)
    code = answer.get("code")
    if not isinstance(code, int) or isinstance(code, bool):
        return classify_status(status, body, count)  # not TikTok's answer (a proxy's page)
    if code in (0, 20001):
        return Verdict.DELIVERED
    reason = _reason(answer, code)
    if code in _RETRIED:
        verdict = Verdict.RETRY
    elif code in (40001, 40002):
        verdict = Verdict.ABORT
        if (entry := _refused_entry(answer, count)) is not None:
            return _one_refused(entry, reason, count)
        if code == INVALID and count > 1:
            # One bad event, not named (an Events 2.0 request, whose entries are not one per
            # job): refused as a whole, so that the router sends each event again alone.
            return Verdict.ABORT
    else:
        verdict = classify_status(status, body, count)
        if verdict is Verdict.DELIVERED:  # a non-zero code is no success
            verdict = Verdict.ABORT if 40000 <= code < 50000 else Verdict.RETRY
    return [Judgement(verdict, reason)] * count


def _answer(body: bytes) -> dict[str, Any]:
    try:
        decoded = codec.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError):
        return {}
    return decoded if isinstance(decoded, dict) else {}


def _reason(answer: dict[str, Any], code: int) -> str:
    message = segment.text(answer.get("message")) or "no message"
    request_id = segment.text(answer.get("request_id"))
    where = f", request_id {request_id[:64]}" if request_id else ""
    return f"{message[:_REASON]} (code {code}{where})"


def _refused_entry(answer: dict[str, Any], count: int) -> int | None:
    """The v1 batch entry TikTok names in its refusal (`Batch.3.properties…`), if any."""
    match = _BATCH_ENTRY.match(segment.text(answer.get("message")) or "")
    if match is None or count < 2:
        return None
    index = int(match[1])
    return index if index < count else None


def _one_refused(entry: int, reason: str, count: int) -> list[Judgement]:
    """The named event fails; the others, refused only for being in its batch, go again."""
    again = f"sent again: TikTok refused the batch for another event in it ({reason})"
    return [
        Judgement(Verdict.ABORT, reason) if i == entry else Judgement(Verdict.RETRY, again)
        for i in range(count)
    ]


TIKTOK_ADS = DestinationType(
    name="tiktok_ads",
    title="TikTok Ads",
    category="Advertising",
    description="TikTok Events API: conversion events for ads.",
    settings=TikTokAdsSettings,
    map=map_event,
    supported_types=frozenset({"track"}),
    secret_keys=("accessToken",),
    help=HELP,
    batch_size=MAX_BATCH_V1,
    batch_key=batch_key,
    # TikTok answers HTTP 200 whatever happened: `classify` judges an invalid parameter that
    # names no event (40002) as a refusal of the whole batch, which the router then splits.
    split_on=frozenset({200}),
    combine=combine,
    classify=classify,
)
