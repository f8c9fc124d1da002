"""Iterable: users, events and commerce through Iterable's REST API, users and events in bulk
(RudderStack's `iterable` keys).

Hosts: `https://api.iterable.com` (`dataCenter: USDC`, the default) or
`https://api.eu.iterable.com` (`EUDC`), or the `endpoint` setting; every path is under `/api/`.
Auth: the `api_key` header, the project's server-side key (`apiKey`); device and browser token
registrations use `registerDeviceOrBrowserApiKey` instead (a mobile or JavaScript key of the
same project), and are only sent when that key is set.

Who: `userId` is `userId`, else the traits' `userId`/`id`, else `anonymousId` (RudderStack's
order, so users made through RudderStack stay the same); `email` is the traits' email (track
and page: `properties.email`, else `context.traits.email`). A call with neither cannot be sent.
`preferUserId` and `mergeNestedObjects` (both on by default) go with each user update.

* identify → `users/update {email, userId, dataFields: traits, preferUserId,
  mergeNestedObjects}`. A reverse-ETL identify (`context.mappedToDestination`) adds its
  external id to the traits under its identifier type; one meant for a catalog (an external id
  type other than `ITERABLE-users`) is refused. With `context.device.token` (else
  `context.os.token`) and the token key set, a second request registers the token:
  `users/registerDeviceToken {email, userId, preferUserId, device: {token, platform: APNS for
  Apple systems, else GCM, applicationName: device.name}}` or `users/registerBrowserToken
  {browserToken, email, userId}`; it waits for the update (per-user order).
* track → `events/track {email, userId, eventName, createdAt (ms), dataFields: properties,
  id, campaignId, templateId}` (campaign and template ids as integers). A track without a name
  is refused (Iterable requires one). By name, any case: `Order Completed` →
  `commerce/trackPurchase {id: order_id (orderId, event_id, the event id), total, items, user,
  createdAt,
  dataFields, campaignId, templateId}`; `Product Added` / `Product Removed` →
  `commerce/updateCart {user, items}`. Items are `properties.products` (else the properties as
  one item): `{id: product_id, sku, name, description, categories (a comma-separated category
  split), price, quantity, imageUrl: image_url, url, dataFields: properties}`, each needing id,
  name, a numeric price and quantity; `user` is the identify update.
* page / screen → `events/track` named `<name> page` / `<name> screen` (a nameless one keeps
  RudderStack's `undefined page`, so that Iterable journeys built on that name keep firing), or
  `Loaded a Page` / `Loaded a Screen` with `mapToSingleEvent`; sent when `trackAllPages` is on,
  or `trackCategorisedPages` and the page has a category, or `trackNamedPages` and it has a
  name; otherwise refused. `name` is the call's name, else `properties.name`.
* alias → `users/updateEmail {currentEmail: previousId, newEmail: userId}`, both required.
* group: not taken (filtered).

`createdAt` is the event's `timestamp`, else `originalTimestamp`, else the gateway's
`receivedAt` (RudderStack prefers a `createdAt` trait, the user's sign-up date, which would
date every event of the user at their sign-up).

Dedup: Iterable documents `id` on `events/track` (and each event of `events/trackBulk`) and on
`commerce/trackPurchase`: an event (a purchase) with the id of one it has is updated, not
added; at most 512 bytes. Events (track, page, screen) carry `properties.event_id` when given
(RudderStack's choice, the sender's own id), else an id from the messageId: the messageId
itself, or, over 512 bytes, `sha256:` and the hex SHA-256 of it; a purchase its order id, else
that event id. An event without either has none (Iterable makes one). So an event Sluice sends
again (a lost answer, a crash, a replay from `sluice failed`) updates the one Iterable has.
`commerce/updateCart` documents no id (it sets the cart, so a repeat changes nothing); user
updates and token registrations are idempotent.

Batching: requests to the same endpoint with the same key combine, `users/update` bodies into
`users/bulkUpdate {users: [...]}` and `events/track` bodies into `events/trackBulk {events:
[...]}`, up to 1000 items and 4 MB of stored requests (Iterable's request limit for every
endpoint, which also refuses a single request above it here); commerce, alias and token calls
go one by one. Iterable's limits per key: bulkUpdate 5 requests/s, trackBulk 10/s, users/update
500/s, events/track 2000/s (for the destination's `rate_limit`).

Answers: a 2xx from a bulk endpoint is a partial success when it lists refused users or events
(`invalidEmails`, `invalidUserIds`, `failedUpdates.{invalid,notFound,forgotten,conflict,
invalidData}{Emails,UserIds}`, `disallowedEventNames`): the items whose email, userId or event
name is listed are refused, with the list that names them, the others were taken (Iterable
names items, not positions: the items of the bulk request are noted when it is combined, for
reading its answer). Any other 2xx is delivered; 413 (the router splits the batch), 429
(`RateLimitExceeded`) and 5xx are retried; other answers (400 `BadParams`,
`InvalidEmailAddressError`, 401 `BadApiKey`, …) refuse the request, with Iterable's code and
message.
"""

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
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
    for_call,
    json_answer,
)

