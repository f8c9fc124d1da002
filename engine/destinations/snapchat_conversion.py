"""Snapchat Conversions API: track and page events as Snap conversions (RudderStack's
`snapchat_conversion` keys).

Hosts and auth, by `apiVersion` (the `endpoint` setting replaces `https://tr.snapchat.com`):

* `legacyApi` (the default: Conversions API v2) → `POST https://tr.snapchat.com/v2/conversion`
  with `Authorization: Bearer <apiKey>`; a conversion is one flat JSON object, a request a bare
  JSON array of them.
* `newApi` (Conversions API v3) → `POST https://tr.snapchat.com/v3/<id>/events?access_token=
  <apiKey>` with `{"data": [...]}`; the id is `snapAppId` for app events, else `pixelId`. The
  token travels in the URL: it is a secret setting like any other, masked wherever a request,
  an error or an answer is shown.

What is sent:

* The conversion type comes from `properties.eventConversionType`, else the event's channel:
  web → WEB (needs `pixelId`), mobile → MOBILE_APP (needs `snapAppId` and `appId`), anything
  else → OFFLINE (needs `pixelId`). v2 writes it as `event_conversion_type` with `pixel_id` or
  `snap_app_id` + `app_id`; v3 as `action_source`, with `app_data {app_id, extinfo}` for apps.
* page → PAGE_VIEW. track → the Snap event its name stands for: Segment's e-commerce names
  (Products Searched → SEARCH, Product Viewed → VIEW_CONTENT, Order Completed → PURCHASE, …),
  RudderStack's snake-case names of Snap's events (`sign_up`, `level_complete`, …), or Snap's
  own names (`PURCHASE`); spaces count as `_` and case does not matter. Rows of
  `rudderEventsToSnapEvents` whose `from` is the event's name replace that lookup, one
  conversion per distinct `to`. A name none of these know cannot be sent. Other calls are not
  taken.
* The person: email, phone, first, middle and last name, gender, city, state, ZIP and country
  from the traits, normalised as `engine.destinations.facebook` does for Meta (trimmed and
  lower-cased, phone digits only), then SHA-256 hashed; a value that is 64 hex digits already is
  taken as hashed. The advertising id (`properties.adId`, else `device.advertisingId`), the
  IDFV (`properties.idfv`, else `device.id`, Apple devices only), the IP (`context.ip`, else the
  gateway's `request_ip`) and the user agent: v2 hashes the ids and the IP and lower-cases the
  user agent; v3 sends them as they are. Snap needs at least an email, a phone, an advertising
  id, or an IP with a user agent to match a conversion: an event with none cannot be sent.
* Properties: item ids (`products[].product_id` for list, checkout and order events,
  `product_id` for product events, else `item_ids`), category, number of items, price (`price`,
  `value` or `revenue`; for list, checkout and order events the products' sum when none is
  given), currency, search string, transaction id, and (v2) Snap's descriptive fields
  (`description`, `brands`, `event_tag`, `click_id`, `level`, …). v3 also lists `contents`. A
  property of the wrong type is left out rather than sent: Snap refuses a whole request for
  one bad conversion, and a request carries up to 2000 users' events.
* The time (`timestamp`, else `originalTimestamp`, else the gateway's `receivedAt`) in Unix
  seconds, as text. Snap takes conversions up to 37 days old in v2, 7 days in v3: older events
  are refused before sending. A time in the future is sent as it is: RudderStack sends it, and
  what Snap says of it is not known.
* Dedup id: with `enableDeduplication`, the value at the `deduplicationKey` path (default
  `messageId`) is sent as `client_dedup_id` (v2) or `event_id` (v3); without it, the event's
  own `client_dedup_id` or transaction id (v3 `event_id`) is sent, if it has one.

Batching: conversions for the same endpoint with the same credentials combine, up to 2000 per
request (Snap's limit in both versions): a v2 array of conversions, a v3 `data` list per pixel
or app id. Every request carries one conversion, so a batch holds one per job.

Answers: Snap has no per-conversion verdict; 2xx is delivered, 429 and 5xx are retried, any
other status (400 `{"status": "FAILED", "reason": …}`, 401 for a bad token) is final, with
Snap's reason. One invalid conversion makes Snap refuse its whole request with 400, naming
none Sluice could place: a 400 (or 413) to a batch is judged for the batch as a whole, and the
router sends each of its conversions again alone, so that only the bad one fails.
"""

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
from msgspec import Raw

