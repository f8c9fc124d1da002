"""What Sluice's three Meta destinations share: the Graph API, and how people are described.

* **Graph API**: host, version, and what its answers mean (ids that go into its paths are
  checked by `base.check_id`). Errors come as `{"error": {message, type, code, error_subcode,
  is_transient, fbtrace_id}}`, usually with HTTP 400 whatever the cause, so the *code* decides
  (§6.5 of the contracts): rate limits (4, 17, 32, 613, 80000-80014) and Meta's transient
  codes (1, 2, 341, 368, 5000, 21009, or any error flagged `is_transient`) are retried; a bad
  or expired token (190), invalid parameters (100, e.g. a stale `event_time`), and permission
  errors (3, 10, 105, 200-299, 294) are permanent. Anything else — an unknown code, an HTML
  error page from an edge proxy, garbage — is judged by the HTTP status (429 and 5xx retried,
  other 4xx aborted). RudderStack retries every unknown answer; we do not, because a retried
  job holds back that user's later events for the whole retry budget (per-user order), while
  an aborted one is listed and can be replayed at once. Meta documents its transient failures
  (the codes above, the `is_transient` flag, 5xx), so an unknown 4xx is a request Meta will
  keep refusing.
* **Customer information** (CAPI `user_data`, App Events `ud[…]`): values are normalised the
  way Meta matches them — trimmed and lower-cased, phone numbers reduced to digits, gender to
  `f`/`m`, birthdays to `YYYYMMDD`, cities and states without spaces, US ZIP+4 cut to five —
  then SHA-256 hashed (hex). An event that says its values are hashed already
  (`integrations.<destination>.hashed: true`) has them sent as they are.
* **The Conversions API** (Facebook Pixel and Facebook Conversions): one server event per
  request, `data` as JSON text in a form body, the token in the query. Meta refuses a whole
  request for one bad event, so events are never batched: one event's mistake cannot fail
  others. `event_time` must be at most 7 days old (62 for `physical_store`) and at most a
  minute ahead; events outside are refused before sending.
* **E-commerce custom data**: the Segment e-commerce spec becomes Meta's `content_ids`,
  `contents`, `content_type`, `value` and `currency` (USD unless the event says otherwise).
"""

import contextlib
import hashlib
import ipaddress
import re
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

import msgspec

from engine.destinations import segment
from engine.destinations.base import (
    Judgement,
    Request,
    Unsendable,
    Verdict,
    classify_status,
)

GRAPH = "https://graph.facebook.com"
VERSION = "v25.0"

# --- what Meta's answers mean ---------------------------------------------------------------

_THROTTLED = frozenset({4, 17, 32, 613, *range(80000, 80015)})
_TRANSIENT = frozenset({1, 2, 341, 368, 5000, 21009})
_PERMANENT = frozenset({3, 10, 100, 102, 105, 190, 294, *range(200, 300)})
_REASON = 400  # characters of Meta's explanation kept with the attempt


def classify(status: int, body: bytes, count: int = 1) -> Verdict | Sequence[Judgement]:
    error = _graph_error(body)
    if error is None:
        return classify_status(status, body, count)
    code = segment.number(error.get("code"))
    if code in _THROTTLED or code in _TRANSIENT or error.get("is_transient") is True:
        verdict = Verdict.RETRY
    elif code in _PERMANENT:
        verdict = Verdict.ABORT
    else:
        verdict = classify_status(status, body, count)
        if verdict is Verdict.DELIVERED:  # an error object with a 2xx status is no success
            verdict = Verdict.RETRY
    return [Judgement(verdict, _reason(error))] * count


def _graph_error(body: bytes) -> dict[str, Any] | None:
    try:
        answer = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return None
    error = answer.get("error") if isinstance(answer, dict) else None
    return error if isinstance(error, dict) else None


