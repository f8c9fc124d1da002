"""Braze: user attributes, custom events and purchases through Braze's REST API (RudderStack's
`braze` keys).

Hosts: by `dataCenter` `<region>-<n>` (any case): `us-N` → `https://rest.iad-N.braze.com`,
`eu-N` → `https://rest.fra-N.braze.eu`, `au-N` → `https://rest.au-N.braze.com`; or the
`endpoint` setting. Auth: `Authorization: Bearer <restApiKey>` (a REST API key with the
`users.track`, `users.identify`, `users.merge` and `subscription.status.set` permissions).

Who: `external_id` is `context.externalId[type=brazeExternalId]`, else `userId`. Without one the
object names the user by `user_alias {alias_name: anonymousId, alias_label: "rudder_id"}` (or
`integrations.Braze.alias {alias_name, alias_label}`) with `_update_existing_only: false`, so
that Braze makes an alias-only profile; an event with neither cannot be sent.

* identify → `/users/track` `attributes[]`: the traits, Braze's names for the known ones
  (email lower-cased, firstName → first_name, lastName → last_name, phone, birthday → dob,
  avatar → image_url, address.city → home_city, address.country → country, gender → M/F/O or
  null), the others as they are. No traits: refused. With `enableNestedArrayOperations`, a
  trait `{add, remove, update}` becomes Braze's `$add`/`$remove`/`$update` of a nested object
  array. An identify with both an external id and an alias first merges the alias-only profile
  into the user's (`/users/identify`, see below).
* track → `events[] {name, time (the event's timestamp as sent), properties (without Braze's
  reserved `time` and `event_name`), app_id (integrations.Braze.appId)}`; `context.traits`
  make a sibling `attributes[]` object. "Order Completed" (any case) → one `purchases[]` object
  per product `{product_id (else sku), price, currency (the order's, else the product's),
  quantity, time}` (with `sendPurchaseEventWithExtraProperties` the product's other fields in
  `properties`), no event. With `useEcommerceRecommendedEvents`, Product Viewed, Product
  Added/Removed, Checkout Started, Order Completed/Refunded/Cancelled become Braze's
  `ecommerce.*` recommended events (fields by Braze's schema, `products[]`, `source`, the
  other properties in `metadata`).
* page / screen → a custom event named by `name`, else `properties.name`, else "Page Viewed" /
  "Screen Viewed".
* group → `attributes[] {ab_rudder_group_<groupId>: true}` (RudderStack's name, kept so that
  Braze segments built on it keep working); with `enableSubscriptionGroupInGroupCall`,
  `/v2/subscription/status/set {subscription_groups: [{subscription_group_id: groupId,
  subscription_state: traits.subscriptionState, external_ids, phones | emails}]}`.
* alias → `/users/merge {merge_updates: [{identifier_to_merge: {external_id: previousId},
  identifier_to_keep: {external_id: userId}}]}`.

The alias merge: an anonymous user's events make an alias-only profile; without a merge it
would stay apart from the user's profile forever. So the identify's stored request carries the
merge to make (its `hints`, stored and never sent), and `resolve` makes it when the request is
sent, before it: `POST /users/identify {aliases_to_identify: [{external_id, user_alias}],
merge_behavior: "merge"}` (a write: a preview does not make it), its answer kept 5 minutes
(a retry does not merge again). A merge that fails (no answer, 429, 5xx, a refusal) is logged
and the identify is sent all the same, as RudderStack does: its attributes matter more, and
the user's next identify merges again.

Batching: requests to the same endpoint with the same key combine: `/users/track` bodies into
one (attributes, events and purchases each concatenated, in job order), merges into one
`merge_updates`, subscriptions into one `subscription_groups` (entries of the same group and
state merged, their ids unioned). Braze takes at most 75 objects in each of the three track
arrays and 75 distinct external ids per request, and a job may bring several purchases: a
request carries at most 25 jobs, and a job combines only when it brings at most 3 objects to
each array (one attributes object, one event, up to 3 purchases), so 25 jobs stay within 75.
An order with more products travels in a request of its own (an order of more than 75, or of
more than 4 MB, in several). Each object may weigh 100 KB (larger ones are refused), a request
4 MB.

Answers: 2xx with `message: "success"` is delivered; with `errors[] {type, input_array,
index}` Braze processed the rest of the request but not those objects: each job that brought
a refused object fails with Braze's words and the object named (RudderStack marks it
"delivered with a warning"; here it is listed as failed so that it can be seen and sent again
once fixed), the others are delivered. A 2xx without "success" refuses the whole request.
413 (the router splits the batch), 429 (Braze says when to come back in
`X-Ratelimit-Retry-After`, which the sender reads) and 5xx are retried; other 4xx (400
`{message}`, 401 "Invalid API key") refuse the request with Braze's message. A 400 refuses a
whole request for one malformed object without naming it (a subscription's phone not in
E.164, a merge Braze cannot read): a combined request so refused is sent again job by job, so
that only the bad one fails. Only `/users/track` answers name objects; `errors[]` in other
answers (merges, subscriptions) do not refuse anything, as RudderStack reads them.

Dedup: Braze has none; an event sent again after a lost answer is recorded twice (attributes
are idempotent).
"""

