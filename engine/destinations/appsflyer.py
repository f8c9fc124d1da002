"""AppsFlyer: in-app events to the server-to-server events API (RudderStack's `af` keys).

One event is one `POST /inappevent/{app id}` with a JSON body; AppsFlyer has no batch API and
no regional host. `authVersion` picks the key: `v1` (the default, as in RudderStack) sends the
dev key to `api2.appsflyer.com`, `v2` the S2S key to `api3.appsflyer.com`, both in the
`authentication` header. Both keys are secrets.

* Track, page and screen events are sent; identify, group and alias cannot be.
* `context.os.name` picks the app: android → `androidAppId`; the Apple family (ios, ipados,
  tvos, watchos) → `appleAppId`. No matching app id configured, no send. An iOS app id is
  always sent as `id<digits>`: AppsFlyer answers 200 to an event for a bare numeric id and
  records nothing, so a configured `123456789` is sent as `id123456789`.
* `appsflyer_id` (required) is `context.externalId[type=appsflyerExternalId]`.
* `eventName`: the track event's name as it is (no `af_*` renaming); page and screen events
  are `page` / `screen`, or `Viewed <name> Page` / `Viewed <name> Screen` with
  `useRichEventName`.
* `eventValue` is JSON text (AppsFlyer requires a string; empty when there are no
  properties). Page and screen: the properties. Track: `{"properties": {...}}`, or the
  properties themselves with `addPropertiesAtRoot`; `listOfProps` moves chosen properties out
  of the wrapper to the top; e-commerce events add AppsFlyer's `af_*` keys (`af_revenue`,
  `af_price`, `af_content_id`, `af_content_type`, `af_quantity`, `af_order_id`,
  `af_search_string`; per-product arrays from `products[]`); `afCurrencyAtRoot` adds
  `af_currency`.
* `eventCurrency` is `properties.currency`; `eventTime` the event time in AppsFlyer's
  `yyyy-MM-dd HH:mm:ss.SSS` UTC form (RudderStack forwards the ISO text); `customer_user_id`
  the userId; `ip` the client IP; `os` the OS version; `app_version_name` and
  `bundleIdentifier` from `context.app`; device ids (`idfa`/`idfv` on Apple,
  `advertising_id` on Android, all-zero ids left out) and `att` from `context.device`;
  `sharing_filter` from the `sharingFilter` setting.

Answers: 200 is delivered; 429 and 5xx are retried; any other answer (400 malformed payload,
401 wrong key) is final.
"""

import re
from datetime import UTC, datetime
from typing import Any

import msgspec

from engine.destinations import segment
from engine.destinations.base import (
    DestinationType,
    Request,
    Unsendable,
    base_url,
    check_endpoint,
    classify_status,
)

DEV_KEY_URL = "https://api2.appsflyer.com"  # authVersion v1
S2S_KEY_URL = "https://api3.appsflyer.com"  # authVersion v2
_APPLE = frozenset({"ios", "ipados", "tvos", "watchos"})
_KEY = re.compile(r"^[\x21-\x7e]+$")  # a header value: printable, no spaces
_ANDROID_ID = re.compile(r"^[A-Za-z0-9_.-]+$")  # it is a path segment
_APPLE_ID = re.compile(r"^(id)?([0-9]+)$")
_ZERO_ID = re.compile(r"^[0-]+$")

# E-commerce events (lower-cased names) → AppsFlyer keys taken from the properties.
_PURCHASE = {
    "revenue": "af_revenue", "price": "af_price", "product_id": "af_content_id",
    "category": "af_content_type", "quantity": "af_quantity", "order_id": "af_order_id",
}  # fmt: skip
_CART = {
    "price": "af_price", "category": "af_content_type", "product_id": "af_content_id",
    "quantity": "af_quantity",
}  # fmt: skip
_VIEW = {"price": "af_price", "category": "af_content_type", "product_id": "af_content_id"}
_SEARCH = {"query": "af_search_string"}
_COMMERCE = {
    "order completed": _PURCHASE, "product removed": _PURCHASE,
    "product added to wishlist": _CART, "wishlist product added to cart": _CART,
    "checkout started": _CART, "product viewed": _VIEW,
    "products searched": _SEARCH, "product searched": _SEARCH,
}  # fmt: skip
# With `products[]`, these become one array entry per product.
_PER_PRODUCT = {"product_id": "af_content_id", "quantity": "af_quantity", "price": "af_price"}