def _reason(error: dict[str, Any]) -> str:
    """Meta's words: `OAuthException: Invalid OAuth access token (code 190)`."""
    kind = segment.text(error.get("type"))
    message = segment.text(error.get("message")) or "no message"
    detail = segment.text(error.get("error_user_msg"))
    codes = ", ".join(
        f"{label} {value}"
        for label, key in (("code", "code"), ("subcode", "error_subcode"))
        if (value := segment.text(error.get(key))) is not None
    )
    text = f"{kind}: {message}" if kind else message
    if detail and detail != message:
        text += f" — {detail}"
    return (f"{text} ({codes})" if codes else text)[:_REASON]


# --- customer information -------------------------------------------------------------------

_TRAIT_KEYS: dict[str, tuple[str, ...]] = {
    "em": ("email",),
    "ph": ("phone",),
    "fn": ("firstName", "firstname", "first_name"),
    "ln": ("lastName", "lastname", "last_name"),
    "ge": ("gender",),
    "db": ("birthday",),
    "ct": ("city",),
    "st": ("state",),
    "zp": ("zip", "postalCode", "postal_code"),
    "country": ("country",),
}
_GENDERS = {"f": "f", "female": "f", "m": "m", "male": "m"}
_DATE = re.compile(r"^(\d{4})-?(\d{2})-?(\d{2})(?:[t ]|\Z)")  # text is lower-cased first
_SPACES = re.compile(r"\s+")


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def customer(event: dict[str, Any], *, prehashed: bool = False) -> dict[str, str]:
    """The person's details from traits (and `traits.address`), normalised but not hashed;
    values said to be hashed already are only trimmed (normalising would spoil them)."""
    traits = segment.traits(event)
    address = segment.mapping(traits.get("address"))
    found = {}
    for field, keys in _TRAIT_KEYS.items():
        for key in keys:
            raw = traits.get(key)
            if raw is None and field in ("ct", "st", "zp", "country"):
                raw = address.get(key)
            if prehashed:
                value = (segment.text(raw) or "").strip() or None
            else:
                value = normalised(field, raw)
            if value is not None:
                found[field] = value
                break
    return found


def normalised(field: str, value: Any) -> str | None:
    """A value as Meta hashes it, or None when it cannot be one (wrong type, no digits …)."""
    text = segment.text(value)
    if text is None or isinstance(value, bool):
        return None
    text = text.strip().lower()
    if field == "ph":
        text = "".join(c for c in text if c.isdigit()).lstrip("0")
    elif field == "ge":
        text = _GENDERS.get(text, "")
    elif field == "db":
        text = _birthday(text)
    elif field in ("ct", "st"):
        text = _SPACES.sub("", text)
    elif field == "zp":
        text = _SPACES.sub("", text)
        if re.fullmatch(r"\d{5}-\d{4}", text):
            text = text[:5]
    return text or None


def _birthday(text: str) -> str:
    match = _DATE.match(text)
    if match is None:
        return ""
    with contextlib.suppress(ValueError):
        datetime(int(match[1]), int(match[2]), int(match[3]))
        return "".join(match.groups())
    return ""


def hashed_by_sender(event: dict[str, Any], *names: str) -> bool:
    """`integrations.<destination>.hashed: true`: the event's values are SHA-256 already."""
    return segment.integration(event, *names).get("hashed") is True


def hashing(values: dict[str, str], prehashed: bool) -> dict[str, str]:
    return values if prehashed else {k: sha256(v) for k, v in values.items()}


def client_ip(event: dict[str, Any]) -> str | None:
    """The client's IP when it is one (it also goes into a header: nothing else may pass)."""
    text = segment.ip(event)
    if text is None:
        return None
    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError:
        return None


# --- app information (CAPI app_data, App Events extinfo) ------------------------------------


