"""A double of Customer.io's Track API (v1 calls and the v2 batch endpoint), as a
`tests.sink.Sink` behaviour.

Every request needs HTTP Basic auth with the workspace's Site ID and Track API key (401
`Unauthorized` otherwise). Bodies are JSON objects (a Content-Type other than JSON is refused);
ids in paths are at most 150 bytes, event names 100 bytes, attribute values 1000 bytes.

* `PUT /api/v1/customers/<id>` adds or updates a person (its attributes merged);
  `POST /api/v1/customers/<id>/events` records an event (`name` required) of that person,
  `POST /api/v1/events` an anonymous one (`name` and `anonymous_id` required);
  `PUT /api/v1/customers/<id>/devices` adds `{device: {id, platform?, last_used?}}`,
  `DELETE /api/v1/customers/<id>/devices/<token>` removes it; `POST /api/v1/merge_customers`
  merges `secondary` into `primary` (each exactly one of `id`, `email`, `cio_id`).
  A refused call gets 400 `{"meta": {"error": …}}`.
* `POST /api/v2/batch {batch: […]}` (500 KB at most: 413 beyond) checks each action (32 KB at
  most): person actions `identify`, `event`, `page`, `screen`, `add_device`, `delete_device`,
  `merge`, object actions `identify`, `delete`, `add_relationships`, `delete_relationships`.
  The valid ones are applied; when some are not, the answer is 207 `{"errors": [{batch_index,
  reason, field, message}]}` (a partial success), else 200 `{}`.

Events (v1 events, v2 `event`, `page` and `screen` actions) may carry `id`, Customer.io's
dedup id: it must be a ULID (26 characters of Crockford's base32, the first 0-7), else the
event is refused (`id`); an event whose id was already received is ignored, as Customer.io
does, and counted in `repeats`.

Past the rate limit (`throttle_next`) it answers 429, as Customer.io does, without a
Retry-After.
"""

import base64
import json
import re
from dataclasses import dataclass, field
from typing import Any

from tests.sink import Answer, Arrival
from tests.vendors import VendorDouble

MAX_BATCH_BYTES = 500_000
MAX_ACTION_BYTES = 32 * 1024
MAX_ID_BYTES = 150
MAX_NAME_BYTES = 100
MAX_VALUE_BYTES = 1000
PERSON_ACTIONS = frozenset(
    {"identify", "event", "page", "screen", "add_device", "delete_device", "merge", "delete"}
)
OBJECT_ACTIONS = frozenset({"identify", "delete", "add_relationships", "delete_relationships"})
_PERSON_KEYS = ("id", "email", "cio_id")
_ULID = re.compile(r"^[0-7][0-9A-HJKMNP-TV-Z]{25}$")
_CUSTOMER = re.compile(r"^/api/v1/customers/(?P<id>[^/]+)(?P<rest>/events|/devices(?:/.+)?)?$")


