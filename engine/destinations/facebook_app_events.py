"""Facebook App Events: mobile app events through Meta's (legacy) App Events API.

RudderStack's `fb` destination (§6.4 of the contracts). One form POST per event to
`/{version}/{appID}/activities`:

* `event=CUSTOM_APP_EVENTS` with `custom_events`, a JSON array holding the one event:
  `_eventName`, `_logTime` (milliseconds), `_valueToSum` and `fb_currency` from `revenue` and
  `currency` (a revenue needs its currency), `fb_description` from `name`, `fb_content_id`
  from the products' ids, and the other properties as they are (objects as JSON text: Meta's
  parameters are flat). Application Installed is Meta's own `event=MOBILE_APP_INSTALL`.
* Segment's mobile lifecycle and e-commerce events become Meta's standard names
  (`fb_mobile_purchase` …); other names, and every property name, must be what Meta accepts
  (letters, digits, `_`, `-`, spaces; 40 characters), else the event is refused: Meta would
  drop it.
* screen: `Viewed <name> Screen`, or `Viewed Screen` when that is no valid name.
* who: the advertising id (`advertiser_id`) and the person's hashed details (`ud[em]` …);
  the anonymous id (`anon_id`) only when neither is known (Meta needs one of the three); the
  user id as `app_user_id`. `extinfo` describes the device; both tracking flags follow
  `context.device.adTrackingEnabled` ("0" when unknown).
* the client's IP goes in `X-Forwarded-For`. An optional `accessToken` (an app token) is sent
  as `access_token`; RudderStack sends none.
"""

import re
from datetime import datetime
from typing import Any

import msgspec

from engine.destinations import facebook, segment
from engine.destinations.base import (
    DestinationType,
    Request,
    Unsendable,
    base_url,
    blank,
    check_endpoint,
    check_id,
    check_token,
)

_HASHED_FLAG = ("FB", "Facebook App Events", "facebook_app_events", "FACEBOOK_APP_EVENTS")
_NAME = re.compile(r"[0-9a-zA-Z_][0-9a-zA-Z _-]{0,39}")
_INSTALL = "MOBILE_APP_INSTALL"
_STANDARD = {
    "application installed": _INSTALL,
    "application opened": "fb_mobile_activate_app",
    "products searched": "fb_mobile_search",
    "product viewed": "fb_mobile_content_view",
    "product added": "fb_mobile_add_to_cart",
    "product added to wishlist": "fb_mobile_add_to_wishlist",
    "payment info entered": "fb_mobile_add_payment_info",
    "checkout started": "fb_mobile_initiated_checkout",
    "order completed": "fb_mobile_purchase",
}
_USER_FIELDS = ("em", "fn", "ln", "ph", "ge", "db", "ct", "st", "zp")
_RENAMED = {"revenue", "currency", "name", "products"}


class AppEventsSettings(msgspec.Struct):
    appID: str
    accessToken: str | None = None
    endpoint: str | None = None

    def __post_init__(self) -> None:
        check_id("appID", self.appID)
        check_token("accessToken", self.accessToken, required=False)
        check_endpoint(self.endpoint)


def map_event(event: dict[str, Any], settings: AppEventsSettings, now: datetime) -> list[Request]:
    name = _name(event)
    form: dict[str, str] = {"event": "CUSTOM_APP_EVENTS" if name != _INSTALL else _INSTALL}
    form.update(_who(event))
    enabled = "1" if facebook.tracking_enabled(event) else "0"
    form["advertiser_tracking_enabled"] = form["application_tracking_enabled"] = enabled
    form["extinfo"] = segment.json_text(facebook.extinfo(event))
    if name != _INSTALL:
        when = segment.occurred(event, now)
        params = {**_parameters(event), "_eventName": name,
                  "_logTime": int(when.timestamp() * 1000)}  # fmt: skip
        form["custom_events"] = segment.json_text([params])
    headers = {}
    ip = facebook.client_ip(event)
    if ip is not None:
        headers["X-Forwarded-For"] = ip
    base = base_url(settings.endpoint, facebook.GRAPH)
    token = blank(settings.accessToken)
    return [
        Request(
            "POST", f"{base}/{facebook.VERSION}/{settings.appID}/activities", headers=headers,
            params={"access_token": token} if token else {}, body=form, body_format="form",
        )
    ]  # fmt: skip