from engine import codec
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
)

HOST = "https://tr.snapchat.com"
LEGACY, NEW = "legacyApi", "newApi"
MAX_BATCH = 2000
_V2_PATH = "/v2/conversion"
_JSON = {"Content-Type": "application/json"}
_MAX_AGE = {LEGACY: timedelta(days=37), NEW: timedelta(days=7)}
_CHANNELS = {"web": "WEB", "mobile": "MOBILE_APP", "mobile_app": "MOBILE_APP", "offline": "OFFLINE"}
_APPLE = frozenset({"ios", "ipados", "tvos", "watchos"})
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s.]+(\.[^@\s.]+)+")
_PATH = re.compile(r"[A-Za-z0-9_$-]+(\.[A-Za-z0-9_$-]+)*")
_ZONE = re.compile(r"[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+){0,2}")
_LIMITED = "['lmu']"  # Snap's "limited data use" flag, as its v2 API writes it
_REASON = 300  # characters of Snap's reason kept per event


# ---------------------------------------------------------------------------------------------
# Snap's events


@dataclass(frozen=True)
class _Kind:
    """Where a Snap event finds its properties: its item ids (`products` for products[].
    product_id, else a property), its transaction id, category and search string."""

    items: str = "item_ids"
    transaction: tuple[str, ...] = ("transaction_id", "transactionId")
    category: tuple[str, ...] = ("category",)
    search: tuple[str, ...] = ("search_string",)

    @property
    def products(self) -> bool:
        return self.items == "products"


_DEFAULT = _Kind()
_PRODUCT = _Kind("product_id")
_ORDER = ("order_id", "orderId")

# RudderStack's names (lower case, `_` for spaces) → Snap's event type and how it is read.
EVENTS: dict[str, tuple[str, _Kind]] = {
    "products_searched": ("SEARCH", _Kind(search=("search_string", "query"))),
    "product_list_viewed": ("VIEW_CONTENT", _Kind("products")),
    "promotion_viewed": ("AD_VIEW", _DEFAULT),
    "promotion_clicked": ("AD_CLICK", _DEFAULT),
    "product_viewed": ("VIEW_CONTENT", _PRODUCT),
    "product_added": ("ADD_CART", _PRODUCT),
    "checkout_started": ("START_CHECKOUT", _Kind("products", _ORDER)),
    "payment_info_entered": ("ADD_BILLING", _Kind(transaction=("checkout_id", "transactionId"))),
    "order_completed": ("PURCHASE", _Kind("products", _ORDER, ("item_category", "category"))),
    "product_added_to_wishlist": ("ADD_TO_WISHLIST", _PRODUCT),
    **{
        snap.lower(): (snap, _DEFAULT)
        for snap in (
            "SIGN_UP", "APP_OPEN", "SAVE", "SUBSCRIBE", "COMPLETE_TUTORIAL", "LEVEL_COMPLETE",
            "INVITE", "LOGIN", "SHARE", "RESERVE", "ACHIEVEMENT_UNLOCKED", "SPENT_CREDITS",
            "RATE", "START_TRIAL", "LIST_VIEW", "PAGE_VIEW", "APP_INSTALL", "CUSTOM_EVENT_1",
            "CUSTOM_EVENT_2", "CUSTOM_EVENT_3", "CUSTOM_EVENT_4", "CUSTOM_EVENT_5",
        )
    },
}  # fmt: skip
# Snap's own names, read as the Segment event behind them (VIEW_CONTENT: one product's view).
_SNAP_NAMES: dict[str, _Kind] = {snap: kind for snap, kind in EVENTS.values()}


def _key(name: str) -> str:
    return "_".join(name.split()).lower()


def snap_event(name: str) -> tuple[str, _Kind] | None:
    """The Snap event a name stands for: RudderStack's name for it, or Snap's own."""
    key = _key(name)
    found = EVENTS.get(key)
    if found is None and key.upper() in _SNAP_NAMES:
        found = key.upper(), _SNAP_NAMES[key.upper()]
    return found