import logging
import re
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Literal

import msgspec
from msgspec import Raw

from engine import codec
from engine.destinations import segment
from engine.destinations.base import (
    DestinationType,
    Judgement,
    LookupFailed,
    Lookups,
    Request,
    Unsendable,
    Verdict,
    base_url,
    check_endpoint,
    for_call,
    json_answer,
)

log = logging.getLogger(__name__)

HOSTS = {
    "us": "https://rest.iad-{}.braze.com",
    "eu": "https://rest.fra-{}.braze.eu",
    "au": "https://rest.au-{}.braze.com",
}
_DATA_CENTER = re.compile(r"^(us|eu|au)-(\d{1,2})$")
TRACK = "/users/track"
IDENTIFY = "/users/identify"
MERGE = "/users/merge"
SUBSCRIPTION = "/v2/subscription/status/set"
ARRAYS = ("attributes", "events", "purchases")  # the arrays of a /users/track body
LISTED = {TRACK: ARRAYS, MERGE: ("merge_updates",), SUBSCRIPTION: ("subscription_groups",)}
MAX_OBJECTS = 75  # Braze's limit per /users/track array, and of distinct external ids
MAX_JOBS = 25  # per request: merges take 50, subscriptions 25
PER_JOB = MAX_OBJECTS // MAX_JOBS  # objects a job may bring to one array and still combine
MAX_OBJECT_BYTES = 100 * 1024
MAX_BYTES = 4 * 1024 * 1024  # a request
BATCH_BYTES = 4_000_000  # stored requests weigh more than the bodies they combine
MERGE_KEPT = 300.0  # seconds a merge's answer is reused (a retry does not merge again)
# Braze refuses a whole request for one object it cannot read (Braze's "Bad syntax"): such a
# combined request is sent again job by job, so that only the bad one fails.
SPLIT_ON = frozenset({400})
_REASON = 300
_GENDERS = {
    **dict.fromkeys(("woman", "female", "w", "f"), "F"),
    **dict.fromkeys(("man", "male", "m"), "M"),
    **dict.fromkeys(("other", "o"), "O"),
}
# Braze's names for known traits (RudderStack's BrazeUserAttributesConfig).
_ATTRIBUTES = (
    ("country", "address.country"),
    ("dob", "birthday"),
    ("email", "email"),
    ("first_name", "firstName"),
    ("gender", "gender"),
    ("home_city", "address.city"),
    ("image_url", "avatar"),
    ("last_name", "lastName"),
    ("phone", "phone"),
)
# Traits sent under Braze's name only; the Braze names that keep an explicit null (unset).
_RENAMED = frozenset({"address", "birthday", "email", "firstName", "gender", "avatar", "lastName",
                      "phone"})  # fmt: skip
_NULLABLE = frozenset({"email", "gender", "phone"})
_RESERVED_PROPERTIES = ("time", "event_name")
_PURCHASE_FIELDS = frozenset({"product_id", "sku", "price", "quantity", "currency"})

HELP = {
    "restApiKey": "A Braze REST API key (Settings → APIs and Identifiers) with the users.track, "
    "users.identify, users.merge and subscription.status.set permissions.",
    "dataCenter": "Your Braze instance, as in your dashboard's URL: US-01 … US-08, EU-01, "
    "EU-02, AU-01.",
    "enableSubscriptionGroupInGroupCall": "Group calls set the user's state in the "
    "subscription group named by groupId (traits.subscriptionState, and the user's phone or "
    "email) instead of setting an ab_rudder_group_<groupId> attribute.",
    "sendPurchaseEventWithExtraProperties": "Order Completed purchases carry each product's "
    "other fields as purchase properties.",
    "useEcommerceRecommendedEvents": "Send e-commerce events (Product Viewed, Product Added, "
    "Order Completed, …) as Braze's recommended ecommerce.* events instead of custom events "
    "and purchases.",
    "enableNestedArrayOperations": "Traits of the form {add, remove, update} change arrays of "
    "nested objects ($add, $remove, $update) instead of replacing them.",
    "supportDedup": "RudderStack's attribute dedup (sending only changed attributes) is not "
    "done by Sluice: every attribute is sent. Accepted so that RudderStack configs import.",
    "trackAnonymousUser": "Accepted from RudderStack configs; no effect: anonymous users are "
    "always sent by their alias.",
    "prefixProperties": "Legacy RudderStack setting; no effect.",
    "endpoint": "Replaces Braze's REST host (a proxy, a test server).",
}


