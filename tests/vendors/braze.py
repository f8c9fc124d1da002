"""A double of Braze's REST API (`/users/track`, `/users/identify`, `/users/merge`,
`/v2/subscription/status/set`), as a `tests.sink.Sink` behaviour.

Every endpoint is a POST of a JSON object authenticated by `Authorization: Bearer <REST API
key>`; a wrong key is answered 401 `{"message": "Invalid API key"}`, past the rate limit 429
`{"message": "API rate limit exceeded"}` (`throttle_next`: the data endpoints, not
`/users/identify`, which Braze limits apart) with `X-RateLimit-Limit`, `X-RateLimit-Remaining: 0`,
`X-RateLimit-Reset` (epoch seconds) and `X-Ratelimit-Retry-After` (`retry_after` seconds), and
no `Retry-After`; a request Braze cannot read at all (no JSON object, more than 75 objects in
an array, more than 75 external ids, nothing to do, a subscription's phone not in E.164) 400
`{"message": …}`, naming no object.

`/users/track` checks each attributes, event and purchase object on its own: one without
exactly one user identifier, an event without a name or time, a purchase without product_id,
time, an ISO 4217 currency or a numeric price, or an event named in `refused_events`, is
not processed and listed in `errors[] {type, input_array, index}` of a 201 `{"message":
"success"}`; the others are recorded. `/users/identify` records alias merges (≤50), or
answers `identify_status` (a 5xx, say) when a test sets it; `/users/merge` (≤50) answers 202.
"""

import json
import math
import re
import time
from dataclasses import dataclass, field
from typing import Any

from tests.sink import Answer, Arrival
from tests.vendors import VendorDouble

ARRAYS = ("attributes", "events", "purchases")
MAX_OBJECTS = 75
MAX_ALIASES = 50
MAX_GROUPS = 25
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_E164 = re.compile(r"^\+[1-9]\d{1,14}$")
_IDENTIFIERS = ("external_id", "user_alias", "braze_id")


