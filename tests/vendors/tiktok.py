"""A double of TikTok's Events API (Business API v1.3), as a `tests.sink.Sink` behaviour.

Three endpoints under `/open_api/v1.3`: Events 1.0 `pixel/track/` (one event: `pixel_code`,
`event`, `event_id`, `timestamp`, `properties`, `context`) and `pixel/batch/` (`pixel_code` and
1 to 50 such events in `batch[]`), and Events 2.0 `event/track/` (`event_source` one of web,
app, offline, crm, `event_source_id` the pixel code, 1 to 1000 events in `data[]`, each with
`event` and an integer `event_time`). Every request carries the `Access-Token` header.

As TikTok does, it answers HTTP 200 whatever happened, and says what in the body: `{code,
message, request_id, data}`. 0 is success; 40100 the rate limit; 40104 no token; 40105 a token
that is wrong or revoked; 40001 a token without permission for the pixel; 40002 invalid
parameters, naming the first offending field by its path (`Batch.1.properties.currency: …`,
`data.0.event_time: …`): one bad event refuses its whole request, nothing of it is recorded.
Events carrying a `test_event_code` go to TikTok's Test Events tool, not to the pixel's data.
"""

import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tests.sink import Answer, Arrival
from tests.vendors import VendorDouble

API = "/open_api/v1.3"
MAX_BATCH = 50
MAX_DATA = 1000
SOURCES = ("web", "app", "offline", "crm")
# ISO 4217 codes TikTok takes (a part: enough for tests to tell a currency from a typo).
CURRENCIES = frozenset({"AED", "AUD", "BRL", "CAD", "CHF", "CNY", "EUR", "GBP", "HKD", "IDR",
                        "INR", "JPY", "KRW", "MXN", "NZD", "SGD", "USD", "VND"})  # fmt: skip
_THROTTLED = "Too many requests. Please retry in some time."


class Invalid(Exception):
    """A parameter TikTok refuses: the message names its path."""


def _answer(code: int, message: str = "OK") -> Answer:
    body = {"code": code, "message": message, "request_id": uuid.uuid4().hex, "data": {}}
    return Answer.json(200, body)


@dataclass
class TikTokDouble(VendorDouble):
    """`events` holds every event the pixel recorded (Events 1.0 ones without `pixel_code`,
    Events 2.0 ones with their `event_source`), `test_events` those sent to the Test Events
    tool; `requests` the path and number of events of every request accepted."""

    access_token: str
    pixel_code: str
    revoked: bool = False
    events: list[dict[str, Any]] = field(default_factory=list)
    test_events: list[dict[str, Any]] = field(default_factory=list)
    requests: list[tuple[str, int]] = field(default_factory=list)

    def event_ids(self) -> list[str]:
        with self._lock:
            return [e["event_id"] for e in self.events]

    def __call__(self, arrival: Arrival) -> Answer:
        if arrival.method != "POST":
            return Answer(405, body="Method Not Allowed")
        handlers = {
            f"{API}/pixel/track/": self._track,
            f"{API}/pixel/batch/": self._batch,
            f"{API}/event/track/": self._v2,
        }
        handler = handlers.get(arrival.path if arrival.path.endswith("/") else arrival.path + "/")
        if handler is None:
            return Answer(404, body="Not Found")
        if self.throttled():
            return _answer(40100, _THROTTLED)
        token = arrival.header("access-token")
        if not token:
            return _answer(40104, "Access token is null, please check your access token.")
        if self.revoked or token != self.access_token:
            return _answer(40105, "Access token is incorrect or has been revoked.")
        if not arrival.header("content-type").startswith("application/json"):
            return _answer(40002, "Content-Type must be application/json.")
        try:
            body = json.loads(arrival.body)
        except ValueError:
            return _answer(40002, "Request body is not valid JSON.")
        if not isinstance(body, dict):
            return _answer(40002, "Request body must be a JSON object.")
        try:
            return handler(body)
        except Invalid as exc:
            return _answer(40002, str(exc))

    def _pixel(self, code: Any) -> Answer | None:
        if code != self.pixel_code:
            return _answer(40001, f"No permission to operate pixel code: {code}. You must be "
                                  "an admin or operator of this advertiser account.")  # fmt: skip
        return None

    def _record(self, path: str, events: list[dict[str, Any]], test: bool) -> Answer:
        with self._lock:
            (self.test_events if test else self.events).extend(events)
            self.requests.append((path, len(events)))
        return _answer(0)

    def _track(self, body: dict[str, Any]) -> Answer:
        refused = self._pixel(body.get("pixel_code"))
        if refused is not None:
            return refused
        _check_v1(body, "")
        event = {k: v for k, v in body.items() if k not in ("pixel_code", "test_event_code")}
        return self._record("pixel/track", [event], "test_event_code" in body)

    def _batch(self, body: dict[str, Any]) -> Answer:
        refused = self._pixel(body.get("pixel_code"))
        if refused is not None:
            return refused
        batch = body.get("batch")
        if not isinstance(batch, list) or not 1 <= len(batch) <= MAX_BATCH:
            raise Invalid(f"batch: Length must be between 1 and {MAX_BATCH}.")
        for index, event in enumerate(batch):
            if not isinstance(event, dict):
                raise Invalid(f"Batch.{index}: Not a valid mapping type.")
            _check_v1(event, f"Batch.{index}.")
        return self._record("pixel/batch", batch, False)

    def _v2(self, body: dict[str, Any]) -> Answer:
        refused = self._pixel(body.get("event_source_id"))
        if refused is not None:
            return refused
        source = body.get("event_source")
        if source not in SOURCES:
            raise Invalid(f"event_source: Must be one of: {', '.join(SOURCES)}.")
        data = body.get("data")
        if not isinstance(data, list) or not 1 <= len(data) <= MAX_DATA:
            raise Invalid(f"data: Length must be between 1 and {MAX_DATA}.")
        for index, event in enumerate(data):
            if not isinstance(event, dict):
                raise Invalid(f"data.{index}: Not a valid mapping type.")
            _check_v2(event, f"data.{index}.")
        events = [{**event, "event_source": source} for event in data]
        return self._record("event/track", events, "test_event_code" in body)