# ---------------------------------------------------------------------------------------------
# Settings


class Pair(msgspec.Struct):
    """A `{from, to}` row of RudderStack's mapping tables."""

    from_: str = msgspec.field(name="from", default="")
    to: str = ""


class SnapchatSettings(msgspec.Struct):
    apiKey: str
    pixelId: str | None = None
    snapAppId: str | None = None
    appId: str | None = None
    apiVersion: Literal["legacyApi", "newApi"] = "legacyApi"
    enableDeduplication: bool = False
    deduplicationKey: str | None = None
    rudderEventsToSnapEvents: list[Pair] = []
    endpoint: str | None = None

    def __post_init__(self) -> None:
        check_token("apiKey", self.apiKey)
        self.pixelId = blank(self.pixelId)
        self.snapAppId = blank(self.snapAppId)
        self.appId = blank(self.appId)
        for key in ("pixelId", "snapAppId"):  # they go into v3 URL paths
            if (value := getattr(self, key)) is not None:
                check_id(key, value)
        if self.pixelId is None and self.snapAppId is None:
            raise ValueError(
                "set pixelId (for web and offline events) or snapAppId and appId (for app "
                "events): without either no event can be sent"
            )
        if self.snapAppId is not None and self.appId is None:
            raise ValueError(
                "snapAppId is set without appId: app events need both (appId is the app's ID "
                "in the App Store or Google Play)"
            )
        self.deduplicationKey = blank(self.deduplicationKey)
        if self.deduplicationKey is not None and not _PATH.fullmatch(self.deduplicationKey):
            raise ValueError(
                f"deduplicationKey {self.deduplicationKey[:80]!r} must be a path in the event "
                "such as messageId or properties.order_id"
            )
        for row in self.rudderEventsToSnapEvents:
            if row.from_.strip() and row.to.strip() and snap_event(row.to) is None:
                raise ValueError(
                    f"rudderEventsToSnapEvents maps {row.from_[:80]!r} to {row.to[:80]!r}, "
                    "which is not a Snapchat event (PURCHASE, SIGN_UP, products_searched, …)"
                )
        check_endpoint(self.endpoint)

    @property
    def v3(self) -> bool:
        return self.apiVersion == NEW


HELP = {
    "apiKey": "The Conversions API token from Snap's Business Manager (a secret).",
    "pixelId": "The Snap Pixel ID: needed for web and offline events.",
    "snapAppId": "The Snap App ID: needed, with appId, for app (mobile channel) events.",
    "appId": "The app's ID in the App Store or Google Play: needed for app events.",
    "apiVersion": "legacyApi: Conversions API v2 (events up to 37 days old); newApi: v3 "
    "(events up to 7 days old).",
    "enableDeduplication": "Send a dedup id with each event, so Snap counts an event sent by "
    "the pixel and by Sluice once.",
    "deduplicationKey": "Where the dedup id is in the event (default messageId), e.g. "
    "properties.order_id.",
    "rudderEventsToSnapEvents": "Your track event names (from) and the Snap events they are "
    "(to: PURCHASE, SIGN_UP, … or RudderStack's names such as products_searched).",
    "endpoint": "Replaces https://tr.snapchat.com (a proxy, a test server).",
}


# ---------------------------------------------------------------------------------------------
# Reading the event


def _scalar(value: Any) -> Any:
    """A value fit for a plain field: non-empty text, a boolean or a number; else None."""
    if isinstance(value, str):
        return value or None
    if isinstance(value, bool | int | float | Raw):
        return value
    return None


def _text(props: dict[str, Any], keys: Sequence[str]) -> str | None:
    return next((t for k in keys if (t := segment.text(props.get(k))) is not None), None)


def _amount(props: dict[str, Any], keys: Sequence[str]) -> Any:
    """The first numeric value (a number or numeric text), as it was sent."""
    return next((props[k] for k in keys if segment.number(props.get(k)) is not None), None)


def _texts(value: Any) -> list[str] | None:
    if not isinstance(value, list):
        return None
    found = [t for item in value if (t := segment.text(item)) is not None]
    return found or None