class Refused(Exception):
    """A request Braze refuses whole: its status and message."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.answer = Answer.json(status, {"message": message})


@dataclass
class BrazeDouble(VendorDouble):
    """What Braze took: `attributes`, `events`, `purchases` (objects of /users/track),
    `identified` (alias merges), `merges`, `subscriptions`; `tracks` the object counts of each
    /users/track request answered, `paths` every authorised request's path, in order."""

    api_key: str
    refused_events: frozenset[str] = frozenset()
    identify_status: int | None = None  # answer /users/identify with this status instead
    retry_after: float = 1.0  # seconds a 429 says to wait
    attributes: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    purchases: list[dict[str, Any]] = field(default_factory=list)
    identified: list[dict[str, Any]] = field(default_factory=list)
    merges: list[dict[str, Any]] = field(default_factory=list)
    subscriptions: list[dict[str, Any]] = field(default_factory=list)
    tracks: list[dict[str, int]] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)

    def __call__(self, arrival: Arrival) -> Answer:
        if arrival.method != "POST":
            return Answer.json(405, {"message": "POST only"})
        handler = _HANDLERS.get(arrival.path)
        if handler is None:
            return Answer.json(404, {"message": f"no route {arrival.path[:100]}"})
        if arrival.header("Authorization") != f"Bearer {self.api_key}":
            return Answer.json(401, {"message": "Invalid API key"})
        with self._lock:
            self.paths.append(arrival.path)
        # Braze limits each endpoint apart: the switch throttles the data endpoints, not the
        # alias merges, which have a limit of their own.
        if arrival.path != "/users/identify" and self.throttled():
            return _throttled(self.retry_after)
        try:
            return handler(self, _object(arrival))
        except Refused as refused:
            return refused.answer

    def _track(self, body: dict[str, Any]) -> Answer:
        arrays = {name: _listed(body, name, MAX_OBJECTS) for name in ARRAYS}
        if not any(arrays.values()):
            raise Refused("Request must contain attributes, events or purchases")
        external = {o.get("external_id") for items in arrays.values() for o in items}
        if len(external - {None}) > MAX_OBJECTS:
            raise Refused(f"Too many external_ids: at most {MAX_OBJECTS} per request")
        errors: list[dict[str, Any]] = []
        taken: dict[str, list[dict[str, Any]]] = {name: [] for name in ARRAYS}
        for name, items in arrays.items():
            for index, item in enumerate(items):
                problem = self._problem(name, item)
                if problem is None:
                    taken[name].append(item)
                else:
                    errors.append({"type": problem, "input_array": name, "index": index})
        with self._lock:
            for name in ARRAYS:
                getattr(self, name).extend(taken[name])
            self.tracks.append({name: len(items) for name, items in arrays.items() if items})
        answer: dict[str, Any] = {"message": "success"}
        answer |= {f"{name}_processed": len(taken[name]) for name in ARRAYS if arrays[name]}
        if errors:
            answer["errors"] = errors
        return Answer.json(201, answer)

    def _problem(self, array: str, item: Any) -> str | None:
        if not isinstance(item, dict):
            return f"{array} must be objects"
        # email and phone name the user only in an object without another identifier: in one
        # with an external_id they are attributes.
        named = [k for k in _IDENTIFIERS if k in item]
        if len(named) > 1 or not (named or "email" in item or "phone" in item):
            return "must have exactly one of external_id, user_alias, braze_id, email or phone"
        if "user_alias" in named and not _alias(item["user_alias"]):
            return "user_alias must have alias_name and alias_label"
        if array == "events":
            if not _text(item.get("name")):
                return "'name' is required"
            if item["name"] in self.refused_events:
                return f"event name '{item['name']}' is blocklisted"
        if array in ("events", "purchases") and not _text(item.get("time")):
            return "'time' is required"
        if array == "purchases":
            if not _text(item.get("product_id")):
                return "'product_id' is required"
            if not _CURRENCY.match(str(item.get("currency"))):
                return "'currency' must be a valid ISO 4217 currency code"
            if not _number(item.get("price")):
                return "'price' must be a number"
        return None

    def _identify(self, body: dict[str, Any]) -> Answer:
        if self.identify_status is not None:
            return Answer.json(self.identify_status, {"message": "Internal Server Error"})
        aliases = _listed(body, "aliases_to_identify", MAX_ALIASES)
        for alias in aliases:
            if not _text(alias.get("external_id")) or not _alias(alias.get("user_alias")):
                raise Refused("each alias needs external_id and user_alias")
        with self._lock:
            self.identified.extend(aliases)
        return Answer.json(201, {"aliases_processed": len(aliases), "message": "success"})

    def _merge(self, body: dict[str, Any]) -> Answer:
        updates = _listed(body, "merge_updates", MAX_ALIASES)
        for update in updates:
            sides = ("identifier_to_merge", "identifier_to_keep")
            if not all(isinstance(update.get(k), dict) for k in sides):
                raise Refused("each merge needs identifier_to_merge and identifier_to_keep")
        with self._lock:
            self.merges.extend(updates)
        return Answer.json(202, {"message": "success"})

    def _subscribe(self, body: dict[str, Any]) -> Answer:
        groups = _listed(body, "subscription_groups", MAX_GROUPS)
        for group in groups:
            if not _text(group.get("subscription_group_id")):
                raise Refused("subscription_group_id is required")
            if group.get("subscription_state") not in ("subscribed", "unsubscribed"):
                raise Refused("subscription_state must be subscribed or unsubscribed")
            if not any(group.get(k) for k in ("external_ids", "emails", "phones")):
                raise Refused("external_ids, emails or phones is required")
            if not all(_E164.match(str(phone)) for phone in group.get("phones") or ()):
                raise Refused("Invalid phone number: phones must be in E.164 format")
        with self._lock:
            self.subscriptions.extend(groups)
        return Answer.json(201, {"message": "success"})


_HANDLERS = {
    "/users/track": BrazeDouble._track,
    "/users/identify": BrazeDouble._identify,
    "/users/merge": BrazeDouble._merge,
    "/v2/subscription/status/set": BrazeDouble._subscribe,
}


def _throttled(retry_after: float) -> Answer:
    headers = {
        "Content-Type": "application/json",
        "X-RateLimit-Limit": "250000",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": str(math.ceil(time.time() + retry_after)),
        "X-Ratelimit-Retry-After": f"{retry_after:g}",
    }
    return Answer(429, headers, body=json.dumps({"message": "API rate limit exceeded"}))


def _object(arrival: Arrival) -> dict[str, Any]:
    if not arrival.header("content-type").startswith("application/json"):
        raise Refused("Content-Type must be application/json")
    try:
        body = json.loads(arrival.body)
    except ValueError:
        raise Refused("Received unparseable response body") from None
    if not isinstance(body, dict):
        raise Refused("Request body must be a JSON object")
    return body


def _listed(body: dict[str, Any], name: str, limit: int) -> list[Any]:
    items = body.get(name, [])
    if not isinstance(items, list):
        raise Refused(f"'{name}' must be an array")
    if len(items) > limit:
        raise Refused(f"'{name}' may hold at most {limit} objects")
    return items


def _text(value: Any) -> bool:
    return isinstance(value, str) and bool(value)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _alias(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and _text(value.get("alias_name"))
        and _text(value.get("alias_label"))
    )