def _text(value: Any, path: str, *, required: bool = False) -> None:
    if value is None and not required:
        return
    if not isinstance(value, str) or (required and not value):
        raise Invalid(f"{path}: Not a valid string.")


def _texts(value: Any, path: str) -> None:
    """A string, or (Events 2.0 user fields) a list of strings."""
    for n, item in enumerate(value if isinstance(value, list) else [value]):
        _text(item, f"{path}.{n}" if isinstance(value, list) else path)


def _properties(properties: Any, path: str) -> None:
    if properties is None:
        return
    if not isinstance(properties, dict):
        raise Invalid(f"{path}: Not a valid mapping type.")
    contents = properties.get("contents")
    if contents is not None:
        if not isinstance(contents, list):
            raise Invalid(f"{path}.contents: Not a valid list.")
        for n, item in enumerate(contents):
            if not isinstance(item, dict):
                raise Invalid(f"{path}.contents.{n}: Not a valid mapping type.")
            _text(item.get("content_id"), f"{path}.contents.{n}.content_id")
    currency = properties.get("currency")
    if currency is not None and currency not in CURRENCIES:
        raise Invalid(f"{path}.currency: Invalid currency {str(currency)[:20]}.")
    value = properties.get("value")
    if value is not None and (not isinstance(value, int | float) or isinstance(value, bool)):
        raise Invalid(f"{path}.value: Not a valid number.")


def _check_v1(event: dict[str, Any], at: str) -> None:
    _text(event.get("event"), f"{at}event", required=True)
    _text(event.get("event_id"), f"{at}event_id")
    stamp = event.get("timestamp")
    if stamp is not None:
        try:
            datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
        except ValueError:
            raise Invalid(f"{at}timestamp: Not a valid datetime.") from None
    _properties(event.get("properties"), f"{at}properties")
    context = event.get("context")
    if context is not None and not isinstance(context, dict):
        raise Invalid(f"{at}context: Not a valid mapping type.")
    user = (context or {}).get("user") or {}
    for key in ("email", "phone_number", "external_id"):
        _text(user.get(key), f"{at}context.user.{key}")


def _check_v2(event: dict[str, Any], at: str) -> None:
    _text(event.get("event"), f"{at}event", required=True)
    _text(event.get("event_id"), f"{at}event_id")
    stamp = event.get("event_time")
    if not isinstance(stamp, int) or isinstance(stamp, bool) or stamp <= 0:
        raise Invalid(f"{at}event_time: Not a valid integer.")
    _properties(event.get("properties"), f"{at}properties")
    user = event.get("user") or {}
    if not isinstance(user, dict):
        raise Invalid(f"{at}user: Not a valid mapping type.")
    for key in ("email", "phone", "external_id"):
        if key in user:
            _texts(user[key], f"{at}user.{key}")
    if "email" in user and isinstance(user["email"], str) and re.search(r"\s", user["email"]):
        raise Invalid(f"{at}user.email: Not a valid email or hash.")
