"""A double of Amplitude's ingestion APIs, as a `tests.sink.Sink` behaviour.

HTTP V2 (`/2/httpapi`): a JSON body with the project's `api_key` and an `events` list, each
event with an `event_type` and a `user_id` or `device_id` at least `options.min_id_length`
(default 5) characters long; at most 2000 events and 1 MB a request (413 beyond). Answers as
Amplitude does: 200 `{code, events_ingested, payload_size_bytes, server_upload_time}`, 400
`{code, error, missing_field | events_with_invalid_fields | events_with_missing_fields |
events_with_invalid_id_lengths}` (field → indices into `events`; nothing of the request is
ingested), 413, and 429 `{code, error, eps_threshold, throttled_users, throttled_devices}`.
Group Identify (`/groupidentify`) and User Mapping (`/usermap`) take a form with `api_key` and a
JSON text field (`identification`, `mapping`).
"""

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from tests.sink import Answer, Arrival
from tests.vendors import VendorDouble

MAX_EVENTS = 2000
MAX_BYTES = 1_000_000


def _answer(status: int, **fields: Any) -> Answer:
    return Answer.json(status, {"code": status, **fields})


@dataclass
class AmplitudeDouble(VendorDouble):
    """`events` holds every event Amplitude ingested (in arrival order); `groups` and
    `mappings` the group identifications and user mappings it took; `requests` the size in
    events of every events request answered."""

    api_key: str
    # An event this returns a field name for is refused as invalid in that field (400).
    invalid: Callable[[dict[str, Any]], str | None] = lambda event: None
    events: list[dict[str, Any]] = field(default_factory=list)
    groups: list[dict[str, Any]] = field(default_factory=list)
    mappings: list[dict[str, Any]] = field(default_factory=list)
    requests: list[int] = field(default_factory=list)

    def insert_ids(self) -> list[str]:
        with self._lock:
            return [e["insert_id"] for e in self.events if "insert_id" in e]

    def __call__(self, arrival: Arrival) -> Answer:
        if arrival.method != "POST":
            return Answer(405, body="Method Not Allowed")
        if arrival.path == "/2/httpapi":
            return self._events(arrival)
        if arrival.path == "/groupidentify":
            return self._form(arrival, "identification", self._group, self.groups)
        if arrival.path == "/usermap":
            return self._form(arrival, "mapping", self._mapping, self.mappings)
        return Answer(404, body="Not Found")

    def _events(self, arrival: Arrival) -> Answer:
        if len(arrival.body) > MAX_BYTES:
            return _answer(413, error="Payload too large")
        if not arrival.header("content-type").startswith("application/json"):
            return _answer(400, error="Invalid request content type")
        try:
            body = json.loads(arrival.body)
        except ValueError:
            return _answer(400, error="Invalid JSON request body")
        if not isinstance(body, dict) or not body.get("api_key"):
            return _answer(400, error="Request missing required field", missing_field="api_key")
        if body["api_key"] != self.api_key:
            return _answer(400, error="Invalid API key: " + str(body["api_key"]))
        events = body.get("events")
        if not isinstance(events, list) or not events:
            return _answer(400, error="Request missing required field", missing_field="events")
        if len(events) > MAX_EVENTS:
            return _answer(413, error="Payload too large")
        options = body.get("options")
        options = options if isinstance(options, dict) else {}
        refused = _refusals(events, options.get("min_id_length", 5), self.invalid)
        if refused:
            return _answer(400, error="Invalid field values on some events", **refused)
        if self.throttled():  # only events requests, as past 30 events/s for a user or device
            users = {e["user_id"]: 31 for e in events if e.get("user_id")}
            return _answer(429, error="Too many requests for some devices and users",
                           eps_threshold=30, throttled_users=users, throttled_devices={},
                           throttled_events=list(range(len(events))))  # fmt: skip
        with self._lock:
            self.events.extend(events)
            self.requests.append(len(events))
        return _answer(200, events_ingested=len(events), payload_size_bytes=len(arrival.body),
                       server_upload_time=int(time.time() * 1000))  # fmt: skip

    def _form(
        self,
        arrival: Arrival,
        name: str,
        valid: Callable[[Any], bool],
        into: list[dict[str, Any]],
    ) -> Answer:
        if len(arrival.body) > MAX_BYTES:
            return Answer(413, body="Payload too large")
        if not arrival.header("content-type").startswith("application/x-www-form-urlencoded"):
            return Answer(400, body=f"missing {name}")  # the form is not read without it
        form = dict(parse_qsl(arrival.body.decode()))
        if form.get("api_key") != self.api_key:
            return Answer(400, body="invalid api_key")
        try:
            items = json.loads(form.get(name, ""))
        except ValueError:
            return Answer(400, body=f"invalid {name}: not JSON")
        items = items if isinstance(items, list) else [items]
        if not items or not all(isinstance(i, dict) and valid(i) for i in items):
            return Answer(400, body=f"invalid {name}")
        with self._lock:
            into.extend(items)
        return Answer(200, body="success")

    @staticmethod
    def _group(item: dict[str, Any]) -> bool:
        return bool(item.get("group_type")) and item.get("group_value") not in (None, "")

    @staticmethod
    def _mapping(item: dict[str, Any]) -> bool:
        return bool(item.get("user_id")) and (
            bool(item.get("global_user_id")) or item.get("unmap") is True
        )


def _refusals(
    events: list[Any], min_id_length: Any, invalid: Callable[[dict[str, Any]], str | None]
) -> dict[str, dict[str, list[int]]]:
    """Amplitude's per-event detail of a 400: field → indices, by kind of fault."""
    shortest = min_id_length if isinstance(min_id_length, int) else 5
    missing: dict[str, list[int]] = {}
    short: dict[str, list[int]] = {}
    wrong: dict[str, list[int]] = {}
    for index, event in enumerate(events):
        if not isinstance(event, dict) or not isinstance(event.get("event_type"), str):
            missing.setdefault("event_type", []).append(index)
            continue
        ids = {k: event[k] for k in ("user_id", "device_id") if event.get(k) is not None}
        if not ids:
            missing.setdefault("user_id", []).append(index)
        for key, value in ids.items():
            if not isinstance(value, str) or len(value) < shortest:
                short.setdefault(key, []).append(index)
        if (bad := invalid(event)) is not None:
            wrong.setdefault(bad, []).append(index)
    found = {
        "events_with_missing_fields": missing,
        "events_with_invalid_id_lengths": short,
        "events_with_invalid_fields": wrong,
    }
    return {key: value for key, value in found.items() if value}