HOSTS = {"USDC": "https://api.iterable.com", "EUDC": "https://api.eu.iterable.com"}
MAX_ITEMS = 1000
MAX_BYTES = 4_000_000  # Iterable's limit for a request body, on every endpoint
# A single endpoint whose requests combine: its bulk endpoint, and the field listing the items.
BULK = {
    "/api/users/update": ("/api/users/bulkUpdate", "users"),
    "/api/events/track": ("/api/events/trackBulk", "events"),
}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_ID_BYTES = 512  # Iterable's limit for an event's or a purchase's id
_APPLE = frozenset({"ios", "ipados", "tvos", "watchos"})
_REASON = 300  # characters of Iterable's message kept as a reason
_USER_IDS = (
    "userId",
    "traits.userId",
    "traits.id",
    "context.traits.userId",
    "context.traits.id",
    "anonymousId",
)
# Where a bulk answer lists the users it refused (RudderStack reads the same lists).
_REFUSED_USER_IDS = (
    "invalidUserIds",
    "failedUpdates.invalidUserIds",
    "failedUpdates.notFoundUserIds",
    "failedUpdates.forgottenUserIds",
    "failedUpdates.conflictUserIds",
    "failedUpdates.invalidDataUserIds",
)
_REFUSED_EMAILS = (
    "invalidEmails",
    "failedUpdates.invalidEmails",
    "failedUpdates.notFoundEmails",
    "failedUpdates.forgottenEmails",
    "failedUpdates.conflictEmails",
    "failedUpdates.invalidDataEmails",
)

HELP = {
    "apiKey": "A server-side API key of the Iterable project (Integrations → API keys).",
    "dataCenter": "Where the project lives: USDC (api.iterable.com) or EUDC (api.eu.iterable.com).",
    "registerDeviceOrBrowserApiKey": "A mobile or JavaScript API key: identifies with a "
    "device or browser push token also register it. Empty: tokens are not registered.",
    "preferUserId": "Create users by userId when they have no email (Iterable's preferUserId).",
    "mergeNestedObjects": "Merge nested objects into the user's fields instead of replacing "
    "them (Iterable's mergeNestedObjects).",
    "trackAllPages": "Send every page and screen call as an event named '<name> page' or "
    "'<name> screen'.",
    "trackCategorisedPages": "With trackAllPages off: send page and screen calls that have a "
    "category.",
    "trackNamedPages": "With trackAllPages off: send page and screen calls that have a name.",
    "mapToSingleEvent": "Name every page event 'Loaded a Page' and every screen event 'Loaded a "
    "Screen', the page's name in its fields.",
    "endpoint": "Replaces https://api.iterable.com (a proxy, a test server); paths stay under "
    "/api/.",
}