class ListedProperty(msgspec.Struct):
    property: str = ""


class AppsFlyerSettings(msgspec.Struct):
    devKey: str = ""
    s2sKey: str = ""
    authVersion: str = "v1"
    androidAppId: str = ""
    appleAppId: str = ""
    useRichEventName: bool = False
    addPropertiesAtRoot: bool = False
    afCurrencyAtRoot: bool = False
    listOfProps: list[ListedProperty | str] = []
    sharingFilter: list[str] | str = []
    endpoint: str | None = None

    def __post_init__(self) -> None:
        if self.authVersion not in ("v1", "v2"):
            raise ValueError("authVersion must be v1 (dev key) or v2 (S2S key)")
        name, key = ("s2sKey", self.s2sKey) if self.authVersion == "v2" else ("devKey", self.devKey)
        if not key:
            raise ValueError(f"{name} is required with authVersion {self.authVersion}")
        if not _KEY.match(key):
            raise ValueError(f"{name} must be the key from AppsFlyer, without spaces")
        if not self.androidAppId and not self.appleAppId:
            raise ValueError("set androidAppId (package name) and/or appleAppId (App Store id)")
        if self.androidAppId and not _ANDROID_ID.match(self.androidAppId):
            raise ValueError("androidAppId must be the app's package name, e.g. com.example.app")
        if self.appleAppId and not _APPLE_ID.match(self.appleAppId):
            raise ValueError("appleAppId must be the App Store id: digits, e.g. id123456789")
        check_endpoint(self.endpoint)

    def key(self) -> str:
        return self.s2sKey if self.authVersion == "v2" else self.devKey

    def base(self) -> str:
        default = S2S_KEY_URL if self.authVersion == "v2" else DEV_KEY_URL
        return base_url(self.endpoint, default)

    def lifted(self) -> list[str]:
        rows = (r.property if isinstance(r, ListedProperty) else r for r in self.listOfProps)
        return [name for name in rows if name]


def apple_app_id(configured: str) -> str:
    """The App Store id as AppsFlyer records it: always `id<digits>`."""
    return configured if configured.startswith("id") else f"id{configured}"


def map_event(event: dict[str, Any], settings: AppsFlyerSettings, now: datetime) -> list[Request]:
    kind = event.get("type")
    if kind not in ("track", "page", "screen"):
        raise Unsendable(f"AppsFlyer takes track, page and screen events, not {_shown(kind)}")
    appsflyer_id = segment.external_id(event, "appsflyerExternalId")
    if appsflyer_id is None:
        raise Unsendable("no AppsFlyer id: context.externalId has no appsflyerExternalId")
    ctx = segment.context(event)
    os_name = segment.mapping(ctx.get("os")).get("name")
    apple = isinstance(os_name, str) and os_name.lower() in _APPLE
    if apple and settings.appleAppId:
        app_id = apple_app_id(settings.appleAppId)
    elif isinstance(os_name, str) and os_name.lower() == "android" and settings.androidAppId:
        app_id = settings.androidAppId
    else:
        raise Unsendable(
            f"context.os.name {_shown(os_name)} has no app id configured: android needs "
            "androidAppId, ios (and the Apple family) needs appleAppId"
        )
    body: dict[str, Any] = {
        "appsflyer_id": appsflyer_id,
        "eventName": _event_name(event, kind, settings),
        "eventValue": _event_value(event, kind, settings),
    }
    body.update(_details(event, settings, apple=apple))
    headers = {"Content-Type": "application/json", "authentication": settings.key()}
    url = f"{settings.base()}/inappevent/{app_id}"
    return [Request("POST", url, headers=headers, body=body)]


