"""A double of HubSpot's APIs (CRM v3 contacts, custom behavioural events, the legacy v1 contact
batch and event pixel), as a `tests.sink.Sink` behaviour.

Calls authenticate with `Authorization: Bearer <private app token>` or the legacy `hapikey`
query parameter; anything else is answered 401 `INVALID_AUTHENTICATION`. The legacy pixel
(`GET /v1/event`, HubSpot's track host) names the account by `_a`, the hub id, instead. Past the
rate limit every call is answered 429 with `policyName: TEN_SECONDLY_ROLLING` and HubSpot's
rate-limit headers. Errors read `{status: "error", message, correlationId, category}`.

* `GET /properties/v1/contacts/properties` → `[{name, type}]` and `GET /crm/v3/properties/contacts`
  → `{results: [{name, type, hasUniqueValue}]}`, from `properties`.
* `POST /crm/v3/objects/contacts/search` finds contacts by one `EQ` filter (a search for a value
  in `lagging` misses once: HubSpot's search index trails its writes).
* `POST /crm/v3/objects/contacts/batch/{create,update,upsert}` `{inputs}` (100 at most): a
  malformed batch, one naming a contact twice, or a create/update with a property the account
  lacks or a refused value is answered 400 `VALIDATION_ERROR` whole; a create of an existing
  email 409 `CONFLICT`; an upsert's refused inputs and an update's unknown ids are a 207
  (`errors[]` naming the upsert's `objectWriteTraceId`, or the update's `context.ids`), the
  rest taken. Success is 201 (create) or 200 `{status: "COMPLETE", results, …}`.
* `POST /events/v3/send` (204) needs an `eventName` of `event_names` and an email, utk or
  objectId. `POST /contacts/v1/contact/batch/` takes a JSON array of `{email, properties:
  [{property, value}]}` (202, empty). `GET /v1/event` records the query (200).

`fail_lookups(n)` answers the next `n` look-ups (property reads, searches) 503.
"""

import itertools
import json
import re
from dataclasses import dataclass, field
from typing import Any

from tests.sink import Answer, Arrival
from tests.vendors import VendorDouble

MAX_INPUTS = 100
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_LOOKUPS = frozenset(
    {"/properties/v1/contacts/properties", "/crm/v3/properties/contacts",
     "/crm/v3/objects/contacts/search"}
)  # fmt: skip
_BATCH = "/crm/v3/objects/contacts/batch/"

# name → (type, unique value)
PROPERTIES: dict[str, tuple[str, bool]] = {
    "email": ("string", True),
    "hs_object_id": ("number", True),
    "firstname": ("string", False),
    "lastname": ("string", False),
    "phone": ("string", False),
    "company": ("string", False),
    "city": ("string", False),
    "plan": ("string", False),
    "score": ("number", False),
    "birthday": ("date", False),
    "newsletter": ("bool", False),
}


class Refused(Exception):
    """A call HubSpot refuses whole: its status, category and message."""

    def __init__(self, status: int, category: str, message: str) -> None:
        super().__init__(message)
        self.answer = _error(status, category, message)


def _error(status: int, category: str, message: str, **more: Any) -> Answer:
    body = {"status": "error", "message": message, "correlationId": "c0ffee00-0000-4000-8000-1",
            "category": category, **more}  # fmt: skip
    return Answer.json(status, body)