def extinfo(event: dict[str, Any]) -> list[str]:
    """Meta's 16 device facts, all text, "" where unknown; `i2` for iOS devices, else `a2`."""
    ctx = segment.context(event)
    app, os_, device, screen, network = (
        segment.mapping(ctx.get(k)) for k in ("app", "os", "device", "screen", "network")
    )
    platform = " ".join(t.lower() for t in (_s(os_.get("name")), _s(device.get("type"))))
    density = segment.number(screen.get("density"))
    return [
        "i2" if any(p in platform for p in ("ios", "iphone", "ipad")) else "a2",
        _s(app.get("namespace")),
        _s(app.get("version")),
        _s(app.get("build")),
        _s(os_.get("version")),
        _s(device.get("model")),
        _s(ctx.get("locale")),
        "",  # timezone abbreviation: not in Segment's context
        _s(network.get("carrier")),
        _whole(screen.get("width")),
        _whole(screen.get("height")),
        f"{density:.2f}" if density is not None else "",
        "",  # CPU cores, storage size, free storage: not in Segment's context
        "",
        "",
        _s(ctx.get("timezone")),
    ]


def tracking_enabled(event: dict[str, Any]) -> bool:
    """`context.device.adTrackingEnabled`; unknown counts as not enabled (Meta's safe side)."""
    return segment.mapping(segment.context(event).get("device")).get("adTrackingEnabled") is True


def advertising_id(event: dict[str, Any]) -> str | None:
    return segment.text(segment.mapping(segment.context(event).get("device")).get("advertisingId"))


def _s(value: Any) -> str:
    return segment.text(value) or ""


def _whole(value: Any) -> str:
    number = segment.number(value)
    return str(int(number)) if number is not None else ""


# --- the Conversions API --------------------------------------------------------------------

ACTION_SOURCES = frozenset(
    {"website", "app", "email", "phone_call", "chat", "physical_store", "system_generated",
     "other"}
)  # fmt: skip
_CHANNELS = {"web": "website", "mobile": "app"}
_WINDOW = timedelta(days=7)
_STORE_WINDOW = timedelta(days=62)
_AHEAD = timedelta(minutes=1)
# Personal data that must not travel in custom_data (it belongs, hashed, in user_data).
DEFAULT_PII = frozenset(
    {"email", "firstname", "lastname", "first_name", "last_name", "gender", "city", "country",
     "phone", "state", "zip", "postalcode", "birthday"}
)  # fmt: skip


def event_time(event: dict[str, Any], now: datetime, action_source: str) -> int:
    """Unix seconds, refused outside the window Meta accepts."""
    when = segment.occurred(event, now)
    oldest = _STORE_WINDOW if action_source == "physical_store" else _WINDOW
    if when < now - oldest or when > now + _AHEAD:
        raise Unsendable(
            f"the event happened at {when.isoformat()}; Meta takes events up to "
            f"{oldest.days} days old and at most one minute in the future"
        )
    return int(when.timestamp())


def action_source(event: dict[str, Any], configured: str | None) -> str:
    """The event's own `action_source`, else the configured one, else from the channel."""
    explicit = segment.properties(event).get("action_source")
    if explicit is None:
        explicit = segment.traits(event).get("action_source")
    if explicit is not None:
        text = segment.text(explicit)
        if text not in ACTION_SOURCES:
            raise Unsendable(
                f"action_source {str(explicit)[:50]!r} is not one of "
                f"{', '.join(sorted(ACTION_SOURCES))}"
            )
        return text
    if configured:
        return configured
    channel = event.get("channel")
    return _CHANNELS.get(channel, "other") if isinstance(channel, str) else "other"


def user_data(event: dict[str, Any], *, external_id: bool, prehashed: bool) -> dict[str, Any]:
    ctx, props, traits = segment.context(event), segment.properties(event), segment.traits(event)
    data: dict[str, Any] = hashing(customer(event, prehashed=prehashed), prehashed)
    if external_id:
        who = segment.user_id(event) or segment.anonymous_id(event)
        if who is not None:
            data["external_id"] = who if prehashed else sha256(who)
    ip = client_ip(event)
    if ip is not None:
        data["client_ip_address"] = ip
    agent = segment.text(ctx.get("userAgent"))
    if agent is not None:
        data["client_user_agent"] = agent
    for cookie in ("fbc", "fbp"):  # Meta's browser cookies: sent as they are
        value = next(
            (v for src in (props, ctx, traits) if (v := segment.text(src.get(cookie)))), None
        )
        if value is not None:
            data[cookie] = value
    madid = advertising_id(event)
    if madid is not None:
        data["madid"] = madid
    return data