def _event_name(event: dict[str, Any], kind: str, settings: AppsFlyerSettings) -> str:
    if kind == "track":
        name = event.get("event")
        if not isinstance(name, str) or not name:
            raise Unsendable("the track event has no event name")
        return name
    if not settings.useRichEventName:
        return kind
    props = segment.properties(event)
    names = [event.get("name"), event.get("event") if kind == "screen" else None, props.get("name")]
    name = next((text for n in names if (text := segment.text(n))), None)
    return f"Viewed {name} {kind.title()}" if name else f"Viewed {kind.title()}"


def _event_value(event: dict[str, Any], kind: str, settings: AppsFlyerSettings) -> str:
    props = segment.properties(event)
    if not props:
        return ""
    if kind != "track":
        return segment.json_text(props)
    if settings.addPropertiesAtRoot:
        value = dict(props)
    else:
        nested = dict(props)
        value = {name: nested.pop(name) for name in settings.lifted() if name in nested}
        value["properties"] = nested
    value.update(_commerce(event.get("event"), props))
    currency = props.get("currency")
    if settings.afCurrencyAtRoot and currency is not None:
        value["af_currency"] = currency
    return segment.json_text(value)


def _commerce(name: Any, props: dict[str, Any]) -> dict[str, Any]:
    """AppsFlyer's predefined keys for an e-commerce event, from its properties."""
    fields = _COMMERCE.get(name.strip().lower()) if isinstance(name, str) else None
    if fields is None:
        return {}
    found = {af: props[key] for key, af in fields.items() if props.get(key) is not None}
    products = props.get("products")
    products = [p for p in products if isinstance(p, dict)] if isinstance(products, list) else []
    if products:
        for key, af in _PER_PRODUCT.items():
            values = [p.get(key) for p in products]
            if any(v is not None for v in values):
                found[af] = values  # one entry per product, in order: null where missing
    return found


def _details(event: dict[str, Any], settings: AppsFlyerSettings, apple: bool) -> dict[str, Any]:
    """The body's optional fields: what is known of the user, the app and the device."""
    ctx = segment.context(event)
    app, device = segment.mapping(ctx.get("app")), segment.mapping(ctx.get("device"))
    fields: dict[str, Any] = {
        "eventCurrency": segment.text(segment.properties(event).get("currency")),
        "eventTime": _event_time(event),
        "customer_user_id": segment.user_id(event),
        "ip": segment.ip(event),
        "app_version_name": segment.text(app.get("version")),
        "bundleIdentifier": segment.text(app.get("namespace")),
    }
    version = segment.mapping(ctx.get("os")).get("version")
    fields["os"] = version if isinstance(version, str) else segment.text(version)
    ad_id = segment.text(device.get("advertisingId"))
    ad_id = None if ad_id is not None and _ZERO_ID.match(ad_id) else ad_id
    if apple:
        fields["idfa"], fields["idfv"] = ad_id, segment.text(device.get("id"))
        att = device.get("attTrackingStatus")
        if isinstance(att, int) and not isinstance(att, bool):
            fields["att"] = att
    else:
        fields["advertising_id"] = ad_id
    if settings.sharingFilter:
        fields["sharing_filter"] = settings.sharingFilter
    return {key: value for key, value in fields.items() if value is not None}


def _event_time(event: dict[str, Any]) -> str | None:
    when = segment.event_time(event)
    try:
        when = when.astimezone(UTC) if when is not None else None
    except OverflowError:  # a time zone that pushes the year out of range: no usable time
        return None
    return when.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] if when is not None else None


def _shown(value: Any) -> str:
    """A client's value in an error message: quoted, and not too long."""
    text = value if isinstance(value, str) else segment.json_text(value)
    return repr(text[:100])


APPSFLYER = DestinationType(
    name="appsflyer", title="AppsFlyer", settings=AppsFlyerSettings, map=map_event,
    category="Advertising",
    description="Mobile attribution: in-app events sent server to server.",
    supported_types=frozenset({"track", "page", "screen"}), secret_keys=("devKey", "s2sKey"),
    classify=classify_status,
)  # fmt: skip