@dataclass
class HubSpotDouble(VendorDouble):
    """What HubSpot took: `contacts` (id → properties), `events` (custom event bodies),
    `legacy_contacts` (v1 batch items), `pixels` (legacy event queries); `batches` the operation
    and input count of each contact batch taken (in whole or in part), `lookups` the path of
    each look-up answered."""

    token: str | None = None
    api_key: str | None = None
    hub_id: str | None = None
    properties: dict[str, tuple[str, bool]] = field(default_factory=lambda: dict(PROPERTIES))
    event_names: frozenset[str] = frozenset()
    refused_emails: frozenset[str] = frozenset()  # values HubSpot refuses (INVALID_EMAIL)
    lagging: set[str] = field(default_factory=set)  # values the search index has not caught
    contacts: dict[str, dict[str, Any]] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    legacy_contacts: list[dict[str, Any]] = field(default_factory=list)
    pixels: list[dict[str, str]] = field(default_factory=list)
    batches: list[tuple[str, int]] = field(default_factory=list)
    lookups: list[str] = field(default_factory=list)
    _failing: int = field(default=0, init=False, repr=False)
    _ids: Any = field(default_factory=lambda: itertools.count(501), init=False, repr=False)

    def fail_lookups(self, count: int) -> None:
        with self._lock:
            self._failing = count

    def __call__(self, arrival: Arrival) -> Answer:
        route = (arrival.method, arrival.path)
        if route == ("GET", "/v1/event"):
            return self._pixel(arrival)
        if not self._authorised(arrival):
            return _error(401, "INVALID_AUTHENTICATION", "Authentication credentials not found.")
        if self.throttled():
            return self._rate_limited()
        try:
            if arrival.path in _LOOKUPS:
                return self._lookup(arrival)
            if arrival.method == "POST" and arrival.path.startswith(_BATCH):
                return self._batch(arrival.path.removeprefix(_BATCH), _json(arrival))
            if route == ("POST", "/events/v3/send"):
                return self._event(_json(arrival))
            if route == ("POST", "/contacts/v1/contact/batch/"):
                return self._legacy_batch(_json(arrival))
        except Refused as refused:
            return refused.answer
        return _error(404, "OBJECT_NOT_FOUND", f"no route {arrival.method} {arrival.path[:100]}")

    def _authorised(self, arrival: Arrival) -> bool:
        bearer = arrival.header("Authorization")
        if self.token is not None and bearer == f"Bearer {self.token}":
            return True
        return self.api_key is not None and arrival.query.get("hapikey") == self.api_key

    def _rate_limited(self) -> Answer:
        answer = _error(429, "RATE_LIMITS", "You have reached your ten_secondly_rolling limit.",
                        errorType="RATE_LIMIT", policyName="TEN_SECONDLY_ROLLING")  # fmt: skip
        limits = {
            "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
            "X-HubSpot-RateLimit-Max": "100",
            "X-HubSpot-RateLimit-Remaining": "0",
        }
        return Answer(429, {**answer.headers, **limits}, body=answer.body)

    # look-ups

    def _lookup(self, arrival: Arrival) -> Answer:
        with self._lock:
            failing, self._failing = self._failing > 0, max(self._failing - 1, 0)
        if failing:
            return _error(503, "INTERNAL_ERROR", "Service temporarily unavailable")
        with self._lock:
            self.lookups.append(arrival.path)
        if arrival.path == "/properties/v1/contacts/properties":
            return Answer.json(
                200, [{"name": n, "type": t} for n, (t, _) in self.properties.items()]
            )
        if arrival.path == "/crm/v3/properties/contacts":
            found = [{"name": n, "type": t, "hasUniqueValue": u}
                     for n, (t, u) in self.properties.items()]  # fmt: skip
            return Answer.json(200, {"results": found})
        return self._search(_json(arrival))

    def _search(self, body: dict[str, Any]) -> Answer:
        try:
            [group] = body["filterGroups"]
            [wanted] = group["filters"]
            name, operator, value = wanted["propertyName"], wanted["operator"], wanted["value"]
        except (KeyError, TypeError, ValueError):
            raise Refused(400, "VALIDATION_ERROR", "Invalid search request") from None
        if operator != "EQ" or name not in self.properties:
            raise Refused(400, "VALIDATION_ERROR", f"Invalid filter on {name!r}")
        with self._lock:
            found = [(i, p) for i, p in self.contacts.items() if str(p.get(name)) == str(value)]
            if value in self.lagging:
                self.lagging.discard(value)
                found = []
        results = [{"id": i, "properties": {name: p.get(name), "hs_object_id": i},
                    "archived": False} for i, p in found[: body.get("limit", 10)]]  # fmt: skip
        return Answer.json(200, {"total": len(found), "results": results})

    # contacts

    def _batch(self, operation: str, body: dict[str, Any]) -> Answer:
        inputs = body.get("inputs")
        if operation not in ("create", "update", "upsert") or not isinstance(inputs, list):
            raise Refused(400, "VALIDATION_ERROR", "Invalid input JSON: inputs is required")
        if not inputs or len(inputs) > MAX_INPUTS:
            raise Refused(400, "VALIDATION_ERROR", f"inputs must hold 1 to {MAX_INPUTS} items")
        for item in inputs:
            self._check_input(operation, item)
        keys = [_key(operation, item) for item in inputs]
        twice = sorted({k for k in keys if k is not None and keys.count(k) > 1})
        if twice:
            raise Refused(400, "VALIDATION_ERROR", f"Duplicate IDs found in batch input: {twice}")
        write = {"create": self._create, "update": self._update, "upsert": self._upsert}
        with self._lock:
            answer = write[operation](inputs)
            self.batches.append((operation, len(inputs)))
            return answer

    def _check_input(self, operation: str, item: Any) -> None:
        if not isinstance(item, dict) or not isinstance(item.get("properties"), dict):
            raise Refused(400, "VALIDATION_ERROR", "Each input needs its properties")
        if operation != "create" and not isinstance(item.get("id"), str):
            raise Refused(400, "VALIDATION_ERROR", "Each input needs an id (a string)")
        if operation == "upsert" and item.get("idProperty") not in self.properties:
            raise Refused(400, "VALIDATION_ERROR", "idProperty must name a unique property")
        for name, value in item["properties"].items():
            kind = self.properties.get(name, (None, False))[0]
            if kind is None:
                raise Refused(400, "VALIDATION_ERROR",
                              f'Property "{name}" does not exist')  # fmt: skip
            if kind == "number" and value != "" and not isinstance(value, int | float):
                raise Refused(400, "VALIDATION_ERROR", f"{value!r} is not a number ({name})")
        refused = self._refused(item)
        if operation != "upsert" and refused is not None:  # (an upsert refuses it alone)
            raise Refused(400, "VALIDATION_ERROR", f"Property values were not valid: {refused}")

    def _refused(self, item: dict[str, Any]) -> str | None:
        email = item["properties"].get("email")
        if email is None and item.get("idProperty") == "email":
            email = item.get("id")
        if email is None:
            return None
        if email in self.refused_emails or not _EMAIL.match(str(email)):
            return f"Email address {email} is invalid"
        return None

    def _create(self, inputs: list[dict[str, Any]]) -> Answer:
        for item in inputs:
            email = item["properties"].get("email")
            existing = self._by("email", email) if email else None
            if existing is not None:
                raise Refused(409, "CONFLICT", f"Contact already exists. Existing ID: {existing}")
        return Answer.json(201, _complete([self._store(None, item) for item in inputs]))

    def _update(self, inputs: list[dict[str, Any]]) -> Answer:
        results, errors = [], []
        for item in inputs:
            if item["id"] not in self.contacts:
                errors.append({"status": "error", "category": "OBJECT_NOT_FOUND",
                               "message": "Object not found.  objectId are usually numeric.",
                               "context": {"ids": [item["id"]]}})  # fmt: skip
            else:
                results.append(self._store(item["id"], item))
        return _partial(results, errors)

    def _upsert(self, inputs: list[dict[str, Any]]) -> Answer:
        results, errors = [], []
        for item in inputs:
            refused = self._refused(item)
            if refused is not None:
                trace = [item.get("objectWriteTraceId")]
                errors.append({"status": "error", "category": "VALIDATION_ERROR",
                               "message": f"Property values were not valid: {refused}",
                               "context": {"objectWriteTraceId": trace}})  # fmt: skip
                continue
            found = self._by(item["idProperty"], item["id"])
            properties = {**item["properties"], item["idProperty"]: item["id"]}
            results.append(self._store(found, {**item, "properties": properties}))
        return _partial(results, errors)

    def _by(self, name: str, value: Any) -> str | None:
        wanted = str(value).lower() if name == "email" else str(value)
        for contact, properties in self.contacts.items():
            have = str(properties.get(name))
            if (have.lower() if name == "email" else have) == wanted:
                return contact
        return None

    def _store(self, contact: str | None, item: dict[str, Any]) -> dict[str, Any]:
        contact = contact or str(next(self._ids))
        self.contacts[contact] = {**self.contacts.get(contact, {}), **item["properties"]}
        result = {"id": contact, "properties": self.contacts[contact], "archived": False}
        if "objectWriteTraceId" in item:
            result["objectWriteTraceId"] = item["objectWriteTraceId"]
        return result

    # events

    def _event(self, body: dict[str, Any]) -> Answer:
        if body.get("eventName") not in self.event_names:
            raise Refused(400, "VALIDATION_ERROR", f"Unknown event {body.get('eventName')!r}")
        if not any(isinstance(body.get(k), str | int) for k in ("email", "utk", "objectId")):
            raise Refused(400, "VALIDATION_ERROR", "email, utk or objectId is required")
        if not isinstance(body.get("properties", {}), dict):
            raise Refused(400, "VALIDATION_ERROR", "properties must be an object")
        with self._lock:
            self.events.append(body)
        return Answer(204, body="")

    def _legacy_batch(self, body: Any) -> Answer:
        if not isinstance(body, list) or not body:
            raise Refused(400, "VALIDATION_ERROR", "the body must be a JSON array of contacts")
        for item in body:
            rows = item.get("properties") if isinstance(item, dict) else None
            if not isinstance(rows, list) or not _EMAIL.match(str(item.get("email"))):
                raise Refused(400, "VALIDATION_ERROR", "each contact needs an email and properties")
        with self._lock:
            self.batches.append(("legacy", len(body)))
            self.legacy_contacts.extend(body)
        return Answer(202, body="")

    def _pixel(self, arrival: Arrival) -> Answer:
        if arrival.query.get("_a") != self.hub_id or not arrival.query.get("_n"):
            return Answer(400, body="")
        with self._lock:
            self.pixels.append(dict(arrival.query))
        return Answer(200, {"Content-Type": "image/gif"}, body="GIF89a")


def _json(arrival: Arrival) -> Any:
    try:
        return json.loads(arrival.body)
    except ValueError:
        raise Refused(400, "VALIDATION_ERROR", "Invalid input JSON") from None


def _key(operation: str, item: dict[str, Any]) -> str | None:
    if operation == "create":
        email = item["properties"].get("email")
        return str(email).lower() if email is not None else None
    return str(item.get("id")).lower()


def _complete(results: list[dict[str, Any]]) -> dict[str, Any]:
    return {"status": "COMPLETE", "results": results, "startedAt": "2026-01-15T10:00:00.000Z",
            "completedAt": "2026-01-15T10:00:00.100Z"}  # fmt: skip


def _partial(results: list[dict[str, Any]], errors: list[dict[str, Any]]) -> Answer:
    if not errors:
        return Answer.json(200, _complete(results))
    return Answer.json(207, {**_complete(results), "errors": errors, "numErrors": len(errors)})