class BrazeSettings(msgspec.Struct):
    restApiKey: str
    dataCenter: str
    enableSubscriptionGroupInGroupCall: bool = False
    sendPurchaseEventWithExtraProperties: bool = False
    useEcommerceRecommendedEvents: bool = False
    enableNestedArrayOperations: bool = False
    supportDedup: bool = False  # accepted, not done (see HELP)
    trackAnonymousUser: bool = True  # accepted, no effect
    prefixProperties: bool = False  # legacy, no effect
    endpoint: str | None = None

    def __post_init__(self) -> None:
        self.restApiKey = self.restApiKey.strip()
        if not self.restApiKey:
            raise ValueError("restApiKey is empty: copy a REST API key from Braze")
        if any(c.isspace() or not c.isprintable() for c in self.restApiKey):
            raise ValueError("restApiKey contains spaces: copy the REST API key exactly")
        if _DATA_CENTER.match(self.dataCenter.strip().lower()) is None:
            raise ValueError(
                f"dataCenter {self.dataCenter[:20]!r} is not a Braze instance: use the one in "
                "your dashboard's URL, such as US-01, EU-01 or AU-01"
            )
        check_endpoint(self.endpoint)

    @property
    def base(self) -> str:
        match = _DATA_CENTER.match(self.dataCenter.strip().lower())
        assert match is not None  # (checked above)
        region, number = match.groups()
        # Braze's instances have two digits (US-01): "us-1" names the same one.
        return base_url(self.endpoint, HOSTS[region].format(number.zfill(2)))


def _request(
    settings: BrazeSettings, path: str, body: dict[str, Any], hints: dict[str, str] | None = None
) -> Request:
    headers = {
        "Content-Type": "application/json",
        "Accept": "application/json",
        "Authorization": f"Bearer {settings.restApiKey}",
    }
    return Request("POST", f"{settings.base}{path}", headers, body=body, hints=hints or {})


def _path(url: str) -> str | None:
    return next((path for path in LISTED if url.endswith(path)), None)


# ---------------------------------------------------------------------------------------------
# Who the event is about


def _given(value: Any) -> bool:
    return value is not None and value != ""


def _external_id(event: dict[str, Any]) -> str | None:
    return segment.external_id(event, "brazeExternalId") or segment.user_id(event)


def _alias(event: dict[str, Any]) -> dict[str, Any] | None:
    """The user's alias: `integrations.Braze.alias`, else the anonymousId as `rudder_id`."""
    chosen = segment.mapping(segment.integration(event, "Braze").get("alias"))
    # Braze takes an alias's name and label as text only (an object would be refused).
    name, label = segment.text(chosen.get("alias_name")), segment.text(chosen.get("alias_label"))
    if name is not None and label is not None:
        return {"alias_name": name, "alias_label": label}
    anonymous = segment.anonymous_id(event)
    return None if anonymous is None else {"alias_name": anonymous, "alias_label": "rudder_id"}


def _who(event: dict[str, Any]) -> dict[str, Any]:
    """The fields that name the user in an attributes, event or purchase object."""
    external = _external_id(event)
    if external is not None:
        return {"external_id": external}
    alias = _alias(event)
    if alias is None:
        raise Unsendable(
            "the event has no userId, brazeExternalId, anonymousId or integrations.Braze.alias"
        )
    return {"_update_existing_only": False, "user_alias": alias}


def _time(event: dict[str, Any]) -> str:
    """When the event happened, as the event says it (Braze takes ISO 8601)."""
    for key in ("timestamp", "originalTimestamp", "receivedAt"):
        value = event.get(key)
        if isinstance(value, str) and value:
            return value
    raise Unsendable("the event has no timestamp (Braze needs each event's time)")


def _sized(item: dict[str, Any], what: str) -> dict[str, Any]:
    size = len(codec.encode(item))
    if size > MAX_OBJECT_BYTES:
        raise Unsendable(f"the {what} would be {size:,} bytes; Braze takes 100 KB per object")
    return item


# ---------------------------------------------------------------------------------------------
# Attributes


