"""Google Analytics 4: one Measurement Protocol request per event (RudderStack's GA4 keys).

Each event becomes one POST to `/mp/collect` carrying a single GA4 event: the protocol takes up
to 25 events per request but all of them for one client, and Sluice batches events of
different users, so nothing is combined. The `api_secret` and the stream's id travel in the
query string: `measurement_id` for a web stream (`typesOfClient: gtag`, the client id from
`context.externalId` ga4ClientId, else `anonymousId`), `firebase_app_id` for an app stream
(`firebase`, the app instance id from `context.externalId` ga4AppInstanceId only).

Mapping decisions:
* track events named like a Segment e-commerce event (any case, spaces or underscores) become
  GA4's recommended event (Order Completed → purchase …), as do events already named that way;
  `products[]` become `items[]`, single-product events build their one item from the root
  properties. Other track events keep their name (spaces → `_`) and must be a valid custom
  name: GA4 drops reserved or malformed names silently, so they are refused here instead.
  page → page_view, group → join_group; identify, screen and alias have no GA4 counterpart.
* Properties (group: traits) become event parameters, nested objects flattened with `_`;
  arrays, empty values, names GA4 refuses and names past the 25-parameter limit are left out,
  the mapped parameters always kept first.
* User properties come from the user's traits (`context.traits`) and from
  `properties.user_properties`. Traits are generic Segment data, not written for GA4, so those
  GA4 cannot take are left out; `user_properties` are meant for GA4, so an invalid one refuses
  the event, saying which. `piiPropertiesToIgnore` names are never sent.
* GA4 accepts anything with 2xx and drops what is invalid, so everything the contract lets us
  check is checked before sending: the 72 h backdating and 15 min future limits (against the
  processing time), consent values, items needing an id or a name, purchase and refund needing
  an order id, the 130 kB body limit.
* `debugMode` sends to the validation endpoint instead (nothing is recorded by GA4 there); its
  validation messages then fail the event visibly. `debug_request` and `validation_messages`
  let a preview ask the validation endpoint about any request.
* No regional host setting exists in RudderStack's GA4 config: for EU processing set
  `endpoint` to https://region1.google-analytics.com (paths are kept). RudderStack's `HOST`
  header is not sent: the Host comes from the URL, which `endpoint` may change.
"""

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from msgspec import Raw

from engine import codec
from engine.destinations import segment
from engine.destinations.base import (
    DestinationType,
    Judgement,
    Request,
    Unsendable,
    Validation,
    Verdict,
    base_url,
    check_endpoint,
    classify_status,
)

DEFAULT_BASE = "https://www.google-analytics.com"
EU_BASE = "https://region1.google-analytics.com"
_COLLECT = "/mp/collect"
_DEBUG_COLLECT = "/debug/mp/collect"

_MAX_PAST = timedelta(hours=72)
_MAX_FUTURE = timedelta(minutes=15)
_MAX_BODY = 130_000
_MAX_PARAMS = 25
_MAX_USER_PROPERTIES = 25
_MAX_ITEMS = 200
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_EVENT_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_PARAM_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,39}")
_USER_PROPERTY_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,23}")
_SPACES = re.compile(r"\s+")

_RESERVED_EVENTS = frozenset({
    "ad_activeview", "ad_click", "ad_exposure", "ad_impression", "ad_query", "adunit_exposure",
    "app_clear_data", "app_install", "app_update", "app_remove", "error", "first_open",
    "first_visit", "in_app_purchase", "os_update", "screen_view", "session_start",
    "user_engagement",
})  # fmt: skip
_RESERVED_EVENT_PREFIXES = ("_", "firebase_", "ga_", "google_", "gtag.", "notification_",
                            "app_store_")  # fmt: skip
_RESERVED_PARAM_PREFIXES = ("google_", "ga_", "firebase_")
_RESERVED_USER_PROPERTIES = frozenset({
    "first_open_time", "first_visit_time", "last_deep_link_referrer", "user_id",
    "first_open_after_install",
})  # fmt: skip
_CONSENTS = ("ad_user_data", "ad_personalization")
_SESSION_KEYS = frozenset({"session_id", "sessionId", "session_number", "sessionNumber",
                           "engagement_time_msec", "engagementTimeMsec"})  # fmt: skip
_PAGE_FIELDS = (("page_location", "url", 1000), ("page_title", "title", 300),
                ("page_referrer", "referrer", 420))  # fmt: skip