def conversion_type(event: dict[str, Any]) -> str:
    """WEB, MOBILE_APP or OFFLINE: `properties.eventConversionType`, else the channel."""
    for value in (segment.properties(event).get("eventConversionType"), event.get("channel")):
        if isinstance(value, str) and (found := _CHANNELS.get(value.strip().lower())):
            return found
    return "OFFLINE"


def _check_ids(settings: SnapchatSettings, conversion: str) -> None:
    if conversion == "MOBILE_APP":
        if settings.snapAppId is None:  # (with it, the settings have appId too)
            raise Unsendable("app events (mobile channel) need snapAppId and appId in the settings")
    elif settings.pixelId is None:
        raise Unsendable(f"{conversion.lower()} events need pixelId in the settings")


def _hashed(raw: str | None, normalised: str | None) -> str | None:
    """SHA-256 of the normalised value, or the value itself when it is a hash already."""
    if raw is not None and _SHA256.fullmatch(raw):
        return raw.lower()
    return facebook.sha256(normalised) if normalised is not None else None


_PERSON = ("em", "ph", "fn", "ln", "ge", "ct", "st", "zp", "country")


def person(event: dict[str, Any]) -> dict[str, str]:
    """The person's details, hashed, by Meta's field names (Snap's v3 uses them too)."""
    plain = facebook.customer(event)
    given = facebook.customer(event, prehashed=True)  # trimmed only
    props = segment.properties(event)
    for field, key in (("em", "email"), ("ph", "phone")):
        if field not in given and (text := segment.text(props.get(key))) is not None:
            given[field] = text.strip()
            if (value := facebook.normalised(field, text)) is not None:
                plain[field] = value
    if "em" in plain and not _EMAIL.fullmatch(plain["em"]):
        del plain["em"]  # not an address: nobody to match
    found = {}
    for field in _PERSON:
        if (value := _hashed(given.get(field), plain.get(field))) is not None:
            found[field] = value
    return found


def _middle_name(event: dict[str, Any]) -> str | None:
    traits = segment.traits(event)
    raw = _text(traits, ("middleName", "middlename", "middle_name"))
    return _hashed(raw.strip(), raw.strip().lower() or None) if raw else None


@dataclass(frozen=True)
class _Device:
    idfv: str | None
    madid: str | None
    ip: str | None
    agent: str | None


def _device(event: dict[str, Any]) -> _Device:
    ctx, props = segment.context(event), segment.properties(event)
    device = segment.mapping(ctx.get("device"))
    apple = str(device.get("type") or "").lower() in _APPLE
    idfv = (segment.text(props.get("idfv")) or segment.text(device.get("id"))) if apple else None
    madid = segment.text(props.get("adId")) or facebook.advertising_id(event)
    return _Device(idfv, madid, facebook.client_ip(event), segment.text(ctx.get("userAgent")))


def _check_match_keys(found: dict[str, str], device: _Device) -> None:
    if not (found.get("em") or found.get("ph") or device.madid or (device.ip and device.agent)):
        raise Unsendable(
            "Snapchat needs an email, a phone number, an advertising id, or an IP address with "
            "a user agent to match a conversion; the event has none of them"
        )


def _event_time(event: dict[str, Any], now: datetime, version: str) -> str:
    when = segment.occurred(event, now)
    oldest = _MAX_AGE[version]
    if now - when > oldest:
        raise Unsendable(
            f"the event happened at {when.isoformat()}; Snapchat's Conversions API "
            f"{'v3' if version == NEW else 'v2'} takes events up to {oldest.days} days old"
        )
    return str(int(when.timestamp()))


def _limited_use(event: dict[str, Any]) -> str | None:
    """Limited data use when the user refused tracking (App Tracking Transparency: denied)."""
    status = segment.dig(segment.context(event), "device.attTrackingStatus")
    return _LIMITED if status == 2 else None


def _dedup_id(event: dict[str, Any], settings: SnapchatSettings) -> str | None:
    if not settings.enableDeduplication:
        return None
    return segment.text(segment.dig(event, settings.deduplicationKey or "messageId"))


def _item_ids(props: dict[str, Any], kind: _Kind) -> list[str] | str | None:
    if kind.products:
        products = props.get("products")
        if not isinstance(products, list):
            return None
        return _texts([p.get("product_id") for p in products if isinstance(p, dict)])
    value = props.get(kind.items)
    return _texts(value) if isinstance(value, list) else segment.text(value)