def _attributes(event: dict[str, Any], settings: BrazeSettings) -> dict[str, Any]:
    """The user's traits as a Braze attributes object (without who: see `_who`)."""
    traits = segment.traits(event)
    data: dict[str, Any] = {}
    for name, path in _ATTRIBUTES:
        value = segment.dig(traits, path)
        if not _truthy(value) and not (value is None and name in _NULLABLE and _has(traits, path)):
            continue
        if name == "gender":
            value = _GENDERS.get(value.lower()) if isinstance(value, str) else None
        elif name == "email" and value is not None:
            if not isinstance(value, str):
                raise Unsendable("traits.email must be text")
            value = value.lower()
        data[name] = value
    data |= {k: v for k, v in traits.items() if k not in _RENAMED}
    if settings.enableNestedArrayOperations:
        merge_objects = segment.properties(event).get("mergeObjectsUpdateOperation")
        _nested(traits, data, merge_objects)
    return data


def _truthy(value: Any) -> bool:
    """Whether a trait counts as set, by RudderStack's (JavaScript's) rule: 0, false and ""
    do not, empty objects and lists do."""
    if value is None or value is False or value == "":
        return False
    return not (isinstance(value, int | float) and value == 0)


def _has(traits: dict[str, Any], path: str) -> bool:
    *parents, last = path.split(".")
    node = segment.dig(traits, ".".join(parents)) if parents else traits
    return isinstance(node, dict) and last in node


def _nested(traits: dict[str, Any], data: dict[str, Any], merge_objects: Any) -> None:
    """Traits `{update, remove, add}` as Braze's nested object array operations."""
    for key, value in traits.items():
        if not isinstance(value, dict) or key in _RENAMED:
            continue
        ops: dict[str, Any] = {}
        if isinstance(update := value.get("update"), list):
            ops["$update"] = [_identified(item, key, new_object=True) for item in update]
            data["_merge_objects"] = merge_objects if merge_objects is not None else False
        if isinstance(remove := value.get("remove"), list):
            ops["$remove"] = [_identified(item, key, new_object=False) for item in remove]
        if _given(add := value.get("add")):
            ops["$add"] = add
        if ops:
            data[key] = ops


def _identified(item: Any, key: str, *, new_object: bool) -> dict[str, Any]:
    item = segment.mapping(item)
    identifier = item.get("identifier")
    if not isinstance(identifier, str) or not identifier:
        raise Unsendable(f"each item of traits.{key[:50]} update/remove needs an identifier")
    found = {"$identifier_key": identifier, "$identifier_value": item.get(identifier)}
    if new_object:
        found["$new_object"] = {
            k: v for k, v in item.items() if k not in ("identifier", identifier)
        }
    return found


# ---------------------------------------------------------------------------------------------
# /users/track requests


def _track_requests(
    settings: BrazeSettings,
    attributes: dict[str, Any] | None,
    events: list[dict[str, Any]],
    purchases: list[dict[str, Any]],
    hints: dict[str, str] | None = None,
) -> list[Request]:
    """The /users/track request(s) of one event: purchases past 75 or 4 MB in more requests."""
    first: dict[str, Any] = {}
    if attributes is not None:
        first["attributes"] = [_sized(attributes, "attributes object")]
    if events:
        first["events"] = [_sized(e, "event object") for e in events]
    bodies, size = [first], len(codec.encode(first))
    for purchase in purchases:
        weight = len(codec.encode(_sized(purchase, "purchase object"))) + 1
        body = bodies[-1]
        if len(body.get("purchases", ())) == MAX_OBJECTS or size + weight > MAX_BYTES - 1024:
            body, size = {}, 20
            bodies.append(body)
        body.setdefault("purchases", []).append(purchase)
        size += weight
    return [_request(settings, TRACK, body, hints if n == 0 else None)
            for n, body in enumerate(bodies)]  # fmt: skip


def _identify(event: dict[str, Any], settings: BrazeSettings) -> list[Request]:
    attributes = _attributes(event, settings)
    if not attributes:
        raise Unsendable(
            "No attributes found to update the user profile: the identify has no traits"
        )
    who = _who(event)
    hints = None
    external, alias = _external_id(event), _alias(event)
    if external is not None and alias is not None:
        hints = {"external_id": external, **alias}
    return _track_requests(settings, attributes | who, [], [], hints)


def _track(event: dict[str, Any], settings: BrazeSettings) -> list[Request]:
    name = segment.text(event.get("event"))
    if name is None or not name.strip():
        raise Unsendable("a track call needs an event name")
    return _custom(event, settings, name)


def _custom(event: dict[str, Any], settings: BrazeSettings, name: str) -> list[Request]:
    who = _who(event)
    traits = _attributes(event, settings)
    attributes = traits | who if traits else None
    lowered = name.strip().lower()
    recommended = _RECOMMENDED.get(lowered) if settings.useEcommerceRecommendedEvents else None
    if event.get("type") == "track" and recommended is not None:
        properties = _ecommerce(event, *recommended)
        item = {"name": recommended[0], "time": _time(event), "properties": properties}
        return _track_requests(settings, attributes, [_app(event, item | who)], [])
    if event.get("type") == "track" and lowered == "order completed":
        return _track_requests(settings, attributes, [], _purchases(event, settings, who))
    properties = segment.properties(event)
    properties = {k: v for k, v in properties.items() if k not in _RESERVED_PROPERTIES}
    item = {"name": name, "time": _time(event), "properties": properties} | who
    return _track_requests(settings, attributes, [_app(event, item)], [])