class IterableSettings(msgspec.Struct):
    apiKey: str
    dataCenter: Literal["USDC", "EUDC"] | None = "USDC"
    registerDeviceOrBrowserApiKey: str | None = None
    preferUserId: bool = True
    mergeNestedObjects: bool = True
    trackAllPages: bool = True
    trackCategorisedPages: bool = False
    trackNamedPages: bool = False
    mapToSingleEvent: bool = False
    endpoint: str | None = None

    def __post_init__(self) -> None:
        self.apiKey = self.apiKey.strip()
        if not self.apiKey:
            raise ValueError("apiKey is empty: copy a server-side API key from Iterable")
        self.registerDeviceOrBrowserApiKey = (self.registerDeviceOrBrowserApiKey or "").strip()
        for name in ("apiKey", "registerDeviceOrBrowserApiKey"):
            if any(c.isspace() or not c.isprintable() for c in getattr(self, name)):
                raise ValueError(f"{name} contains spaces: copy the API key exactly")
        check_endpoint(self.endpoint)

    @property
    def base(self) -> str:
        return base_url(self.endpoint, HOSTS[self.dataCenter or "USDC"])


def _request(settings: IterableSettings, path: str, body: dict[str, Any], key: str) -> Request:
    if len(codec.encode(body)) > MAX_BYTES:
        raise Unsendable(f"the request would be over Iterable's {MAX_BYTES:,} bytes")
    headers = {"Content-Type": "application/json", "api_key": key}
    return Request("POST", f"{settings.base}/api/{path}", headers, {}, body)


# ---------------------------------------------------------------------------------------------
# Reading the event


def _given(value: Any) -> bool:
    """Whether a value counts as given (RudderStack's rule: 0 and false do, null and "" not)."""
    return value is not None and value != "" and value != {} and value != []


def _text(node: dict[str, Any], *paths: str) -> str | None:
    for path in paths:
        if (value := segment.text(segment.dig(node, path))) is not None:
            return value
    return None


def _user_id(event: dict[str, Any]) -> str | None:
    return _text(event, *_USER_IDS)


def _traits(event: dict[str, Any]) -> dict[str, Any]:
    """The user's traits; a reverse-ETL identify's external id among them (RudderStack's way)."""
    traits = dict(segment.traits(event))
    context = segment.context(event)
    if event.get("type") != "identify" or not context.get("mappedToDestination"):
        return traits
    entries = context.get("externalId")
    entries = entries if isinstance(entries, list) else [entries]
    for entry in entries:
        kind = segment.text(entry.get("type")) if isinstance(entry, dict) else None
        if kind is not None and kind.startswith("ITERABLE-") and kind != "ITERABLE-users":
            raise Unsendable(
                f"{kind[:60]!r}: reverse-ETL syncs to Iterable catalogs are not supported, "
                "only to users (ITERABLE-users)"
            )
    first = entries[0] if entries and isinstance(entries[0], dict) else {}
    name, value = segment.text(first.get("identifierType")), first.get("id")
    if name is not None and _given(value):
        traits[name] = value
    return traits


def _who(email: str | None, user_id: str | None) -> dict[str, Any]:
    if email is None and user_id is None:
        raise Unsendable("userId or email is mandatory for this request")
    who: dict[str, Any] = {}
    if email is not None:
        who["email"] = email
    if user_id is not None:
        who["userId"] = user_id
    return who


def _user(event: dict[str, Any], settings: IterableSettings) -> dict[str, Any]:
    """The user update an identify makes (and commerce calls carry as `user`)."""
    traits = _traits(event)
    email = segment.text(traits.get("email")) or _text(event, "context.traits.email")
    user = _who(email, _user_id(event))
    if traits:
        user["dataFields"] = traits
    user["preferUserId"] = settings.preferUserId
    user["mergeNestedObjects"] = settings.mergeNestedObjects
    return user


def _created_at(event: dict[str, Any]) -> int | None:
    """When the event happened (ms): its time, else when the gateway received it."""
    when = segment.event_time(event) or segment.event_time({"timestamp": event.get("receivedAt")})
    return None if when is None else (when - _EPOCH) // timedelta(milliseconds=1)


def _integer(value: Any) -> int | None:
    """A campaign or template id as Iterable takes it: an integer (numeric text read as one)."""
    if not _given(value) or value == 0 or value is False:
        return None
    number = segment.number(value)
    return None if number is None else int(number)


def _number(value: Any) -> int | float | Raw | None:
    """A price or total: a number as sent, numeric text as a number."""
    number = segment.number(value)
    if number is None:
        return None
    if isinstance(value, int | Raw) and not isinstance(value, bool):
        return value
    return int(number) if isinstance(number, float) and number.is_integer() else number