class PiiProperty(msgspec.Struct):
    piiProperty: str = ""


class GA4Settings(msgspec.Struct):
    apiSecret: str
    typesOfClient: str = "gtag"
    measurementId: str = ""
    firebaseAppId: str = ""
    sendUserId: bool = True
    debugMode: bool = False
    piiPropertiesToIgnore: list[PiiProperty] = []
    endpoint: str | None = None

    def __post_init__(self) -> None:
        # Messages never quote apiSecret: they are shown wherever settings errors are.
        if not self.apiSecret.strip():
            raise ValueError(
                "apiSecret is required: create a Measurement Protocol API secret in Google "
                "Analytics (Admin > Data streams > your stream)"
            )
        if self.apiSecret != self.apiSecret.strip():
            raise ValueError("apiSecret has spaces around it: paste the secret alone")
        if self.typesOfClient not in ("gtag", "firebase"):
            raise ValueError(
                f"typesOfClient must be 'gtag' (a web stream) or 'firebase' (an app stream), "
                f"not {self.typesOfClient!r}"
            )
        if self.typesOfClient == "gtag" and not self.measurementId.strip():
            raise ValueError("measurementId (G-XXXXXXXXXX) is required for a gtag (web) stream")
        if self.typesOfClient == "firebase" and not self.firebaseAppId.strip():
            raise ValueError("firebaseAppId is required for a firebase (app) stream")
        check_endpoint(self.endpoint)


# --- Requests -------------------------------------------------------------------------------


def map_event(event: dict[str, Any], settings: GA4Settings, now: datetime) -> list[Request]:
    kind = event.get("type")
    build = _BUILDERS.get(kind) if isinstance(kind, str) else None
    if build is None:
        raise Unsendable(f"GA4 takes track, page and group calls, not {_shown(kind)}")
    body = _identity(event, settings)
    body.update(_context(event, settings, now))
    body["events"] = [build(event)]
    size = len(codec.encode(body))
    if size > _MAX_BODY:
        raise Unsendable(f"the GA4 request would be {size} bytes; GA4 takes at most 130 kB")
    path = _DEBUG_COLLECT if settings.debugMode else _COLLECT
    return [
        Request(
            "POST",
            base_url(settings.endpoint, DEFAULT_BASE) + path,
            headers={"Content-Type": "application/json"},
            params=_auth(settings),
            body=body,
        )
    ]


def _auth(settings: GA4Settings) -> dict[str, str]:
    if settings.typesOfClient == "firebase":
        return {"api_secret": settings.apiSecret, "firebase_app_id": settings.firebaseAppId}
    return {"api_secret": settings.apiSecret, "measurement_id": settings.measurementId}


def _identity(event: dict[str, Any], settings: GA4Settings) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if settings.typesOfClient == "firebase":
        app = segment.external_id(event, "ga4AppInstanceId")
        if app is None:
            raise Unsendable(
                "an app stream (firebase) needs the app instance id in context.externalId "
                "as {type: ga4AppInstanceId, id}"
            )
        body["app_instance_id"] = app
    else:
        client = segment.external_id(event, "ga4ClientId") or segment.anonymous_id(event)
        if client is None:
            raise Unsendable(
                "a web stream (gtag) needs a client id: context.externalId "
                "{type: ga4ClientId, id} or anonymousId"
            )
        body["client_id"] = client
    traits = _user_traits(event)
    user = segment.user_id(event) or segment.text(traits.get("userId"))
    user = user or segment.text(traits.get("id"))
    if settings.sendUserId and user is not None:
        body["user_id"] = user
    return body


def _context(event: dict[str, Any], settings: GA4Settings, now: datetime) -> dict[str, Any]:
    body: dict[str, Any] = {}
    when = segment.event_time(event)
    if when is not None:
        if now - when > _MAX_PAST:
            raise Unsendable(
                f"the event happened at {when.isoformat()}, more than 72 hours before "
                f"{now.isoformat()}: GA4 takes events backdated by at most 72 hours"
            )
        if when - now > _MAX_FUTURE:
            raise Unsendable(
                f"the event is dated {when.isoformat()}, more than 15 minutes after "
                f"{now.isoformat()}: GA4 refuses events from the future"
            )
        body["timestamp_micros"] = (when - _EPOCH) // timedelta(microseconds=1)
    if properties := _user_properties(event, settings):
        body["user_properties"] = properties
    if consent := _consent(event):
        body["consent"] = consent
    enabled = segment.mapping(segment.context(event).get("device")).get("adTrackingEnabled")
    if enabled is False or enabled == "false":
        body["non_personalized_ads"] = True
    return body