def server_event(
    event: dict[str, Any],
    now: datetime,
    *,
    name: str,
    source: str,
    user: dict[str, Any],
    custom: dict[str, Any] | None,
    limited_data: bool,
) -> dict[str, Any]:
    """One CAPI server event, as Meta's `data[]` holds it."""
    ctx, props = segment.context(event), segment.properties(event)
    made: dict[str, Any] = {
        "user_data": user,
        "event_name": name,
        "event_time": event_time(event, now, source),
        "action_source": source,
    }
    # Dedup with the browser pixel: the id the page gave its pixel event, else the messageId.
    for candidate in (props.get("event_id"), segment.traits(event).get("event_id"),
                      event.get("messageId")):  # fmt: skip
        if (dedup := segment.text(candidate)) is not None:
            made["event_id"] = dedup
            break
    url = segment.text(segment.mapping(ctx.get("page")).get("url"))
    if url is None and event.get("type") in ("page", "screen"):
        url = segment.text(props.get("url"))
    if url is not None:
        made["event_source_url"] = url
    options = ctx.get("dataProcessingOptions")
    if limited_data and isinstance(options, list) and options:
        keys = ("data_processing_options", "data_processing_options_country",
                "data_processing_options_state")  # fmt: skip
        made.update(zip(keys, options[:3], strict=False))
    if source == "app":
        enabled = int(tracking_enabled(event))
        made["app_data"] = {
            "advertiser_tracking_enabled": enabled,
            "application_tracking_enabled": enabled,
            "extinfo": extinfo(event),
        }
    if custom:
        made["custom_data"] = custom
    return made


def events_request(
    endpoint: str, dataset: str, token: str, event: dict[str, Any], test_code: str | None
) -> Request:
    """The one request for one server event: Meta fails a whole request for one bad event."""
    body = {"data": segment.json_text([event])}
    if test_code:
        body["test_event_code"] = test_code
    return Request(
        "POST", f"{endpoint}/{VERSION}/{dataset}/events",
        params={"access_token": token}, body=body, body_format="form",
    )  # fmt: skip


def custom_properties(
    props: dict[str, Any],
    *,
    allowed: Iterable[str] = (),
    hashed: dict[str, bool] | None = None,
) -> dict[str, Any]:
    """Properties fit for custom_data: Meta's default PII left out unless allowed; keys the
    user listed as sensitive left out, or hashed where they asked for that."""
    keep = {k.lower() for k in allowed}
    listed = {k.lower(): v for k, v in (hashed or {}).items()}
    out = {}
    for key, value in props.items():
        low = key.lower()
        if low in listed:
            if listed[low] and (text := segment.text(value)) is not None:
                out[key] = sha256(text)
        elif low not in DEFAULT_PII or low in keep:
            out[key] = value
    return out


def flattened(value: Any, prefix: str = "") -> dict[str, Any]:
    """`{"a": {"b": 1}, "l": [{"c": 2}]}` → `{"a.b": 1, "l[0].c": 2}`."""
    if isinstance(value, dict):
        items: Iterable[tuple[str, Any]] = (
            (f"{prefix}.{k}" if prefix else str(k), v) for k, v in value.items()
        )
    elif isinstance(value, list):
        items = ((f"{prefix}[{i}]", v) for i, v in enumerate(value))
    else:
        return {prefix: value}
    out: dict[str, Any] = {}
    for key, item in items:
        out.update(flattened(item, key))
    return out


def money(value: Any) -> int | float | None:
    """An amount for `value`: a number, rounded to cents."""
    number = segment.number(value)
    if number is None or isinstance(number, int):
        return number
    return round(number, 2)


# --- e-commerce custom data -----------------------------------------------------------------