def event_id(event: dict[str, Any]) -> str | None:
    """Iterable's id for an event, the same for every copy of it: the messageId, or its digest
    when longer than Iterable takes; None without a messageId."""
    message_id = segment.text(event.get("messageId"))
    if message_id is None or len(message_id.encode()) <= MAX_ID_BYTES:
        return message_id
    return "sha256:" + hashlib.sha256(message_id.encode()).hexdigest()


def _with_id(body: dict[str, Any], *ids: str | None) -> dict[str, Any]:
    """The body with the first of `ids` given as its `id` (none if none is)."""
    found = next((i for i in ids if i is not None), None)
    if found is not None:
        body["id"] = found
    return body


def _event_fields(event: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    """What events and purchases share: dataFields, createdAt, campaign and template ids."""
    properties = segment.properties(event)
    if properties:
        body["dataFields"] = properties
    if (created := _created_at(event)) is not None:
        body["createdAt"] = created
    for name in ("campaignId", "templateId"):
        if (number := _integer(properties.get(name))) is not None:
            body[name] = number
    return body


# ---------------------------------------------------------------------------------------------
# Calls


def _identify(event: dict[str, Any], settings: IterableSettings) -> list[Request]:
    user = _user(event, settings)
    requests = [_request(settings, "users/update", user, settings.apiKey)]
    token = _token(event, settings, user)
    return requests if token is None else [*requests, token]


def _token(
    event: dict[str, Any], settings: IterableSettings, user: dict[str, Any]
) -> Request | None:
    """The device or browser token registration an identify carries, if any."""
    key = settings.registerDeviceOrBrowserApiKey
    if not key:
        return None
    context = segment.context(event)
    device, os = segment.mapping(context.get("device")), segment.mapping(context.get("os"))
    who: dict[str, Any] = {k: user[k] for k in ("email", "userId") if k in user}
    if (token := segment.text(device.get("token"))) is not None:
        kind = segment.text(device.get("type")) or ""
        registered: dict[str, Any] = {"token": token}
        if (name := segment.text(device.get("name"))) is not None:
            registered["applicationName"] = name
        if properties := segment.properties(event):
            registered["dataFields"] = properties
        registered["platform"] = "APNS" if kind.lower() in _APPLE else "GCM"
        body: dict[str, Any] = {**who, "preferUserId": settings.preferUserId}
        body["device"] = registered
        return _request(settings, "users/registerDeviceToken", body, key)
    if (token := segment.text(os.get("token"))) is not None:
        return _request(settings, "users/registerBrowserToken", {"browserToken": token, **who}, key)
    return None


def _track(event: dict[str, Any], settings: IterableSettings) -> list[Request]:
    name = segment.text(event.get("event"))
    if name is None or not name.strip():
        raise Unsendable("a track call needs an event name")
    lowered = name.lower()
    if lowered == "order completed":
        return [_purchase(event, settings)]
    if lowered in ("product added", "product removed"):
        body = {"user": _user(event, settings), "items": _items(event)}
        return [_request(settings, "commerce/updateCart", body, settings.apiKey)]
    body = _activity(event)
    body["eventName"] = name
    _with_id(body, segment.text(segment.properties(event).get("event_id")), event_id(event))
    return [_request(settings, "events/track", _event_fields(event, body), settings.apiKey)]


def _activity(event: dict[str, Any]) -> dict[str, Any]:
    """Who a track, page or screen event is about."""
    return _who(_text(event, "properties.email", "context.traits.email"), _user_id(event))


def _purchase(event: dict[str, Any], settings: IterableSettings) -> Request:
    properties = segment.properties(event)
    total = _number(properties.get("total"))
    if total is None:
        raise Unsendable("an Order Completed call needs a numeric properties.total")
    body: dict[str, Any] = {"user": _user(event, settings)}
    _with_id(body, _text(properties, "order_id", "orderId", "event_id"), event_id(event))
    body |= {"total": total, "items": _items(event)}
    return _request(settings, "commerce/trackPurchase", _event_fields(event, body), settings.apiKey)


def _items(event: dict[str, Any]) -> list[dict[str, Any]]:
    properties = segment.properties(event)
    products = properties.get("products")
    listed = products if isinstance(products, list) else [properties]
    return [_item(segment.mapping(product), n) for n, product in enumerate(listed, 1)]


def _item(product: dict[str, Any], n: int) -> dict[str, Any]:
    """A commerce item; Iterable requires its id, name, price and quantity."""
    item: dict[str, Any] = {}
    for field, source in (("id", "product_id"), ("sku", "sku"), ("name", "name")):
        if (value := segment.text(product.get(source))) is not None:
            item[field] = value
    if (description := segment.text(product.get("description"))) is not None:
        item["description"] = description
    category = product.get("category")
    if isinstance(category, str) and category:
        item["categories"] = category.split(",")
    elif isinstance(category, list):
        item["categories"] = [t for c in category if (t := segment.text(c)) is not None]
    elif (single := segment.text(category)) is not None:
        item["categories"] = [single]
    item["price"] = _number(product.get("price"))
    quantity = segment.number(product.get("quantity"))
    item["quantity"] = None if quantity is None else int(quantity)
    for field, source in (("imageUrl", "image_url"), ("url", "url")):
        if (value := segment.text(product.get(source))) is not None:
            item[field] = value
    if isinstance(fields := product.get("properties"), dict) and fields:
        item["dataFields"] = fields
    missing = [f for f in ("id", "name", "price", "quantity") if item.get(f) is None]
    if missing:
        raise Unsendable(
            f"product {n} has no {', '.join(missing)} (Iterable needs product_id, name, and a "
            "numeric price and quantity)"
        )
    return item


def _page(event: dict[str, Any], settings: IterableSettings) -> list[Request]:
    kind = "page" if event.get("type") == "page" else "screen"
    properties = segment.properties(event)
    name = _text(event, "name", "properties.name")
    category = _given(properties.get("category")) or _given(event.get("category"))
    if not (
        settings.trackAllPages
        or (settings.trackCategorisedPages and category)
        or (settings.trackNamedPages and name is not None)
    ):
        raise Unsendable(
            f"{kind} calls are not sent: trackAllPages is off and this {kind} has no category "
            "(trackCategorisedPages) or name (trackNamedPages) that the settings send"
        )
    body = _activity(event)
    if settings.mapToSingleEvent:
        body["eventName"] = f"Loaded a {kind.capitalize()}"
    else:
        # A nameless page keeps the name RudderStack gives it: Iterable workflows built on it.
        body["eventName"] = f"{name or 'undefined'} {kind}"
    _with_id(body, event_id(event))
    return [_request(settings, "events/track", _event_fields(event, body), settings.apiKey)]


def _alias(event: dict[str, Any], settings: IterableSettings) -> list[Request]:
    current, new = segment.text(event.get("previousId")), segment.user_id(event)
    if current is None or new is None:
        raise Unsendable(
            "an alias call needs previousId (the current email) and userId (the new email)"
        )
    body = {"currentEmail": current, "newEmail": new}
    return [_request(settings, "users/updateEmail", body, settings.apiKey)]


_CALLS: dict[str, Callable[[dict[str, Any], IterableSettings], list[Request]]] = {
    "identify": _identify,
    "track": _track,
    "page": _page,
    "screen": _page,
    "alias": _alias,
}


def map_event(event: dict[str, Any], settings: IterableSettings, now: datetime) -> list[Request]:
    call = for_call(event, _CALLS)
    return call(event, settings)


# ---------------------------------------------------------------------------------------------
# Batching


def _bulk(url: str) -> tuple[str, str] | None:
    """The bulk endpoint a single endpoint's requests combine into, and its items' field."""
    for path, (bulk, field) in BULK.items():
        if url.endswith(path):
            return url[: -len(path)] + bulk, field
    return None


def batch_key(request: Request) -> str | None:
    """User updates combine, and events, when they go with the same key; others go alone."""
    if _bulk(request.url) is None:
        return None
    return f"{request.url} {request.headers.get('api_key', '')}"


@dataclass(frozen=True)
class _Item:
    """What a bulk answer names a refused item by."""

    email: str | None
    user_id: str | None
    event_name: str | None


def combine(requests: Sequence[Request]) -> Request:
    first = requests[0]
    bulk = _bulk(first.url)
    assert bulk is not None  # (only requests with a batch key combine)
    url, field = bulk
    items = [request.body for request in requests]
    return Request("POST", url, first.headers, {}, {field: items})


def _item_of(body: Any) -> _Item:
    body = segment.mapping(body)
    email, user_id, name = (body.get(k) for k in ("email", "userId", "eventName"))
    return _Item(*(v if isinstance(v, str) else None for v in (email, user_id, name)))


# ---------------------------------------------------------------------------------------------
# Answers


def classify(status: int, body: bytes, sent: Sequence[Request]) -> Verdict | Sequence[Judgement]:
    """Iterable names the users and events a bulk request refused by email, userId and event
    name, not by position: each job is judged by what its request carried."""
    answer = json_answer(body)
    if 200 <= status < 300:
        refused = _Refused.read(answer)
        if refused.empty:
            return Verdict.DELIVERED
        return judge(refused, [_item_of(request.body) for request in sent])
    if status in (413, 429) or 500 <= status < 600:
        return Verdict.RETRY
    reason = _reason(answer)
    return Verdict.ABORT if reason is None else [Judgement(Verdict.ABORT, reason)] * len(sent)


@dataclass(frozen=True)
class _Refused:
    """The users and events a bulk answer refused, each with the lists that name it."""

    emails: dict[str, list[str]]
    user_ids: dict[str, list[str]]
    event_names: frozenset[str]

    @property
    def empty(self) -> bool:
        return not (self.emails or self.user_ids or self.event_names)

    @classmethod
    def read(cls, answer: Any) -> "_Refused":
        names = segment.dig(answer, "disallowedEventNames")
        names = names if isinstance(names, list) else []
        return cls(
            _listed(answer, _REFUSED_EMAILS),
            _listed(answer, _REFUSED_USER_IDS),
            frozenset(n for n in names if isinstance(n, str)),
        )

    def why(self, item: _Item) -> str | None:
        reasons = []
        if item.user_id is not None and item.user_id in self.user_ids:
            reasons.append(f"userId {item.user_id!r} in {', '.join(self.user_ids[item.user_id])}")
        if item.email is not None and item.email in self.emails:
            reasons.append(f"email {item.email!r} in {', '.join(self.emails[item.email])}")
        if item.event_name is not None and item.event_name in self.event_names:
            reasons.append(f"eventName {item.event_name!r} in disallowedEventNames")
        return "; ".join(reasons)[:_REASON] or None


def _listed(answer: Any, paths: Sequence[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for path in paths:
        values = segment.dig(answer, path)
        for value in values if isinstance(values, list) else []:
            if isinstance(value, str):
                found.setdefault(value, []).append(path)
    return found


def judge(refused: _Refused, sent: Sequence[_Item]) -> Verdict | list[Judgement]:
    """Each item of a bulk request the vendor took in part: refused if the answer names it."""
    reasons = [refused.why(item) for item in sent]
    if not any(reasons):
        return Verdict.DELIVERED
    return [
        Judgement(Verdict.DELIVERED) if why is None else Judgement(Verdict.ABORT, why)
        for why in reasons
    ]


def _reason(answer: Any) -> str | None:
    """Iterable's words for a refusal: its code and message."""
    if not isinstance(answer, dict):
        return None
    code, message = segment.text(answer.get("code")), segment.text(answer.get("msg"))
    words = ": ".join(w for w in (code, message) if w)
    return words[:_REASON] or None


ITERABLE = DestinationType(
    name="iterable",
    title="Iterable",
    category="Marketing",
    description="Cross-channel marketing: users, events and purchases.",
    settings=IterableSettings,
    map=map_event,
    supported_types=frozenset(_CALLS),
    secret_keys=("apiKey", "registerDeviceOrBrowserApiKey"),
    help=HELP,
    batch_size=MAX_ITEMS,
    batch_bytes=MAX_BYTES,  # stored requests weigh a little more than the bodies they combine
    batch_key=batch_key,
    combine=combine,
    classify_sent=classify,
)
