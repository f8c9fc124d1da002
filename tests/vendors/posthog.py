"""A double of PostHog's capture API (`/batch`), as a `tests.sink.Sink` behaviour.

The body is JSON: `{api_key, batch: [events]}`, or one event with its own `api_key`. The
project key is the `api_key` (or `token`, `$token`) of the body, else of each event (they must
agree); without one, or with an empty, a personal (`phx_…`) or another project's key, the
request is refused with 401 and PostHog's plain-text reason. Each event is checked as the
capture service reads it: `event` a non-empty string, `properties` and `$set` objects,
`timestamp` text, a `distinct_id` (top-level, else in `properties`) that is text or a number,
and at most 1 MB of JSON (413 beyond, `max_event_bytes` to test with less). One invalid event
refuses the whole request (400, or 413 for size): PostHog has no partial success. Requests
over 20 MB are refused with 413. `invalid_names`: event names the double finds invalid (400),
standing for the checks PostHog makes that a mapping cannot foresee. Accepted requests are
answered 200 `{"status": 1}`; a throttled one 429 `rate limited`.

An event's `uuid`, when given, must be a UUID (400 otherwise: the capture service reads it as
one). An event with the UUID, event name, timestamp and distinct_id of one already accepted is
a duplicate PostHog removes: it is not added to `events` again, and is counted in `repeats`.
"""

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from tests.sink import Answer, Arrival
from tests.vendors import VendorDouble

MAX_EVENT_BYTES = 1024 * 1024
MAX_REQUEST_BYTES = 20 * 1024 * 1024
_TOKEN_KEYS = ("api_key", "token", "$token")


class Refused(Exception):
    """Why the capture service refuses a request: its status and its words."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass
class PostHogDouble(VendorDouble):
    """`events` holds every event PostHog accepted (without the request's key); `requests` the
    number of events in each request it could read, accepted or not, and `batches` their
    `messageId`s."""

    token: str
    max_event_bytes: int = MAX_EVENT_BYTES
    invalid_names: frozenset[str] = frozenset()
    events: list[dict[str, Any]] = field(default_factory=list)
    requests: list[int] = field(default_factory=list)
    batches: list[list[Any]] = field(default_factory=list)
    repeats: int = 0

    def __call__(self, arrival: Arrival) -> Answer:
        if arrival.method != "POST":
            return Answer(405, body="Method Not Allowed")
        if arrival.path.rstrip("/") != "/batch":
            return Answer(404, body="Not Found")
        if self.throttled():  # past the project's rate limit
            return Answer(429, {"Content-Type": "text/plain"}, body="rate limited")
        try:
            self._take(arrival)
        except Refused as refused:
            return Answer(refused.status, {"Content-Type": "text/plain"}, body=refused.reason)
        return Answer.json(200, {"status": 1})

    def _take(self, arrival: Arrival) -> None:
        if len(arrival.body) > MAX_REQUEST_BYTES:
            raise Refused(413, "maximum request size exceeded")
        try:
            body = json.loads(arrival.body)
        except ValueError as exc:
            raise Refused(400, f"failed to parse request: {exc}") from None
        events = _events(body)
        with self._lock:
            self.requests.append(len(events))
            self.batches.append([event.get("messageId") for event in events])
        self._check_token(body, events)
        for event in events:
            _check(event, self.max_event_bytes)
            if event.get("event") in self.invalid_names:
                raise Refused(400, f"invalid event: {event['event']!r} cannot be ingested")
        kept = [{k: v for k, v in e.items() if k not in _TOKEN_KEYS} for e in events]
        with self._lock:
            for event in kept:
                if "uuid" in event and any(map(_same(event), self.events)):
                    self.repeats += 1
                else:
                    self.events.append(event)

    def _check_token(self, body: dict[str, Any], events: list[dict[str, Any]]) -> None:
        tokens = {t for t in (_token(body), *map(_token, events)) if t is not None}
        if not tokens:
            raise Refused(401, "event submitted without an api_key")
        if len(tokens) > 1:
            raise Refused(401, "batch submitted with inconsistent api_key values")
        [token] = tokens
        if not isinstance(token, str) or not token:
            raise Refused(401, "API key is not valid: empty")
        if token.startswith("phx_"):
            raise Refused(401, "API key is not valid: personal api key")
        if token != self.token:
            raise Refused(401, "API key is not valid: unknown project")


def _same(event: dict[str, Any]) -> Any:
    """Whether an event accepted before is this one again, by PostHog's dedup key."""
    keys = ("uuid", "event", "timestamp", "distinct_id")
    return lambda other: all(other.get(k) == event.get(k) for k in keys)


def _token(node: dict[str, Any]) -> Any:
    return next((node[k] for k in _TOKEN_KEYS if k in node), None)


def _events(body: Any) -> list[dict[str, Any]]:
    """The events of a request: its `batch`, or the body itself as one event."""
    events = body.get("batch") if isinstance(body, dict) and "batch" in body else body
    if isinstance(events, dict):
        events = [events]
    if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
        raise Refused(400, "failed to parse request: expected events as JSON objects")
    if not events:
        raise Refused(400, "request holds no event")
    return events


def _check(event: dict[str, Any], max_bytes: int) -> None:
    """Refuse the request for one event as the capture service does."""
    name = event.get("event")
    if not isinstance(name, str):
        raise Refused(400, "failed to parse request: event must be a string")
    if not name:
        raise Refused(400, "event submitted with an empty event name")
    for key in ("properties", "$set", "$set_once"):
        if event.get(key) is not None and not isinstance(event[key], dict):
            raise Refused(400, f"failed to parse request: {key} must be a map")
    if event.get("timestamp") is not None and not isinstance(event["timestamp"], str):
        raise Refused(400, "failed to parse request: timestamp must be a string")
    if event.get("uuid") is not None:
        try:
            uuid.UUID(str(event["uuid"]))
        except ValueError:
            raise Refused(400, "failed to parse request: invalid uuid") from None
    properties = event.get("properties") or {}
    distinct = event.get("distinct_id", event.get("$distinct_id"))
    if distinct is None:
        distinct = properties.get("distinct_id")
    if isinstance(distinct, bool) or not isinstance(distinct, str | int | float) or distinct == "":
        raise Refused(400, "event submitted without a distinct_id")
    size = len(json.dumps(event, separators=(",", ":")).encode())
    if size > max_bytes:
        raise Refused(413, f"maximum event size exceeded: {size} bytes")