def _consent(event: dict[str, Any]) -> dict[str, str]:
    options = segment.integration(event, "GA4", "Google Analytics 4", "GoogleAnalytics4")
    given = segment.mapping(options.get("consents"))
    consent = {}
    for key in _CONSENTS:
        value = given.get(key)
        if value is None:
            continue
        if not isinstance(value, str) or value.strip().upper() not in ("GRANTED", "DENIED"):
            raise Unsendable(
                f"integrations.GA4.consents.{key} must be GRANTED or DENIED, not {_shown(value)}"
            )
        consent[key] = value.strip().upper()
    return consent


# --- User properties ------------------------------------------------------------------------


def _user_traits(event: dict[str, Any]) -> dict[str, Any]:
    """The user's traits: a group call's own `traits` describe the group, not the user."""
    if event.get("type") == "group":
        return segment.mapping(segment.context(event).get("traits"))
    return segment.traits(event)


def _user_properties(event: dict[str, Any], settings: GA4Settings) -> dict[str, Any]:
    ignored = {p.piiProperty.strip() for p in settings.piiPropertiesToIgnore}
    chosen: dict[str, Any] = {}
    explicit = segment.mapping(segment.properties(event).get("user_properties"))
    for name, given in explicit.items():
        # Also taken already in GA4's shape, {"value": v}.
        value = given["value"] if isinstance(given, dict) and given.keys() == {"value"} else given
        if name in ignored or value is None or value == "":
            continue
        if problem := _user_property_problem(name, value):
            raise Unsendable(f"properties.user_properties.{name[:60]}: {problem}")
        chosen[name] = {"value": value}
    if len(chosen) > _MAX_USER_PROPERTIES:
        raise Unsendable(f"{len(chosen)} user_properties: GA4 takes at most 25")
    for name, value in _user_traits(event).items():
        if len(chosen) >= _MAX_USER_PROPERTIES:
            break
        if name in chosen or name in ignored or value is None or value == "":
            continue
        if _user_property_problem(name, value) is None:
            chosen[name] = {"value": value}
    return chosen


def _user_property_problem(name: str, value: Any) -> str | None:
    if name in _RESERVED_USER_PROPERTIES:
        return "GA4 reserves this user property name"
    if name.lower().startswith(_RESERVED_PARAM_PREFIXES):
        return "GA4 reserves user property names starting with google_, ga_ or firebase_"
    if not _USER_PROPERTY_NAME.fullmatch(name):
        return "GA4 user property names are a letter then up to 23 letters, digits or _"
    if isinstance(value, str):
        return "GA4 takes text values of at most 36 characters" if len(value) > 36 else None
    if isinstance(value, bool) or _number(value) is not None:
        return None
    return "GA4 takes text, numbers or booleans as user property values"


# --- Events ---------------------------------------------------------------------------------


def _track(event: dict[str, Any]) -> dict[str, Any]:
    name = event.get("event")
    if not isinstance(name, str) or not name.strip():
        raise Unsendable("a track call needs an event name")
    props = segment.properties(event)
    mapped = {**_page_params(event, props, from_properties=False),
              **_session(props, segment.context(event))}  # fmt: skip
    skip = set(_SESSION_KEYS) | {"user_properties"}
    commerce = _COMMERCE.get(_SPACES.sub("_", name.strip()).lower())
    if commerce is None:
        ga4_name = _custom_name(name)
    else:
        ga4_name = commerce.name
        params, used = commerce.params(name.strip(), props)
        mapped.update(params)
        skip |= used
    return {"name": ga4_name, "params": _params(mapped, _custom(props, skip))}


def _page(event: dict[str, Any]) -> dict[str, Any]:
    props = segment.properties(event)
    mapped = {**_page_params(event, props, from_properties=True),
              **_session(props, segment.context(event))}  # fmt: skip
    skip = set(_SESSION_KEYS) | {"user_properties", "url", "title", "referrer"}
    return {"name": "page_view", "params": _params(mapped, _custom(props, skip))}


def _group(event: dict[str, Any]) -> dict[str, Any]:
    traits = segment.mapping(event.get("traits"))
    mapped = _session(traits, segment.context(event))
    if (group := segment.text(event.get("groupId"))) is not None:
        mapped["group_id"] = group
    return {"name": "join_group", "params": _params(mapped, _custom(traits, set(_SESSION_KEYS)))}


