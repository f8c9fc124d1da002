"""A double of Iterable's REST API (users, events, commerce, tokens), as a `tests.sink.Sink`
behaviour.

Every endpoint is a POST of a JSON object under `/api/`, authenticated by the `api_key` header:
the project's server-side key, or for token registrations the mobile/JavaScript key when one is
given (which key registered a token is recorded). A wrong key is answered 401 `BadApiKey`,
past the rate limit 429 `RateLimitExceeded`, a body over 4 MB 413, a body that is no JSON
object 400 `BadJsonBody`, a malformed one 400 `BadParams` and an invalid email 400
`InvalidEmailAddressError`, each as `{msg, code, params}`; success is 200
`{"msg": "", "code": "Success", "params": null}`.

The bulk endpoints (`users/bulkUpdate {users}`, `events/trackBulk {events}`, 1000 items at
most) refuse a malformed request whole (400), and otherwise take what they can: 200
`{successCount, failCount, invalidEmails, invalidUserIds, failedUpdates{…}, disallowedEventNames}`
naming the users refused for an invalid email, the users the project forgot (`forgotten`:
`failedUpdates.forgottenEmails`/`forgottenUserIds`) and the events of a name the project blocks
(`disallowed`); the others are recorded.

An event or purchase may carry `id` (text of at most 512 bytes, else 400 `BadParams`): one
with the id of an event (a purchase) already recorded replaces it, as Iterable updates it,
rather than being added.
"""

import json
import re
from dataclasses import dataclass, field
from typing import Any

from tests.sink import Answer, Arrival
from tests.vendors import VendorDouble

MAX_BYTES = 4_000_000
MAX_ITEMS = 1000
MAX_ID_BYTES = 512
PLATFORMS = frozenset({"APNS", "APNS_SANDBOX", "GCM"})
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_TOKEN_PATHS = frozenset({"users/registerDeviceToken", "users/registerBrowserToken"})