def _price_sum(props: dict[str, Any]) -> str | None:
    """The products' total (price times quantity, 1 when not given) as text; None when no
    product has a price."""
    products = props.get("products")
    total, priced = 0.0, False
    for product in products if isinstance(products, list) else []:
        if not isinstance(product, dict):
            continue
        price = segment.number(product.get("price"))
        quantity = segment.number(product.get("quantity", 1))
        if price is None or quantity is None:
            continue
        total += price * int(quantity)
        priced = True
    if not priced or not math.isfinite(total):
        return None
    return str(int(total)) if total.is_integer() else repr(round(total, 6))


def _price(props: dict[str, Any], kind: _Kind) -> Any:
    found = _amount(props, ("price", "value", "revenue"))
    return _price_sum(props) if found is None and kind.products else found


def _count(props: dict[str, Any]) -> Any:
    return _amount(props, ("number_items", "quantity"))


def _compact(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None and v != {}}


def _snap_events(event: dict[str, Any], settings: SnapchatSettings) -> list[tuple[str, _Kind]]:
    if event.get("type") == "page":
        return [EVENTS["page_view"]]
    name = segment.text(event.get("event"))
    if name is None or not name.strip():
        raise Unsendable("a track event needs a name (`event`)")
    key = _key(name)
    mapped: dict[str, tuple[str, _Kind]] = {}
    for row in settings.rudderEventsToSnapEvents:
        if row.to.strip() and _key(row.from_) == key and (found := snap_event(row.to)):
            mapped.setdefault(found[0], found)
    if mapped:
        return list(mapped.values())
    found = snap_event(name)
    if found is None:
        raise Unsendable(
            f"{name[:100]!r} is not one of Snapchat's events: send it under a Snap or Segment "
            "e-commerce name, or map it in rudderEventsToSnapEvents"
        )
    return [found]


# ---------------------------------------------------------------------------------------------
# Conversions API v2


_V2_PROPERTIES = (
    "description", "event_tag", "click_id", "level", "uuid_c1", "customer_status", "data",
    "att_status", "sign_up_method", "advertiser_cookie_1", "delivery_method",
)  # fmt: skip
_V2_PERSON = {
    "em": "hashed_email",
    "ph": "hashed_phone_number",
    "fn": "hashed_first_name_sha",
    "ln": "hashed_last_name_sha",
    "ct": "hashed_city_sha",
    "st": "hashed_state_sha",
    "zp": "hashed_zip",
}


def _v2(
    event: dict[str, Any], settings: SnapchatSettings, snap: str, kind: _Kind, now: datetime
) -> Request:
    conversion = conversion_type(event)
    found, device = person(event), _device(event)
    _check_match_keys(found, device)
    body: dict[str, Any] = {
        "event_type": snap,
        "event_conversion_type": conversion,
        "timestamp": _event_time(event, now, LEGACY),
        **_v2_person(event, found, device),
        **_v2_properties(event, settings, kind),
        "data_use": _limited_use(event),
    }
    if conversion == "MOBILE_APP":
        body |= {"snap_app_id": settings.snapAppId, "app_id": settings.appId}
    else:
        body["pixel_id"] = settings.pixelId
        if conversion == "WEB":
            body["page_url"] = _page_url(event)
    headers = {"Authorization": f"Bearer {settings.apiKey}", **_JSON}
    url = f"{base_url(settings.endpoint, HOST)}{_V2_PATH}"
    return Request("POST", url, headers, body=_compact(body))


def _v2_person(event: dict[str, Any], found: dict[str, str], device: _Device) -> dict[str, Any]:
    """Who the conversion is, as v2 names it: hashed details and ids, the user agent."""
    traits = segment.traits(event)
    return {
        **{name: found[f] for f, name in _V2_PERSON.items() if f in found},
        "hashed_middle_name_sha": _middle_name(event),
        "hashed_mobile_ad_id": _hashed(device.madid, device.madid),
        "hashed_idfv": _hashed(device.idfv, device.idfv),
        "hashed_ip_address": _hashed(device.ip, device.ip.lower() if device.ip else None),
        "user_agent": device.agent.lower() if device.agent else None,
        "device_model": segment.text(segment.dig(segment.context(event), "device.model")),
        "country": segment.text(traits.get("country")),
        "region": segment.text(traits.get("region")),
    }