class Shape(Enum):
    """How an e-commerce event's properties describe what was bought, viewed or searched."""

    LIST = "product list"  # a list of products, or a category of them
    PRODUCT = "product"  # one product: its id, quantity and price at the top level
    CHECKOUT = "checkout"  # an order: `products[]` and `revenue`
    SEARCH = "search"  # a query


SEGMENT_COMMERCE: dict[str, tuple[str, Shape]] = {
    "product list viewed": ("ViewContent", Shape.LIST),
    "product viewed": ("ViewContent", Shape.PRODUCT),
    "product added": ("AddToCart", Shape.PRODUCT),
    "order completed": ("Purchase", Shape.CHECKOUT),
    "checkout started": ("InitiateCheckout", Shape.CHECKOUT),
    "products searched": ("Search", Shape.SEARCH),
}
# Meta's standard events with an e-commerce shape (for events the user maps onto them).
STANDARD_SHAPES: dict[str, Shape] = {
    "ViewContent": Shape.PRODUCT,
    "AddToCart": Shape.PRODUCT,
    "AddToWishlist": Shape.PRODUCT,
    "Purchase": Shape.CHECKOUT,
    "InitiateCheckout": Shape.CHECKOUT,
    "AddPaymentInfo": Shape.CHECKOUT,
    "Search": Shape.SEARCH,
}


def commerce(
    shape: Shape,
    props: dict[str, Any],
    *,
    value_key: str = "price",
    content_types: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Meta's content fields, value and currency for an e-commerce event."""
    products = [p for p in _list(props.get("products")) if isinstance(p, dict)]
    category = props.get("category") if isinstance(props.get("category"), str) else None
    data: dict[str, Any] = {}
    content_type: str | None = "product"
    if shape is Shape.LIST:
        if products:
            data.update(_contents(products, props, fallback_quantity=False))
        elif category:
            data.update(content_ids=[category], contents=[{"id": category, "quantity": 1}])
            content_type = "product_group"
        value = props.get("value")
    elif shape is Shape.CHECKOUT:
        data.update(_contents(products, props, fallback_quantity=True))
        if products:
            data["num_items"] = len(products)
        value = props.get("revenue")
    else:  # one product at the top level; a search may list products instead
        one = [props] if shape is Shape.PRODUCT or not products else products
        data.update(_contents(one, props, fallback_quantity=True))
        if shape is Shape.PRODUCT:
            data["content_name"] = segment.text(props.get("name")) or ""
            value = props.get(value_key)
        else:
            content_type, value = None, props.get("value")
            query = props.get("query")
            if query is not None:
                if isinstance(query, dict | list):
                    raise Unsendable("properties.query must be a string, number or boolean")
                data["search_string"] = segment.text(query) or ""
    if content_type is not None:
        mapped = (content_types or {}).get(category.strip().lower()) if category else None
        data["content_type"] = mapped or content_type
    if category:
        data["content_category"] = category
    data["value"] = money(value) or 0
    data["currency"] = segment.text(props.get("currency")) or "USD"
    return data


def _contents(
    products: list[dict[str, Any]], props: dict[str, Any], *, fallback_quantity: bool
) -> dict[str, Any]:
    ids, contents = [], []
    for product in products:
        pid = _product_id(product)
        if pid is None:
            continue
        quantity = segment.number(product.get("quantity"))
        if quantity is None and fallback_quantity:
            quantity = segment.number(props.get("quantity"))
        item: dict[str, Any] = {"id": pid, "quantity": quantity if quantity is not None else 1}
        price = segment.number(product.get("price"))
        if price is not None:
            item["item_price"] = price
        delivery = segment.text(product.get("delivery_category"))
        if delivery is not None:
            item["delivery_category"] = delivery
        ids.append(pid)
        contents.append(item)
    return {"content_ids": ids, "contents": contents} if ids else {}


def _product_id(product: dict[str, Any]) -> str | int | None:
    """The product's id as sent (Meta takes text or numbers), from product_id, sku or id."""
    for key in ("product_id", "sku", "id"):
        value = product.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if not isinstance(value, bool) and (text := segment.text(value)) is not None:
            return text
    return None


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
