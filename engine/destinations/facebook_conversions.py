"""Facebook Conversions: events as server events for a Meta dataset, through the Conversions API.

RudderStack's Facebook Conversions destination (§6.3 of the contracts): the same requests as
the Facebook Pixel destination, to a `datasetId`, with these differences:

* page and screen are always `PageView`; identify is not taken (it is no conversion).
* e-commerce also covers Payment Info Entered → AddPaymentInfo and Product Added to Wishlist
  → AddToWishlist.
* `action_source` falls back to the configured `actionSource` before the event's channel.
* a custom event with `revenue` gets it as `value`, with a currency (USD unless the event
  says otherwise): Meta reads a value only with its currency.
* custom_data keeps properties as they are (no flattening), without the personal data Meta
  forbids there.
"""

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

_HASHED_FLAG = ("FacebookConversions", "Facebook Conversions", "facebook_conversions",
                "FACEBOOK_CONVERSIONS")  # fmt: skip
_COMMERCE = {
    **facebook.SEGMENT_COMMERCE,
    "payment info entered": ("AddPaymentInfo", facebook.Shape.CHECKOUT),
    "product added to wishlist": ("AddToWishlist", facebook.Shape.PRODUCT),
}


class ConversionsSettings(msgspec.Struct):
    datasetId: str
    accessToken: str
    actionSource: str | None = None
    removeExternalId: bool = False
    limitedDataUsage: bool = False
    testDestination: bool = False
    testEventCode: str | None = None
    endpoint: str | None = None

    def __post_init__(self) -> None:
        check_id("datasetId", self.datasetId)
        check_token("accessToken", self.accessToken)
        self.actionSource = blank(self.actionSource)
        if self.actionSource is not None and self.actionSource not in facebook.ACTION_SOURCES:
            raise ValueError(
                f"actionSource must be one of {', '.join(sorted(facebook.ACTION_SOURCES))}"
            )
        if self.testDestination and not blank(self.testEventCode):
            raise ValueError("testDestination needs testEventCode (from Meta's Test Events tab)")
        check_endpoint(self.endpoint)


def map_event(event: dict[str, Any], settings: ConversionsSettings, now: datetime) -> list[Request]:
    kind = event.get("type")
    props = segment.properties(event)
    custom = facebook.custom_properties(props)
    if kind == "track":
        name = segment.text(event.get("event"))
        if name is None or not name.strip():
            raise Unsendable("a track event needs a name (`event`)")
        standard = _COMMERCE.get(name.strip().lower())
        if standard is not None:
            name, shape = standard
            custom.update(facebook.commerce(shape, props))
        elif (value := facebook.money(props.get("revenue"))) is not None:
            custom["value"] = value
            custom["currency"] = segment.text(props.get("currency")) or "USD"
    elif kind in ("page", "screen"):
        name = "PageView"
    else:
        raise Unsendable(f"Facebook Conversions does not take {str(kind)[:20]!r} calls")
    prehashed = facebook.hashed_by_sender(event, *_HASHED_FLAG)
    user = facebook.user_data(event, external_id=not settings.removeExternalId, prehashed=prehashed)
    source = facebook.action_source(event, settings.actionSource)
    made = facebook.server_event(
        event, now, name=name, source=source, user=user, custom=custom,
        limited_data=settings.limitedDataUsage,
    )  # fmt: skip
    base = base_url(settings.endpoint, facebook.GRAPH)
    test_code = blank(settings.testEventCode) if settings.testDestination else None
    return [
        facebook.events_request(base, settings.datasetId, settings.accessToken, made, test_code)
    ]


FACEBOOK_CONVERSIONS = DestinationType(
    name="facebook_conversions", title="Facebook Conversions", settings=ConversionsSettings,
    category="Advertising",
    description="Meta Conversions API: web events from the server.",
    map=map_event, supported_types=frozenset({"track", "page", "screen"}),
    secret_keys=("accessToken",), classify=facebook.classify,
)  # fmt: skip