def _v2_properties(
    event: dict[str, Any], settings: SnapchatSettings, kind: _Kind
) -> dict[str, Any]:
    """What the conversion was about, as v2 names it."""
    props = segment.properties(event)
    ids = _item_ids(props, kind)
    return {
        "item_ids": [ids] if isinstance(ids, str) else ids,  # v2 takes a list of ids
        "item_category": _text(props, kind.category),
        "number_items": _count(props),
        "price": _price(props, kind),
        "currency": _text(props, ("currency",)),
        "search_string": _text(props, kind.search),
        "transaction_id": _text(props, kind.transaction),
        "sign_up_method": _text(props, ("sign_up_method", "signUpMethod")),
        "client_dedup_id": _dedup_id(event, settings) or _text(props, ("client_dedup_id",)),
        "brands": _texts(props.get("brands")),
        **{key: _scalar(props.get(key)) for key in _V2_PROPERTIES},
    }


def _page_url(event: dict[str, Any]) -> str | None:
    return segment.text(segment.dig(segment.context(event), "page.url")) or segment.text(
        segment.properties(event).get("url")
    )


# ---------------------------------------------------------------------------------------------
# Conversions API v3


def _v3(
    event: dict[str, Any], settings: SnapchatSettings, snap: str, kind: _Kind, now: datetime
) -> Request:
    conversion = conversion_type(event)
    props = segment.properties(event)
    found, device = person(event), _device(event)
    _check_match_keys(found, device)
    user = found | _compact({
        "client_ip_address": device.ip,
        "client_user_agent": device.agent,
        "idfv": device.idfv,
        "madid": device.madid,
        "sc_click_id": segment.text(props.get("click_id")),
        "sc_cookie1": segment.text(props.get("uuid_c1")),
    })  # fmt: skip
    item: dict[str, Any] = {
        "event_name": snap,
        "action_source": conversion,
        "event_time": _event_time(event, now, NEW),
        "event_id": _dedup_id(event, settings)
        or _text(props, ("client_dedup_id", *kind.transaction)),
        "user_data": user,
        "custom_data": _custom_data(props, kind),
        "data_processing_options": _limited_use(event),
    }
    app: dict[str, Any] = {}
    if (tracking := props.get("att_status")) in (0, 1, True, False):
        app["advertiser_tracking_enabled"] = int(tracking)
    if conversion == "MOBILE_APP":
        app |= {"app_id": settings.appId, "extinfo": extinfo(event, now)}
        path_id = settings.snapAppId
    else:
        path_id = settings.pixelId
        if conversion == "WEB":
            item["event_source_url"] = _page_url(event)
    item["app_data"] = app
    url = f"{base_url(settings.endpoint, HOST)}/v3/{path_id}/events"
    params = {"access_token": settings.apiKey}
    return Request("POST", url, dict(_JSON), params, {"data": [_compact(item)]})


def _custom_data(props: dict[str, Any], kind: _Kind) -> dict[str, Any]:
    brands = props.get("brands") if isinstance(props.get("brands"), list) else props.get("brand")
    return _compact({
        "content_ids": _item_ids(props, kind),
        "content_category": _text(props, kind.category),
        "num_items": _count(props),
        "value": _price(props, kind),
        "currency": _text(props, ("currency",)),
        "search_string": _text(props, kind.search),
        "brand": _texts(brands),
        "contents": _contents(props) or None,
    })  # fmt: skip


def _contents(props: dict[str, Any]) -> list[dict[str, Any]]:
    """The products, or the event's one product (its properties) when it lists none."""
    products = props.get("products")
    if isinstance(products, list) and products:
        sources = [p for p in products if isinstance(p, dict)]
    else:
        sources = [props]
    contents = []
    for product in sources:
        content = _compact({
            "id": _text(product, ("product_id", "sku", "id")),
            "item_price": _amount(product, ("price",)),
            "quantity": _amount(product, ("quantity",)),
            "delivery_category": segment.text(product.get("delivery_category")),
            "brand": segment.text(product.get("brand")),
        })  # fmt: skip
        if content:
            contents.append(content)
    return contents