def _name(event: dict[str, Any]) -> str:
    kind = event.get("type")
    if kind == "screen":
        screen = segment.text(event.get("name")) or segment.text(
            segment.properties(event).get("name")
        )
        named = f"Viewed {screen} Screen"
        return named if screen and _NAME.fullmatch(named) else "Viewed Screen"
    if kind != "track":
        raise Unsendable(f"Facebook App Events does not take {str(kind)[:20]!r} calls")
    name = (segment.text(event.get("event")) or "").strip()
    if not name:
        raise Unsendable("a track event needs a name (`event`)")
    standard = _STANDARD.get(name.lower())
    if standard is not None:
        return standard
    if not _NAME.fullmatch(name):
        raise Unsendable(
            f"event name {name[:60]!r} is not one Meta accepts: up to 40 letters, digits, "
            "'_', '-' or spaces, not starting with '-' or a space"
        )
    return name


def _who(event: dict[str, Any]) -> dict[str, str]:
    """The ids and hashed details that tell Meta whose device this is."""
    who: dict[str, str] = {}
    advertiser = facebook.advertising_id(event)
    if advertiser is not None:
        who["advertiser_id"] = advertiser
    prehashed = facebook.hashed_by_sender(event, *_HASHED_FLAG)
    details = facebook.customer(event, prehashed=prehashed)
    shared = {k: v for k, v in details.items() if k in _USER_FIELDS}
    who.update((f"ud[{k}]", v) for k, v in facebook.hashing(shared, prehashed).items())
    anonymous = segment.anonymous_id(event)
    if not who and anonymous is not None:  # Meta's three ways to identify a device
        who["anon_id"] = anonymous
    if not who:
        raise Unsendable("Meta needs an advertising id, the person's details or an anonymousId")
    user = segment.user_id(event)
    if user is not None:
        who["app_user_id"] = user
    return who


def _parameters(event: dict[str, Any]) -> dict[str, Any]:
    props = segment.properties(event)
    params: dict[str, Any] = {}
    for key, value in props.items():
        if key in _RENAMED or value is None:
            continue
        if not _NAME.fullmatch(key):
            raise Unsendable(
                f"property name {key[:60]!r} is not one Meta accepts: up to 40 letters, "
                "digits, '_', '-' or spaces"
            )
        params[key] = segment.json_text(value) if isinstance(value, dict | list) else value
    revenue = props.get("revenue")
    if revenue is not None:
        amount = segment.number(revenue)
        if amount is None:
            raise Unsendable("properties.revenue must be a number")
        currency = segment.text(props.get("currency"))
        if currency is None:
            raise Unsendable("properties.revenue needs properties.currency (e.g. 'USD')")
        params["_valueToSum"] = amount
    if (currency := segment.text(props.get("currency"))) is not None:
        params["fb_currency"] = currency
    if (description := segment.text(props.get("name"))) is not None:
        params["fb_description"] = description
    products = props.get("products")
    ids = [
        text
        for p in (products if isinstance(products, list) else [])
        if isinstance(p, dict) and (text := segment.text(p.get("product_id"))) is not None
    ]
    if ids:
        params["fb_content_id"] = ids
    return params


FACEBOOK_APP_EVENTS = DestinationType(
    name="facebook_app_events", title="Facebook App Events", settings=AppEventsSettings,
    category="Advertising",
    description="Meta app events for mobile ad measurement.",
    map=map_event, supported_types=frozenset({"track", "screen"}),
    secret_keys=("accessToken",), classify=facebook.classify,
)  # fmt: skip
