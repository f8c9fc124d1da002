"""Facebook Pixel: events as server events for a pixel, through Meta's Conversions API.

RudderStack's Facebook Pixel destination, with its config keys (§6.2 of the contracts):

* track: Segment's e-commerce events become Meta's standard ones (product list viewed and
  product viewed → ViewContent, product added → AddToCart, checkout started →
  InitiateCheckout, order completed → Purchase, products searched → Search) with content ids,
  contents, value and currency; `eventsToEvents` maps other names onto Meta's standard events
  (with the e-commerce fields where the standard event has them). Any other event keeps its
  name as a custom event, with `revenue` as its value.
* page and screen: `Viewed page <name>` (or `Viewed a page`), or `PageView` with
  `standardPageCall` — which then needs properties to send.
* identify: only with `advancedMapping`, as an event named `identify` that carries the
  person's details alone.
* custom_data: the remaining properties, flattened (`products[0].sku`), without the personal
  data Meta forbids there (email, names, phone, address, birthday …) unless whitelisted;
  blacklisted properties are left out too, or hashed where asked.
"""

from dataclasses import dataclass
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

_HASHED_FLAG = ("FacebookPixel", "Facebook Pixel", "facebook_pixel", "FACEBOOK_PIXEL")
_VALUE_FIELDS = {"properties.price": "price", "properties.value": "value"}


class NameMap(msgspec.Struct):
    from_: str = msgspec.field(name="from", default="")
    to: str = ""


class Whitelisted(msgspec.Struct):
    whitelistPiiProperties: str = ""


class Blacklisted(msgspec.Struct):
    blacklistPiiProperties: str = ""
    blacklistPiiHash: bool = False


class PixelSettings(msgspec.Struct):
    pixelId: str
    accessToken: str
    advancedMapping: bool = False
    standardPageCall: bool = False
    valueFieldIdentifier: str = "properties.price"
    whitelistPiiProperties: list[Whitelisted] = []
    blacklistPiiProperties: list[Blacklisted] = []
    eventsToEvents: list[NameMap] = []
    categoryToContent: list[NameMap] = []
    removeExternalId: bool = False
    limitedDataUSage: bool = False  # RudderStack's spelling for this destination
    limitedDataUsage: bool = False
    testDestination: bool = False
    testEventCode: str | None = None
    endpoint: str | None = None

    def __post_init__(self) -> None:
        check_id("pixelId", self.pixelId)
        check_token("accessToken", self.accessToken)
        if (self.valueFieldIdentifier or "properties.price") not in _VALUE_FIELDS:
            raise ValueError(
                f"valueFieldIdentifier must be one of {', '.join(sorted(_VALUE_FIELDS))}"
            )
        if self.testDestination and not blank(self.testEventCode):
            raise ValueError("testDestination needs testEventCode (from Meta's Test Events tab)")
        check_endpoint(self.endpoint)


@dataclass(frozen=True)
class _Rules:
    """The settings, in the shape the mapping reads them."""

    names: dict[str, str]
    content_types: dict[str, str]
    allowed: frozenset[str]
    blocked: dict[str, bool]  # property → hash it (True) or leave it out
    value_key: str

    @classmethod
    def of(cls, s: PixelSettings) -> "_Rules":
        def pairs(rows: list[NameMap]) -> dict[str, str]:
            return {r.from_.strip().lower(): r.to.strip() for r in rows if r.from_.strip()
                    and r.to.strip()}  # fmt: skip

        return cls(
            pairs(s.eventsToEvents),
            pairs(s.categoryToContent),
            frozenset(w.whitelistPiiProperties.strip() for w in s.whitelistPiiProperties),
            {b.blacklistPiiProperties.strip(): b.blacklistPiiHash
             for b in s.blacklistPiiProperties if b.blacklistPiiProperties.strip()},
            _VALUE_FIELDS.get(s.valueFieldIdentifier, "price"),
        )  # fmt: skip


def map_event(event: dict[str, Any], settings: PixelSettings, now: datetime) -> list[Request]:
    rules = _Rules.of(settings)
    kind = event.get("type")
    if kind == "track":
        name, custom = _track(event, rules)
    elif kind in ("page", "screen"):
        name, custom = _page(event, settings, rules)
    elif kind == "identify":
        if not settings.advancedMapping:
            raise Unsendable("identify calls are sent to Meta only with advancedMapping on")
        name, custom = "identify", None
    else:
        raise Unsendable(f"Facebook Pixel does not take {str(kind)[:20]!r} calls")
    prehashed = facebook.hashed_by_sender(event, *_HASHED_FLAG)
    user = facebook.user_data(event, external_id=not settings.removeExternalId, prehashed=prehashed)
    made = facebook.server_event(
        event, now, name=name, source=facebook.action_source(event, None), user=user,
        custom=custom, limited_data=settings.limitedDataUSage or settings.limitedDataUsage,
    )  # fmt: skip
    base = base_url(settings.endpoint, facebook.GRAPH)
    test_code = blank(settings.testEventCode) if settings.testDestination else None
    return [facebook.events_request(base, settings.pixelId, settings.accessToken, made, test_code)]


def _track(event: dict[str, Any], rules: _Rules) -> tuple[str, dict[str, Any]]:
    name = segment.text(event.get("event"))
    if name is None or not name.strip():
        raise Unsendable("a track event needs a name (`event`)")
    props = segment.properties(event)
    custom = _leftovers(props, rules)
    key = name.strip().lower()
    shape: facebook.Shape | None = None
    if key in rules.names:  # the user's mapping first: it may override Segment's spec
        name = rules.names[key]
        shape = facebook.STANDARD_SHAPES.get(name)
    elif key in facebook.SEGMENT_COMMERCE:
        name, shape = facebook.SEGMENT_COMMERCE[key]
    if shape is None:
        value = facebook.money(props.get("revenue"))
        if value is not None:
            custom["value"] = value
        return name, custom
    custom.update(
        facebook.commerce(shape, props, value_key=rules.value_key,
                          content_types=rules.content_types)
    )  # fmt: skip
    return name, custom


def _page(
    event: dict[str, Any], settings: PixelSettings, rules: _Rules
) -> tuple[str, dict[str, Any]]:
    props = segment.properties(event)
    if settings.standardPageCall:
        if not props:
            raise Unsendable("a PageView (standardPageCall) needs properties to send")
        return "PageView", _leftovers(props, rules)
    page = segment.text(event.get("name")) or segment.text(props.get("name"))
    return (f"Viewed page {page}" if page else "Viewed a page"), _leftovers(props, rules)


def _leftovers(props: dict[str, Any], rules: _Rules) -> dict[str, Any]:
    kept = facebook.custom_properties(props, allowed=rules.allowed, hashed=rules.blocked)
    try:
        return facebook.flattened(kept)
    except RecursionError:
        raise Unsendable("properties are nested too deeply to flatten") from None


FACEBOOK_PIXEL = DestinationType(
    name="facebook_pixel", title="Facebook Pixel", settings=PixelSettings, map=map_event,
    category="Advertising",
    description="Meta Pixel events sent from the server.",
    supported_types=frozenset({"track", "identify", "page", "screen"}),
    secret_keys=("accessToken",), classify=facebook.classify,
)  # fmt: skip