def extinfo(event: dict[str, Any], now: datetime) -> list[str]:
    """The 16 device facts of v3 `app_data.extinfo`, all text, "" where unknown, in Snap's
    order (Meta's): the app's short version before its build number."""
    ctx, props = segment.context(event), segment.properties(event)
    app, os_, device, screen, network = (
        segment.mapping(ctx.get(k)) for k in ("app", "os", "device", "screen", "network")
    )
    zone = segment.text(ctx.get("timezone")) or ""
    return [
        "i2" if str(device.get("type") or "").lower() in _APPLE else "a2",
        *(segment.text(v) or "" for v in (
            app.get("namespace"), app.get("version"), app.get("build"), os_.get("version"),
            device.get("model"), ctx.get("locale"),
        )),
        _zone_abbreviation(zone, now),
        *(segment.text(v) or "" for v in (
            network.get("carrier"), screen.get("width"), screen.get("height"),
            screen.get("density"), props.get("cpu_cores"), props.get("storage"),
            props.get("free_storage"),
        )),
        zone,
    ]  # fmt: skip


def _zone_abbreviation(zone: str, now: datetime) -> str:
    """`EST` for America/New_York in winter; "" for a name that is no time zone."""
    if not _ZONE.fullmatch(zone):  # only names: no path can reach the zone database lookup
        return ""
    try:
        return now.astimezone(ZoneInfo(zone)).tzname() or ""
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return ""


# ---------------------------------------------------------------------------------------------
# The plug-in


def map_event(event: dict[str, Any], settings: SnapchatSettings, now: datetime) -> list[Request]:
    kind = event.get("type")
    if kind not in ("track", "page"):
        raise Unsendable(f"Snapchat does not take {str(kind)[:20]!r} calls")
    _check_ids(settings, conversion_type(event))
    build: Callable[..., Request] = _v3 if settings.v3 else _v2
    return [
        build(event, settings, snap, shape, now) for snap, shape in _snap_events(event, settings)
    ]


def batch_key(request: Request) -> str | None:
    """Conversions combine when they go to the same endpoint with the same credentials."""
    auth = request.headers.get("Authorization", "")
    params = "&".join(f"{k}={v}" for k, v in sorted(request.params.items()))
    return f"{request.method} {request.url}?{params} {auth}"


def combine(requests: Sequence[Request]) -> Request:
    first = requests[0]
    if first.url.endswith(_V2_PATH):
        body: Any = [request.body for request in requests]
    else:
        body = {"data": [item for request in requests for item in request.body["data"]]}
    return Request(first.method, first.url, first.headers, first.params, body)


# Statuses at which Snap refuses a batch for one bad conversion (400) or its size (413), naming
# none: such an answer to a batch is judged as a whole, so that the router sends each
# conversion again alone.
SPLIT_ON = frozenset({400, 413})


def classify(status: int, body: bytes, count: int) -> Verdict | Sequence[Judgement]:
    verdict = classify_status(status, body, count)
    if count > 1 and status in SPLIT_ON:
        return verdict
    reason = None if verdict is Verdict.DELIVERED else _reason(body)
    return verdict if reason is None else [Judgement(verdict, reason)] * count


def _reason(body: bytes) -> str | None:
    """Snap's words: `reason` (v2 and v3), else a `message` or an error's description."""
    try:
        answer = codec.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError):
        return None
    if not isinstance(answer, dict):
        return None
    error = answer.get("error")
    for value in (answer.get("reason"), answer.get("message"), answer.get("error_description"),
                  error.get("message") if isinstance(error, dict) else error):  # fmt: skip
        if isinstance(value, str) and value.strip():
            return value.strip()[:_REASON]
    return None


SNAPCHAT_CONVERSION = DestinationType(
    name="snapchat_conversion",
    title="Snapchat Conversions",
    category="Advertising",
    description="Snapchat Conversions API: web and app events.",
    settings=SnapchatSettings,
    map=map_event,
    supported_types=frozenset({"track", "page"}),
    secret_keys=("apiKey",),
    help=HELP,
    batch_size=MAX_BATCH,
    batch_key=batch_key,
    combine=combine,
    split_on=SPLIT_ON,
    classify=classify,
)