_BUILDERS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "track": _track, "page": _page, "group": _group,
}  # fmt: skip


def _custom_name(name: str) -> str:
    ga4 = _SPACES.sub("_", name.strip())
    if ga4 in _RESERVED_EVENTS:
        raise Unsendable(f"{_shown(ga4)} is an event name GA4 reserves: rename the event")
    if ga4.lower().startswith(_RESERVED_EVENT_PREFIXES):
        raise Unsendable(
            f"{_shown(ga4)}: GA4 reserves event names starting with _, firebase_, ga_, google_, "
            "gtag., notification_ or app_store_"
        )
    if not _EVENT_NAME.fullmatch(ga4):
        raise Unsendable(
            f"{_shown(ga4)}: GA4 event names start with a letter and hold only letters, digits "
            "and underscores"
        )
    if len(ga4) > 40:
        raise Unsendable(f"{_shown(ga4)}: GA4 event names are at most 40 characters")
    return ga4


def _page_params(
    event: dict[str, Any], props: dict[str, Any], *, from_properties: bool
) -> dict[str, Any]:
    page = segment.mapping(segment.context(event).get("page"))
    params = {}
    for param, key, limit in _PAGE_FIELDS:
        value = segment.text(page.get(key))
        if value is None and from_properties:
            value = segment.text(props.get(key))
        if value is not None:
            params[param] = value[:limit]
    return params