class Refused(Exception):
    """A request or action Customer.io refuses: the field it names and why."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field, self.message = field, message


def _refusal(status: int, message: str) -> Answer:
    return Answer.json(status, {"meta": {"error": message}})


@dataclass
class CustomerIODouble(VendorDouble):
    """What Customer.io recorded: `people` (id → attributes), `events` (each with `person` or
    `anonymous_id`), `devices` ((person, token) → device), `merges` ((primary, secondary)),
    `objects` ((type id, object id) → attributes) and `relationships` (object key → people);
    `batches` holds the number of actions of each batch request answered; `ids` the
    events' dedup ids received."""

    site_id: str
    api_key: str
    people: dict[str, dict[str, Any]] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    devices: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    merges: list[tuple[str, str]] = field(default_factory=list)
    objects: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    relationships: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    batches: list[int] = field(default_factory=list)
    ids: set[str] = field(default_factory=set)
    repeats: int = 0

    def __call__(self, arrival: Arrival) -> Answer:
        if not self._authorized(arrival):
            return Answer(401, {"Content-Type": "text/plain"}, body="Unauthorized")
        if self.throttled():
            return Answer(429, {"Content-Type": "text/plain"}, body="Too Many Requests")
        try:
            if arrival.path == "/api/v2/batch" and arrival.method == "POST":
                return self._batch(arrival)
            return self._v1(arrival)
        except Refused as refused:
            return _refusal(400, f"{refused.field}: {refused.message}")

    def _authorized(self, arrival: Arrival) -> bool:
        scheme, _, encoded = arrival.header("authorization").partition(" ")
        try:
            user, _, secret = base64.b64decode(encoded, validate=True).decode().partition(":")
        except ValueError:
            return False
        return scheme.lower() == "basic" and (user, secret) == (self.site_id, self.api_key)

    # v1

    def _v1(self, arrival: Arrival) -> Answer:
        path, method = arrival.path, arrival.method
        if path == "/api/v1/events" and method == "POST":
            body = _object(arrival)
            anonymous = _text(body, "anonymous_id")
            self._event({"anonymous_id": anonymous, **_event_fields(body)})
        elif path == "/api/v1/merge_customers" and method == "POST":
            body = _object(arrival)
            self._merge(_person(body.get("primary"), "primary"), _person(body.get("secondary"),
                        "secondary"))  # fmt: skip
        elif (found := _CUSTOMER.match(path)) is not None:
            return self._customer(arrival, found["id"], found["rest"] or "")
        else:
            return _refusal(404, f"no such endpoint: {method} {path}")
        return Answer.json(200, {})

    def _customer(self, arrival: Arrival, person: str, rest: str) -> Answer:
        _id(person)
        method = arrival.method
        if rest == "" and method == "PUT":
            self._identify(person, _attributes(_object(arrival)))
        elif rest == "/events" and method == "POST":
            self._event({"person": person, **_event_fields(_object(arrival))})
        elif rest == "/devices" and method == "PUT":
            device = _object(arrival).get("device")
            if not isinstance(device, dict) or not _given(device.get("id")):
                raise Refused("device.id", "is required")
            self._device(person, str(device["id"]), device)
        elif rest.startswith("/devices/") and method == "DELETE":
            with self._lock:
                self.devices.pop((person, rest.removeprefix("/devices/")), None)
        else:
            return _refusal(405, f"{method} is not allowed here")
        return Answer.json(200, {})

    # v2

    def _batch(self, arrival: Arrival) -> Answer:
        if len(arrival.body) > MAX_BATCH_BYTES:
            return _refusal(413, "request body too large")
        actions = _object(arrival).get("batch")
        if not isinstance(actions, list) or not actions:
            return _refusal(400, "batch: must be a non-empty array")
        errors = []
        for index, action in enumerate(actions):
            try:
                self._action(action)
            except Refused as refused:
                errors.append({"batch_index": index, "reason": "invalid",
                               "field": refused.field, "message": refused.message})  # fmt: skip
        with self._lock:
            self.batches.append(len(actions))
        if errors:
            return Answer.json(207, {"errors": errors})
        return Answer.json(200, {})

    def _action(self, action: Any) -> None:
        if not isinstance(action, dict):
            raise Refused("", "each action must be an object")
        if len(json.dumps(action).encode()) > MAX_ACTION_BYTES:
            raise Refused("", f"an action may be {MAX_ACTION_BYTES} bytes at most")
        if action.get("type") == "object":
            return self._object_action(action)
        if action.get("type") != "person":
            raise Refused("type", "must be person or object")
        kind = action.get("action")
        if kind not in PERSON_ACTIONS:
            raise Refused("action", f"{kind!r} is not a person action")
        if kind == "merge":
            primary = _person(action.get("primary"), "primary")
            return self._merge(primary, _person(action.get("secondary"), "secondary"))
        identifiers: Any = action.get("identifiers")
        who: str | None = None
        anonymous_id: str | None = None
        # Only events may belong to an anonymous visitor.
        keys = list(identifiers) if isinstance(identifiers, dict) else []
        if kind in ("event", "page", "screen") and keys == ["anonymous_id"]:
            anonymous_id = _text(identifiers, "anonymous_id")
        else:
            who = _person(identifiers, "identifiers")
        return self._person_action(kind, who, anonymous_id, action)

    def _person_action(
        self, kind: str, who: str | None, anonymous_id: str | None, action: dict[str, Any]
    ) -> None:
        if kind == "identify" and who is not None:
            self._identify(who, _attributes(action.get("attributes") or {}))
        elif kind in ("event", "page", "screen"):
            body = {"name": action.get("name"), "data": action.get("attributes"), "type": kind,
                    "timestamp": action.get("timestamp"), "id": action.get("id")}  # fmt: skip
            fields = _event_fields(body)
            place = {"person": who} if who is not None else {"anonymous_id": anonymous_id}
            self._event({**place, **fields})
        elif kind in ("add_device", "delete_device") and who is not None:
            device = action.get("device")
            if not isinstance(device, dict) or not _given(device.get("token")):
                raise Refused("device.token", "is required")
            if kind == "add_device":
                self._device(who, str(device["token"]), device)
            else:
                with self._lock:
                    self.devices.pop((who, str(device["token"])), None)
        elif kind == "delete" and who is not None:
            with self._lock:
                self.people.pop(who, None)

    def _object_action(self, action: dict[str, Any]) -> None:
        if action.get("action") not in OBJECT_ACTIONS:
            raise Refused("action", f"{action.get('action')!r} is not an object action")
        identifiers = action.get("identifiers")
        if not isinstance(identifiers, dict):
            raise Refused("identifiers", "is required")
        key = (_text(identifiers, "object_type_id"), _text(identifiers, "object_id"))
        attributes = _attributes(action.get("attributes") or {})
        related = action.get("cio_relationships") or []
        if not isinstance(related, list):
            raise Refused("cio_relationships", "must be an array")
        people = [
            _person(r.get("identifiers") if isinstance(r, dict) else None, "cio_relationships")
            for r in related
        ]
        with self._lock:
            if action["action"] == "delete":
                self.objects.pop(key, None)
                return
            self.objects.setdefault(key, {}).update(attributes)
            self.relationships.setdefault(key, []).extend(people)

    # what is recorded

    def _identify(self, person: str, attributes: dict[str, Any]) -> None:
        with self._lock:
            self.people.setdefault(person, {}).update(attributes)

    def _event(self, event: dict[str, Any]) -> None:
        with self._lock:
            if "id" in event:
                if event["id"] in self.ids:
                    self.repeats += 1
                    return
                self.ids.add(event["id"])
            self.events.append(event)

    def _device(self, person: str, token: str, device: dict[str, Any]) -> None:
        with self._lock:
            self.devices[person, token] = device

    def _merge(self, primary: str, secondary: str) -> None:
        with self._lock:
            self.merges.append((primary, secondary))