class Refused(Exception):
    """A request Iterable refuses whole: its answer's status, code and message."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.answer = _answer(status, code, message)


def _answer(status: int, code: str, message: str = "", params: Any = None) -> Answer:
    return Answer.json(status, {"msg": message, "code": code, "params": params})


@dataclass
class IterableDouble(VendorDouble):
    """What Iterable took, per kind: user `updates`, `events`, `purchases`, `carts`,
    `email_changes`, `devices` and `browsers` (each token with the key that registered it);
    `bulk` the number of items of each bulk request that got an answer, by path."""

    api_key: str
    device_key: str | None = None
    forgotten: frozenset[str] = frozenset()  # emails and userIds the project forgot (GDPR)
    disallowed: frozenset[str] = frozenset()  # event names the project blocks
    updates: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    purchases: list[dict[str, Any]] = field(default_factory=list)
    carts: list[dict[str, Any]] = field(default_factory=list)
    email_changes: list[dict[str, Any]] = field(default_factory=list)
    devices: list[dict[str, Any]] = field(default_factory=list)
    browsers: list[dict[str, Any]] = field(default_factory=list)
    bulk: list[tuple[str, int]] = field(default_factory=list)

    def __call__(self, arrival: Arrival) -> Answer:
        if arrival.method != "POST":
            return _answer(405, "MethodNotAllowed", "POST only")
        path = arrival.path.removeprefix("/api/")
        handler = _HANDLERS.get(path)
        if handler is None or not arrival.path.startswith("/api/"):
            return _answer(404, "NotFound", f"no route {arrival.path[:100]}")
        if not self._authorised(arrival, path):
            return _answer(401, "BadApiKey", "Invalid API key", {"endpoint": arrival.path})
        if self.throttled():
            return _answer(429, "RateLimitExceeded", "Rate limit exceeded for this API key")
        if len(arrival.body) > MAX_BYTES:
            return _answer(413, "BadParams", "Request body too large")
        try:
            body = _object(arrival)
            return handler(self, body, arrival.header("api_key"))
        except Refused as refused:
            return refused.answer

    def _authorised(self, arrival: Arrival, path: str) -> bool:
        key = arrival.header("api_key")
        if path in _TOKEN_PATHS and self.device_key is not None:
            return key in (self.device_key, self.api_key)
        return key == self.api_key

    def _keep(self, into: list[dict[str, Any]], item: dict[str, Any]) -> Answer:
        with self._lock:
            _record(into, item)
        return _answer(200, "Success")

    # users

    def _update(self, body: dict[str, Any], key: str) -> Answer:
        _user(body)
        return self._keep(self.updates, body)

    def _bulk_update(self, body: dict[str, Any], key: str) -> Answer:
        users = _items(body, "users")
        for user in users:
            _user(user, check_email=False)
        return self._partly(users, self.updates, "users/bulkUpdate")

    def _update_email(self, body: dict[str, Any], key: str) -> Answer:
        for name in ("currentEmail", "newEmail"):
            _email(body.get(name), name)
        return self._keep(self.email_changes, body)

    def _device(self, body: dict[str, Any], key: str) -> Answer:
        _who(body)
        device = body.get("device")
        if not isinstance(device, dict) or not _text(device.get("token")):
            raise Refused("BadParams", "device.token is required")
        if device.get("platform") not in PLATFORMS:
            raise Refused("BadParams", f"device.platform must be one of {sorted(PLATFORMS)}")
        return self._keep(self.devices, {**body, "key": key})

    def _browser(self, body: dict[str, Any], key: str) -> Answer:
        _who(body)
        if not _text(body.get("browserToken")):
            raise Refused("BadParams", "browserToken is required")
        return self._keep(self.browsers, {**body, "key": key})

    # events

    def _track(self, body: dict[str, Any], key: str) -> Answer:
        _event(body)
        if body["eventName"] in self.disallowed:
            raise Refused("BadParams", f"event name {body['eventName']!r} is not allowed")
        return self._keep(self.events, body)

    def _track_bulk(self, body: dict[str, Any], key: str) -> Answer:
        events = _items(body, "events")
        for event in events:
            _event(event, check_email=False)
        return self._partly(events, self.events, "events/trackBulk")

    # commerce

    def _purchase(self, body: dict[str, Any], key: str) -> Answer:
        _user(body.get("user"))
        _event_id(body)
        _commerce_items(body)
        if not _number(body.get("total")):
            raise Refused("BadParams", "total must be a number")
        return self._keep(self.purchases, body)

    def _cart(self, body: dict[str, Any], key: str) -> Answer:
        _user(body.get("user"))
        _commerce_items(body)
        return self._keep(self.carts, body)

    # partial success

    def _partly(self, items: list[dict[str, Any]], into: list[dict[str, Any]], path: str) -> Answer:
        invalid_emails: list[str] = []
        forgotten_emails: list[str] = []
        forgotten_ids: list[str] = []
        disallowed: list[str] = []
        taken = []
        for item in items:
            email, user_id, name = item.get("email"), item.get("userId"), item.get("eventName")
            if email is not None and not _EMAIL.match(str(email)):
                invalid_emails.append(email)
            elif email in self.forgotten:
                forgotten_emails.append(email)
            elif user_id in self.forgotten:
                forgotten_ids.append(user_id)
            elif name in self.disallowed:
                disallowed.append(name)
            else:
                taken.append(item)
        with self._lock:
            for item in taken:
                _record(into, item)
            self.bulk.append((path, len(items)))
        answer = {
            "successCount": len(taken),
            "failCount": len(items) - len(taken),
            "invalidEmails": invalid_emails,
            "invalidUserIds": [],
            "failedUpdates": {
                "conflictEmails": [],
                "conflictUserIds": [],
                "forgottenEmails": forgotten_emails,
                "forgottenUserIds": forgotten_ids,
                "invalidDataEmails": [],
                "invalidDataUserIds": [],
                "notFoundEmails": [],
                "notFoundUserIds": [],
            },
        }
        if path == "events/trackBulk":
            answer["disallowedEventNames"] = sorted(set(disallowed))
        return Answer.json(200, answer)


_HANDLERS = {
    "users/update": IterableDouble._update,
    "users/bulkUpdate": IterableDouble._bulk_update,
    "users/updateEmail": IterableDouble._update_email,
    "users/registerDeviceToken": IterableDouble._device,
    "users/registerBrowserToken": IterableDouble._browser,
    "events/track": IterableDouble._track,
    "events/trackBulk": IterableDouble._track_bulk,
    "commerce/trackPurchase": IterableDouble._purchase,
    "commerce/updateCart": IterableDouble._cart,
}


def _object(arrival: Arrival) -> dict[str, Any]:
    if not arrival.header("content-type").startswith("application/json"):
        raise Refused("BadJsonBody", "Content-Type must be application/json")
    try:
        body = json.loads(arrival.body)
    except ValueError:
        raise Refused("BadJsonBody", "Could not parse the request body as JSON") from None
    if not isinstance(body, dict):
        raise Refused("BadJsonBody", "The request body must be a JSON object")
    return body


def _text(value: Any) -> bool:
    return isinstance(value, str) and bool(value)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _email(value: Any, name: str) -> None:
    if not isinstance(value, str) or not _EMAIL.match(value):
        raise Refused("InvalidEmailAddressError", f"Invalid email for {name}: {value!r}"[:200])


def _who(body: dict[str, Any], *, check_email: bool = True) -> None:
    """A user is named by an email or a userId (strings); an email must be one."""
    email, user_id = body.get("email"), body.get("userId")
    if email is None and user_id is None:
        raise Refused("BadParams", "Either email or userId must be set")
    for name, value in (("email", email), ("userId", user_id)):
        if value is not None and not isinstance(value, str):
            raise Refused("BadParams", f"{name} must be a string")
    if check_email and email is not None:
        _email(email, "email")


def _user(body: Any, *, check_email: bool = True) -> None:
    if not isinstance(body, dict):
        raise Refused("BadParams", "user must be an object")
    _who(body, check_email=check_email)
    if "dataFields" in body and not isinstance(body["dataFields"], dict):
        raise Refused("BadParams", "dataFields must be an object")
    for flag in ("preferUserId", "mergeNestedObjects"):
        if flag in body and not isinstance(body[flag], bool):
            raise Refused("BadParams", f"{flag} must be a boolean")


def _record(into: list[dict[str, Any]], item: dict[str, Any]) -> None:
    """Add an item, or replace the one with its `id`: Iterable updates an event it has."""
    if "id" in item:
        for n, kept in enumerate(into):
            if kept.get("id") == item["id"]:
                into[n] = item
                return
    into.append(item)


def _event_id(body: dict[str, Any]) -> None:
    found = body.get("id")
    if found is not None and (not isinstance(found, str) or len(found.encode()) > MAX_ID_BYTES):
        raise Refused("BadParams", f"id must be text of at most {MAX_ID_BYTES} bytes")


def _event(body: Any, *, check_email: bool = True) -> None:
    if not isinstance(body, dict):
        raise Refused("BadParams", "each event must be an object")
    _who(body, check_email=check_email)
    _event_id(body)
    if not _text(body.get("eventName")):
        raise Refused("BadParams", "eventName is required")
    if "dataFields" in body and not isinstance(body["dataFields"], dict):
        raise Refused("BadParams", "dataFields must be an object")
    for name in ("createdAt", "campaignId", "templateId"):
        if name in body and (not isinstance(body[name], int) or isinstance(body[name], bool)):
            raise Refused("BadParams", f"{name} must be an integer")


def _items(body: dict[str, Any], name: str) -> list[dict[str, Any]]:
    items = body.get(name)
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_ITEMS:
        raise Refused("BadParams", f"{name} must list 1 to {MAX_ITEMS} items")
    return items


def _commerce_items(body: dict[str, Any]) -> None:
    items = body.get("items")
    if not isinstance(items, list) or not items:
        raise Refused("BadParams", "items must be a non-empty list")
    for item in items:
        if not isinstance(item, dict):
            raise Refused("BadParams", "each item must be an object")
        if not (_text(item.get("id")) and _text(item.get("name"))):
            raise Refused("BadParams", "each item needs an id and a name")
        if not _number(item.get("price")) or not isinstance(item.get("quantity"), int):
            raise Refused("BadParams", "each item needs a numeric price and an integer quantity")
        if "categories" in item and not isinstance(item["categories"], list):
            raise Refused("BadParams", "categories must be a list")