def _session(source: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
    """session_id, session_number and engagement_time_msec (needed for GA4's session reports;
    RudderStack's default engagement of 1 ms makes the event count as engaged)."""
    params: dict[str, Any] = {}
    session = _first(source, "session_id", "sessionId")
    session = session if session is not None else context.get("sessionId")
    if isinstance(session, str | int | Raw) and not isinstance(session, bool) and session != "":
        params["session_id"] = session
    number = _number(_first(source, "session_number", "sessionNumber"))
    number = number if number is not None else _number(context.get("sessionNumber"))
    if number is not None:
        params["session_number"] = number
    engagement = _number(_first(source, "engagement_time_msec", "engagementTimeMsec"))
    params["engagement_time_msec"] = engagement if engagement is not None else 1
    return params


def _params(mapped: dict[str, Any], custom: dict[str, Any]) -> dict[str, Any]:
    """Mapped parameters, then custom ones while GA4's 25-parameter limit allows."""
    params = dict(mapped)
    for name, value in custom.items():
        if len(params) >= _MAX_PARAMS:
            break
        params.setdefault(name, value)
    return params


def _custom(values: dict[str, Any], skip: set[str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for name, value in values.items():
        if name not in skip:
            _flatten(params, name, value)
    return params


def _flatten(into: dict[str, Any], name: str, value: Any) -> None:
    if len(name) > 40:  # also bounds the recursion: every level makes the name longer
        return
    if isinstance(value, dict):
        for key, inner in value.items():
            _flatten(into, f"{name}_{key}", inner)
        return
    if value is None or value == "" or isinstance(value, list):
        return
    if _PARAM_NAME.fullmatch(name) and not name.lower().startswith(_RESERVED_PARAM_PREFIXES):
        into[name] = value


# --- E-commerce -----------------------------------------------------------------------------

_PRODUCT_KEYS = frozenset({"product_id", "sku", "name", "category", "brand", "variant", "price",
                           "quantity", "position", "coupon"})  # fmt: skip
_ORDER_KEYS = frozenset({"products", "items", "order_id", "transaction_id", "total", "value",
                         "revenue", "currency", "coupon", "affiliation", "shipping",
                         "tax"})  # fmt: skip
# GA4 item field ← its candidates, best first; the first two are GA4's and Segment's own
# names (always consumed), later ones are fallbacks (consumed only when used).
_ITEM_FIELDS = (
    ("item_id", ("item_id", "product_id", "sku", "id")),
    ("item_name", ("item_name", "name")),
    ("item_category", ("item_category", "category")),
    ("item_brand", ("item_brand", "brand")),
    ("item_variant", ("item_variant", "variant")),
    ("index", ("index", "position")),
)
_ITEM_NUMBERS = frozenset({"price", "quantity", "index"})


@dataclass(frozen=True)
class _Commerce:
    name: str
    single: bool = False  # one product: its item may come from the root properties
    renames: tuple[tuple[str, str], ...] = ()  # Segment property → GA4 parameter
    constants: tuple[tuple[str, str], ...] = ()
    needs_order_id: bool = False

    def params(self, title: str, props: dict[str, Any]) -> tuple[dict[str, Any], set[str]]:
        """The event's mapped parameters, and the property keys they used up."""
        params: dict[str, Any] = dict(self.constants)
        used = set(_ORDER_KEYS)
        for source, target in self.renames:
            used.add(source)
            value = props.get(target, props.get(source))
            if value not in (None, "") and not isinstance(value, dict | list):
                params[target] = value
        products = _products(props)
        if self.single and products is None:
            used |= _PRODUCT_KEYS
        if items := _items(title, props, products, single=self.single):
            params["items"] = items
        order = segment.text(props.get("order_id")) or segment.text(props.get("transaction_id"))
        if order is not None:
            params["transaction_id"] = order
        elif self.needs_order_id:
            raise Unsendable(f"{title[:60]} needs properties.order_id (GA4's transaction_id)")
        value = next((v for k in ("total", "value", "revenue")
                      if (v := _number(props.get(k))) is not None), None)  # fmt: skip
        currency = segment.text(props.get("currency"))
        if value is not None:
            params["value"] = value
            currency = currency or "USD"  # GA4 ignores a value without a currency
        if currency is not None:
            params["currency"] = currency
        for key in ("coupon", "affiliation"):
            if (text := segment.text(props.get(key))) is not None:
                params[key] = text
        for key in ("shipping", "tax"):
            if (amount := _number(props.get(key))) is not None:
                params[key] = amount
        return params, used


def _products(props: dict[str, Any]) -> list[Any] | None:
    """The `products` (or GA4's `items`) of an event, when it has any."""
    products = props.get("products", props.get("items"))
    return products if isinstance(products, list) and products else None


def _items(
    title: str, props: dict[str, Any], products: list[Any] | None, *, single: bool
) -> list[dict[str, Any]]:
    """Items from the products, else (a single-product event) from the root properties."""
    if products is not None:
        if len(products) > _MAX_ITEMS:
            raise Unsendable(f"{len(products)} products: GA4 takes at most 200 items per event")
        return [_item(product, f"properties.products[{n}]") for n, product in enumerate(products)]
    if not single:
        return []
    root = {k: v for k, v in props.items() if k in _PRODUCT_KEYS}
    if not any(segment.text(root.get(k)) for k in ("product_id", "sku", "name")):
        raise Unsendable(
            f"{title[:60]} needs a product: properties.products[] or product_id/name in properties"
        )
    return [_item(root, "properties")]


def _item(product: Any, where: str) -> dict[str, Any]:
    if not isinstance(product, dict):
        raise Unsendable(f"{where} is not an object")
    item: dict[str, Any] = {}
    used: set[str] = set()
    for field, candidates in _ITEM_FIELDS:
        used.update(candidates[:2])
        for key in candidates:
            if (value := product.get(key)) not in (None, "") and not isinstance(value, dict | list):
                item[field] = value
                used.add(key)
                break
    for key, value in product.items():
        if key not in used and key not in item:
            _flatten(item, key, value)
    for key in _ITEM_NUMBERS & item.keys():
        if (number := _number(item[key])) is None:
            del item[key]
        else:
            item[key] = number
    if "item_id" not in item and "item_name" not in item:
        raise Unsendable(f"{where} needs product_id or name (GA4 items need an id or a name)")
    return item


def _commerce_table() -> dict[str, _Commerce]:
    """Segment's e-commerce event names (normalised) and GA4's own names → the GA4 event."""
    promotion = (("creative", "creative_name"), ("name", "promotion_name"),
                 ("position", "creative_slot"))  # fmt: skip
    by_segment = {
        "products_searched": _Commerce("search", renames=(("query", "search_term"),)),
        "product_list_viewed": _Commerce(
            "view_item_list", renames=(("list_id", "item_list_id"), ("category", "item_list_name"))
        ),
        "promotion_viewed": _Commerce("view_promotion", renames=promotion),
        "promotion_clicked": _Commerce("select_promotion", renames=promotion),
        "product_clicked": _Commerce("select_item", single=True),
        "product_viewed": _Commerce("view_item", single=True),
        "product_added": _Commerce("add_to_cart", single=True),
        "product_removed": _Commerce("remove_from_cart", single=True),
        "cart_viewed": _Commerce("view_cart"),
        "checkout_started": _Commerce("begin_checkout"),
        "payment_info_entered": _Commerce(
            "add_payment_info", renames=(("payment_method", "payment_type"),)
        ),
        "checkout_step_completed": _Commerce(
            "add_shipping_info", renames=(("shipping_method", "shipping_tier"),)
        ),
        "order_completed": _Commerce("purchase", needs_order_id=True),
        "order_refunded": _Commerce("refund", needs_order_id=True),
        "product_added_to_wishlist": _Commerce("add_to_wishlist", single=True),
        "product_shared": _Commerce(
            "share", renames=(("share_via", "method"), ("product_id", "item_id")),
            constants=(("content_type", "product"),),
        ),
        "cart_shared": _Commerce(
            "share", renames=(("share_via", "method"), ("cart_id", "item_id")),
            constants=(("content_type", "cart"),),
        ),
    }  # fmt: skip
    by_ga4: dict[str, _Commerce] = {}
    for spec in by_segment.values():
        by_ga4.setdefault(spec.name, spec)
    by_ga4["share"] = _Commerce("share", renames=(("share_via", "method"),))
    return by_ga4 | by_segment


_COMMERCE = _commerce_table()


# --- Values ---------------------------------------------------------------------------------


def _first(values: dict[str, Any], *keys: str) -> Any:
    return next((values[k] for k in keys if values.get(k) is not None), None)


def _number(value: Any) -> int | float | Raw | None:
    """A numeric value for GA4: numbers as sent (Raw keeps its text), numeric text converted."""
    parsed = segment.number(value)
    if parsed is None:
        return None
    return value if isinstance(value, int | Raw) else parsed


def _shown(value: Any) -> str:
    """A value from the event, quoted and cut short, for an error message."""
    shown = value if isinstance(value, str | int | float | None) else type(value).__name__
    return repr(shown)[:80]


# --- Answers --------------------------------------------------------------------------------


def classify(status: int, body: bytes, count: int) -> Verdict | Sequence[Judgement]:
    """The collect endpoint answers 2xx whatever it thinks of the payload; only the validation
    endpoint (debugMode) says what is wrong, and then the event is not recorded: a failure."""
    verdict = classify_status(status, body, count)
    if verdict is not Verdict.DELIVERED or not body.strip():
        return verdict
    try:
        answer = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return verdict
    if not isinstance(answer, dict) or not answer.get("validationMessages"):
        return verdict
    reason = "; ".join(validation_messages(body))[:1000]
    return [Judgement(Verdict.ABORT, reason)] * count


def debug_request(request: Request) -> Request:
    """The same request addressed to GA4's validation endpoint (nothing is recorded there)."""
    if request.url.endswith(_DEBUG_COLLECT):
        return request
    if not request.url.endswith(_COLLECT):
        raise ValueError(f"{request.url!r} is not a GA4 Measurement Protocol collect URL")
    return msgspec.structs.replace(request, url=request.url[: -len(_COLLECT)] + _DEBUG_COLLECT)


def validation_messages(body: bytes) -> list[str]:
    """The validation endpoint's answer as readable messages; an empty list: the payload is
    valid."""
    try:
        answer = msgspec.json.decode(body)
    except msgspec.DecodeError:
        answer = None
    found = answer.get("validationMessages") if isinstance(answer, dict) else None
    if not isinstance(found, list):
        excerpt = bytes(body[:200]).decode("utf-8", "replace")
        return [f"could not read GA4's validation answer: {excerpt!r}"]
    return [_message(entry) for entry in found]


def _message(entry: Any) -> str:
    if not isinstance(entry, dict):
        return f"unreadable validation message: {codec.encode(entry).decode()[:200]}"
    description = segment.text(entry.get("description")) or "invalid payload"
    where = segment.text(entry.get("fieldPath"))
    code = segment.text(entry.get("validationCode"))
    details = ", ".join(part for part in (where and f"field {where}", code) if part)
    return f"{description} ({details})" if details else description


GA4 = DestinationType(
    name="ga4", title="Google Analytics 4", settings=GA4Settings, map=map_event,
    category="Analytics",
    description="Google Analytics 4 through the Measurement Protocol.",
    supported_types=frozenset({"track", "page", "group"}), secret_keys=("apiSecret",),
    classify=classify, validation=Validation(debug_request, validation_messages),
)  # fmt: skip