def _object(arrival: Arrival) -> dict[str, Any]:
    kind = arrival.header("content-type")
    if kind and not kind.startswith("application/json"):
        raise Refused("body", f"Content-Type {kind!r} is not JSON")
    try:
        body = json.loads(arrival.body)
    except ValueError:
        raise Refused("body", "is not valid JSON") from None
    if not isinstance(body, dict):
        raise Refused("body", "must be a JSON object")
    return body


def _given(value: Any) -> bool:
    return value is not None and value != ""


def _text(node: dict[str, Any], key: str) -> str:
    value = node.get(key)
    if not isinstance(value, str | int) or isinstance(value, bool) or value == "":
        raise Refused(key, "is required")
    return str(value)


def _id(value: str) -> str:
    if len(value.encode()) > MAX_ID_BYTES:
        raise Refused("id", f"may be {MAX_ID_BYTES} bytes at most")
    return value


def _person(identifiers: Any, where: str) -> str:
    """A person named by exactly one identifier, as `key:value`."""
    if not isinstance(identifiers, dict):
        raise Refused(where, "is required")
    keys = [k for k in _PERSON_KEYS if k in identifiers]
    if len(keys) != 1:
        raise Refused(where, "needs exactly one of id, email, cio_id")
    value = _id(_text(identifiers, keys[0]))
    return value if keys[0] == "id" else f"{keys[0]}:{value}"


def _attributes(attributes: Any) -> dict[str, Any]:
    if not isinstance(attributes, dict):
        raise Refused("attributes", "must be an object")
    for name, value in attributes.items():
        if isinstance(value, str) and len(value.encode()) > MAX_VALUE_BYTES:
            raise Refused(f"attributes.{name}", f"values may be {MAX_VALUE_BYTES} bytes at most")
    return attributes


def _event_fields(body: dict[str, Any]) -> dict[str, Any]:
    name = body.get("name")
    if not isinstance(name, str) or not name:
        raise Refused("name", "is required")
    if len(name.encode()) > MAX_NAME_BYTES:
        raise Refused("name", f"may be {MAX_NAME_BYTES} bytes at most")
    data = body.get("data")
    if data is not None and not isinstance(data, dict):
        raise Refused("data", "must be an object")
    fields = {"name": name, "type": body.get("type") or "event", "data": data or {}}
    if body.get("timestamp") is not None:
        fields["timestamp"] = body["timestamp"]
    if (dedup := body.get("id")) is not None:
        if not isinstance(dedup, str) or not _ULID.match(dedup):
            raise Refused("id", "must be a valid ULID")
        fields["id"] = dedup
    return fields