def _app(event: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
    app_id = segment.text(segment.integration(event, "Braze").get("appId"))
    return item if app_id is None else {**item, "app_id": app_id}


def _page(event: dict[str, Any], settings: BrazeSettings) -> list[Request]:
    default = "Page Viewed" if event.get("type") == "page" else "Screen Viewed"
    name = segment.text(event.get("name")) or segment.text(segment.properties(event).get("name"))
    return _custom(event, settings, name or default)


def _purchases(
    event: dict[str, Any], settings: BrazeSettings, who: dict[str, Any]
) -> list[dict[str, Any]]:
    properties = segment.properties(event)
    products = properties.get("products")
    if not isinstance(products, list):
        raise Unsendable("an Order Completed call needs properties.products, a list")
    products = [p for p in products if p is not None]
    if not products:
        raise Unsendable("an Order Completed call's properties.products is empty")
    time, currency = _time(event), properties.get("currency")
    return [_purchase(segment.mapping(p), n, currency, time, settings) | who
            for n, p in enumerate(products)]  # fmt: skip


def _purchase(
    product: dict[str, Any], n: int, currency: Any, time: str, settings: BrazeSettings
) -> dict[str, Any]:
    product_id = segment.text(product.get("product_id")) or segment.text(product.get("sku"))
    price, quantity = segment.number(product.get("price")), segment.number(product.get("quantity"))
    currency = segment.text(currency) or segment.text(product.get("currency"))
    missing = [
        name
        for name, value in (("product_id (or sku)", product_id), ("a numeric price", price),
                            ("a numeric quantity", quantity), ("a currency", currency))
        if value is None
    ]  # fmt: skip
    if missing:
        raise Unsendable(f"product {n} of the order has no {', '.join(missing)}")
    raw = product.get("price")
    purchase: dict[str, Any] = {
        "product_id": product_id,
        "price": raw if isinstance(raw, int | Raw) and not isinstance(raw, bool) else price,
        "currency": currency,
        "quantity": int(quantity or 0),
        "time": time,
    }
    extra = {k: v for k, v in product.items() if k not in _PURCHASE_FIELDS}
    if extra and settings.sendPurchaseEventWithExtraProperties:
        purchase["properties"] = extra
    return purchase


# ---------------------------------------------------------------------------------------------
# Braze's recommended e-commerce events

_Kind = Literal["String", "Float", "Integer", "Array"]
_Field = tuple[str, tuple[str, ...], _Kind]
_TOTAL: _Field = ("total_value", ("total", "revenue", "value"), "Float")
_CURRENCY: _Field = ("currency", ("currency",), "String")
_TAX: _Field = ("tax", ("tax",), "Float")
_SHIPPING: _Field = ("shipping", ("shipping",), "Float")
_SUBTOTAL: _Field = ("subtotal_value", ("subtotal_value",), "Float")
_CART: _Field = ("cart_id", ("cart_id",), "String")
_ORDER: _Field = ("order_id", ("order_id",), "String")
_DISCOUNTS: tuple[_Field, ...] = (
    ("total_discounts", ("discount", "total_discounts"), "Float"),
    ("discounts", ("discounts",), "Array"),
)
_PRODUCT: tuple[_Field, ...] = (
    ("product_id", ("product_id", "sku"), "String"),
    ("product_name", ("name",), "String"),
    ("variant_id", ("variant", "sku", "product_id"), "String"),
    ("quantity", ("quantity",), "Integer"),
    ("price", ("price",), "Float"),
    ("image_url", ("image_url",), "String"),
    ("product_url", ("url",), "String"),
)
# What an order placed or cancelled says of its amounts, in Braze's order.
_CANCEL: _Field = ("cancel_reason", ("cancel_reason", "reason"), "String")
_ORDER_AMOUNTS = (_TAX, _SHIPPING, _DISCOUNTS[0], _SUBTOTAL, _DISCOUNTS[1])
_VIEWED: tuple[_Field, ...] = (
    *(f for f in _PRODUCT if f[0] != "quantity"),
    _CURRENCY,
    ("type", ("type",), "Array"),
)
# Braze event → its fields (from the event's properties), and whether it lists products.
_ECOMMERCE: dict[str, tuple[tuple[_Field, ...], bool]] = {
    "ecommerce.product_viewed": (_VIEWED, False),
    "ecommerce.cart_updated": ((_CART, _TOTAL, _SUBTOTAL, _TAX, _SHIPPING, _CURRENCY), True),
    "ecommerce.checkout_started": (
        (
            ("checkout_id", ("checkout_id", "order_id"), "String"),
            _CART,
            _TOTAL,
            _SUBTOTAL,
            _TAX,
            _SHIPPING,
            _CURRENCY,
        ),
        True,
    ),
    "ecommerce.order_placed": ((_ORDER, _TOTAL, _CURRENCY, _CART, *_ORDER_AMOUNTS), True),
    "ecommerce.order_refunded": ((_ORDER, _TOTAL, _CURRENCY, *_DISCOUNTS), True),
    "ecommerce.order_cancelled": ((_ORDER, _TOTAL, _CURRENCY, _CANCEL, *_ORDER_AMOUNTS), True),
}
# Segment e-commerce event (lower case) → Braze's event and cart action.
_RECOMMENDED: dict[str, tuple[str, str | None]] = {
    "product viewed": ("ecommerce.product_viewed", None),
    "product added": ("ecommerce.cart_updated", "add"),
    "product removed": ("ecommerce.cart_updated", "remove"),
    "checkout started": ("ecommerce.checkout_started", None),
    "order completed": ("ecommerce.order_placed", None),
    "order refunded": ("ecommerce.order_refunded", None),
    "order cancelled": ("ecommerce.order_cancelled", None),
}
_SOURCES = frozenset({"web", "ios", "android"})


def _coerced(value: Any, kind: _Kind) -> Any:
    """A value as the type Braze declares for the field, where that loses nothing."""
    if kind == "Float" and isinstance(value, str) and value.strip():
        number = segment.number(value.strip())
        return value if number is None else number
    if kind == "Integer" and isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        return int(value)
    if kind == "String" and not isinstance(value, bool) and isinstance(value, int | float | Raw):
        return segment.text(value)
    return value


def _fields(source: dict[str, Any], fields: Sequence[_Field]) -> dict[str, Any]:
    found = {}
    for name, keys, kind in fields:
        value = next((source[k] for k in keys if _given(source.get(k))), None)
        if value is not None:
            found[name] = _coerced(value, kind)
    return found


def _scrubbed(value: Any) -> Any:
    """Without null, empty text, empty objects and lists, at any depth (0 and false stay)."""
    if isinstance(value, dict):
        kept = {k: _scrubbed(v) for k, v in value.items()}
        return {k: v for k, v in kept.items() if v is not None and v != "" and v != {} and v != []}
    if isinstance(value, list):
        items = [_scrubbed(v) for v in value]
        return [v for v in items if v is not None and v != "" and v != {} and v != []]
    return value


def _ecommerce(event: dict[str, Any], name: str, action: str | None) -> dict[str, Any]:
    properties = segment.properties(event)
    fields, listed = _ECOMMERCE[name]
    payload = _fields(properties, fields)
    used = {"source", *(k for _, keys, _ in fields for k in keys)}
    products = properties.get("products")
    if listed:
        used.add("products")
        if isinstance(products, list):
            payload["products"] = [_product(segment.mapping(p)) for p in products]
        else:  # a cart update about one product: the product's fields are the event's
            payload["products"] = [_fields(properties, _PRODUCT)]
            used |= {k for _, keys, _ in _PRODUCT for k in keys}
    payload["source"] = _source(event)
    if action is not None:
        payload["action"] = action
        used.add("action")
    metadata = {k: v for k, v in properties.items()
                if k not in used and k not in _RESERVED_PROPERTIES}  # fmt: skip
    payload["metadata"] = metadata
    scrubbed: dict[str, Any] = _scrubbed(payload)
    return scrubbed


def _product(product: dict[str, Any]) -> dict[str, Any]:
    found = _fields(product, _PRODUCT)
    used = {k for _, keys, _ in _PRODUCT for k in keys}
    found["metadata"] = {k: v for k, v in product.items() if k not in used}
    return found


def _source(event: dict[str, Any]) -> str:
    """Where the event comes from, in Braze's words: web, ios or android."""
    given = str(segment.text(segment.properties(event).get("source")) or "").strip().lower()
    if given in _SOURCES:
        return given
    context = segment.context(event)
    channel = str(segment.text(context.get("channel") or event.get("channel")) or "").lower()
    if channel == "mobile":
        os = str(segment.text(segment.mapping(context.get("os")).get("name")) or "").lower()
        return "ios" if "ios" in os else "android" if "android" in os else "web"
    return "web"


# ---------------------------------------------------------------------------------------------
# group, alias


def _group(event: dict[str, Any], settings: BrazeSettings) -> list[Request]:
    group = segment.text(event.get("groupId")) or segment.text(segment.traits(event).get("groupId"))
    if group is None:
        raise Unsendable("a group call needs a groupId")
    if not settings.enableSubscriptionGroupInGroupCall:
        attributes = {f"ab_rudder_group_{group}": True} | _who(event)
        return _track_requests(settings, attributes, [], [])
    traits = segment.mapping(event.get("traits"))
    state = traits.get("subscriptionState")
    if state not in ("subscribed", "unsubscribed"):
        raise Unsendable("traits.subscriptionState must be subscribed or unsubscribed")
    phone, email = segment.text(traits.get("phone")), segment.text(traits.get("email"))
    if phone is None and email is None:
        raise Unsendable("a subscription group call needs traits.phone or traits.email")
    entry: dict[str, Any] = {"subscription_group_id": group, "subscription_state": state}
    if (external := _external_id(event)) is not None:
        entry["external_ids"] = [external]
    if phone is not None:
        entry["phones"] = [phone]
    else:
        entry["emails"] = [email]
    return [_request(settings, SUBSCRIPTION, {"subscription_groups": [entry]})]


def _merge(event: dict[str, Any], settings: BrazeSettings) -> list[Request]:
    if segment.user_id(event) is None:
        raise Unsendable("[BRAZE]: userId is required for alias call")
    previous = segment.text(event.get("previousId"))
    if previous is None:
        raise Unsendable("[BRAZE]: previousId is required for alias call")
    update = {
        "identifier_to_merge": {"external_id": previous},
        "identifier_to_keep": {"external_id": segment.user_id(event)},
    }
    return [_request(settings, MERGE, {"merge_updates": [update]})]


_CALLS: dict[str, Callable[[dict[str, Any], BrazeSettings], list[Request]]] = {
    "identify": _identify,
    "track": _track,
    "page": _page,
    "screen": _page,
    "group": _group,
    "alias": _merge,
}


def map_event(event: dict[str, Any], settings: BrazeSettings, now: datetime) -> list[Request]:
    call = for_call(event, _CALLS)
    return call(event, settings)


# ---------------------------------------------------------------------------------------------
# The alias merge, made when the identify is sent


async def resolve(request: Request, settings: BrazeSettings, lookups: Lookups) -> Request:
    """The identify's request without its merge hints, once the merge they ask for was made
    (or failed: it is best effort, and logged)."""
    hints = request.hints
    if not hints:
        return request
    bare = msgspec.structs.replace(request, hints={})
    alias = {"alias_name": hints.get("alias_name", ""), "alias_label": hints.get("alias_label", "")}
    wanted = {"external_id": hints.get("external_id", ""), "user_alias": alias}
    body = {"aliases_to_identify": [wanted], "merge_behavior": "merge"}
    root = request.url.removesuffix(TRACK)
    merge = Request("POST", f"{root}{IDENTIFY}", dict(request.headers), body=body)
    try:
        looked = await lookups.ask(merge, keep=MERGE_KEPT, writes=True)
    except LookupFailed as exc:
        log.warning("Braze: alias %r not merged into %r: %s", alias["alias_name"],
                    wanted["external_id"], exc)  # fmt: skip
        return bare
    answer = segment.mapping(looked.body)
    if not 200 <= looked.status < 300 or answer.get("errors"):
        said = _message(answer) or _errors_text(answer) or f"HTTP {looked.status}"
        log.warning("Braze: alias %r not merged into %r: HTTP %s: %s", alias["alias_name"],
                    wanted["external_id"], looked.status, said)  # fmt: skip
    return bare


# ---------------------------------------------------------------------------------------------
# Batching


def batch_key(request: Request) -> str | None:
    """Requests to one endpoint with one key combine; a track request that brings more than
    `PER_JOB` objects to an array (a large order) goes alone, so that 25 jobs stay within
    Braze's 75 objects per array."""
    path = _path(request.url)
    if path is None:
        return None
    body = segment.mapping(request.body)
    if path == TRACK and any(len(body.get(name) or ()) > PER_JOB for name in ARRAYS):
        return None
    return f"{request.url} {request.headers.get('Authorization', '')}"


def combine(requests: Sequence[Request]) -> Request:
    first = requests[0]
    path = _path(first.url)
    bodies = [segment.mapping(request.body) for request in requests]
    body: dict[str, Any]
    if path == SUBSCRIPTION:
        body = {"subscription_groups": _subscriptions(bodies)}
    else:
        names = LISTED.get(path or "", ())
        body = {name: items for name in names if (items := _joined(bodies, name))}
    return Request(first.method, first.url, first.headers, body=body)


def _joined(bodies: Sequence[dict[str, Any]], name: str) -> list[Any]:
    return [item for body in bodies for item in (body.get(name) or ())]


def _subscriptions(bodies: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Subscription entries merged by group and state (ids unioned, in order)."""
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    for body in bodies:
        for entry in body.get("subscription_groups") or ():
            key = (str(entry.get("subscription_group_id")), str(entry.get("subscription_state")))
            named = ("subscription_group_id", "subscription_state")
            found = merged.setdefault(key, {k: entry[k] for k in named})
            for ids in ("emails", "phones", "external_ids"):
                for value in entry.get(ids) or ():
                    listed = found.setdefault(ids, [])
                    if value not in listed:
                        listed.append(value)
    return list(merged.values())


def _owners(sent: Sequence[Request]) -> dict[str, list[tuple[int, int]]]:
    """For each array of a combined /users/track body, per position: the job whose object is
    there, and the object's place in the job's own request."""
    bodies = [segment.mapping(request.body) for request in sent]
    return {
        name: [
            (job, n) for job, body in enumerate(bodies) for n, _ in enumerate(body.get(name) or ())
        ]
        for name in ARRAYS
    }


# ---------------------------------------------------------------------------------------------
# Answers


def classify(status: int, body: bytes, sent: Sequence[Request]) -> Verdict | Sequence[Judgement]:
    """Braze names the objects it refused by their array and place in the request, which the
    jobs fill unevenly: each job is judged by the objects it brought."""
    answer = segment.mapping(json_answer(body))
    if 200 <= status < 300:
        if answer.get("message") != "success":
            said = _message(answer) or "Braze's answer does not say success"
            return [Judgement(Verdict.ABORT, said)] * len(sent)
        errors = answer.get("errors")
        on_track = bool(sent) and _path(sent[0].url) == TRACK
        if not on_track or not isinstance(errors, list) or not errors:
            return Verdict.DELIVERED  # (other endpoints' errors refuse nothing: see above)
        return _partial(errors, sent)
    if status in (413, 429) or 500 <= status < 600:
        return Verdict.RETRY
    reason = _message(answer)
    if reason is None or (status in SPLIT_ON and len(sent) > 1):
        return Verdict.ABORT  # (a whole verdict: the router splits a batch refused so)
    return [Judgement(Verdict.ABORT, reason)] * len(sent)


def _partial(errors: list[Any], sent: Sequence[Request]) -> Verdict | list[Judgement]:
    owners = _owners(sent)
    refused: dict[int, dict[tuple[str, int], str]] = {}
    for error in errors:
        error = segment.mapping(error)
        array, index = segment.text(error.get("input_array")) or "", error.get("index")
        placed = owners.get(array, [])
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(placed):
            continue  # an object we cannot place: the rest of the request was taken
        job, own = placed[index]
        kind = segment.text(error.get("type")) or "refused"
        refused.setdefault(job, {}).setdefault((array, own), kind)  # (Braze's first word)
    if not refused:
        return Verdict.DELIVERED
    return [_refusal(refused[job], request) if job in refused else Judgement(Verdict.DELIVERED)
            for job, request in enumerate(sent)]  # fmt: skip


def _refusal(objects: dict[tuple[str, int], str], request: Request) -> Judgement:
    """A job some of whose objects Braze refused: which, why, and whether it took the others
    (sending the job again repeats those: the user should know)."""
    why = "Braze refused " + "; ".join(f"{a}[{n}]: {kind}" for (a, n), kind in objects.items())
    body = segment.mapping(request.body)
    taken = sum(len(body.get(name) or ()) for name in ARRAYS) - len(objects)
    if taken > 0:
        why += f" (its {taken} other object(s) were processed)"
    return Judgement(Verdict.ABORT, why[:_REASON])


def _message(answer: Any) -> str | None:
    if isinstance(answer, dict) and (said := segment.text(answer.get("message"))):
        return said[:_REASON]
    return None


def _errors_text(answer: dict[str, Any]) -> str | None:
    errors = answer.get("errors")
    first = segment.mapping(errors[0]) if isinstance(errors, list) and errors else {}
    return segment.text(first.get("type"))


BRAZE = DestinationType(
    name="braze",
    title="Braze",
    category="Marketing",
    description="Customer engagement: user attributes, custom events and purchases.",
    settings=BrazeSettings,
    map=map_event,
    supported_types=frozenset(_CALLS),
    secret_keys=("restApiKey",),
    help=HELP,
    batch_size=MAX_JOBS,
    batch_bytes=BATCH_BYTES,
    batch_key=batch_key,
    combine=combine,
    split_on=SPLIT_ON,
    classify_sent=classify,
    resolve=resolve,
)
