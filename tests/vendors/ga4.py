"""A double of GA4's Measurement Protocol, as a `tests.sink.Sink` behaviour.

Like GA4, `/mp/collect` answers 204 whatever it is sent: a payload GA4 would record lands in
`collected`, one it would silently discard (wrong secret or stream id, invalid payload) in
`dropped` with the reasons. `/debug/mp/collect` answers 200 with `validationMessages` (empty when
the payload is valid), as GA4's validation server does.

GA4 itself never refuses a request; `strict_auth` makes the double answer a wrong `api_secret`
with 403 PERMISSION_DENIED, as a proxy in front of GA4 (or a Google front end refusing a
misconfigured request) can: the only way to see a permanent failure end to end.
"""

import json
import re
from dataclasses import dataclass, field
from typing import Any

from tests.sink import Answer, Arrival
from tests.vendors import VendorDouble

COLLECT = "/mp/collect"
DEBUG = "/debug/mp/collect"

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,39}")
_USER_PROPERTY = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,23}")
# Written out again on purpose, not imported from engine.destinations.ga4: an independent oracle.
_RESERVED_EVENTS = frozenset({
    "ad_activeview", "ad_click", "ad_exposure", "ad_impression", "ad_query", "adunit_exposure",
    "app_clear_data", "app_install", "app_update", "app_remove", "error", "first_open",
    "first_visit", "in_app_purchase", "os_update", "screen_view", "session_start",
    "user_engagement",
})  # fmt: skip
_RESERVED_PREFIXES = ("_", "firebase_", "ga_", "google_")


def _google_error(status: int, message: str, code: str) -> Answer:
    return Answer.json(status, {"error": {"code": status, "message": message, "status": code}})


def _problem(path: str, description: str, code: str = "VALUE_INVALID") -> dict[str, str]:
    return {"fieldPath": path, "description": description, "validationCode": code}


@dataclass
class GA4Double(VendorDouble):
    """Plays one GA4 data stream: a web stream (`measurement_id`) or an app stream
    (`firebase_app_id`), with its Measurement Protocol API secret."""

    api_secret: str
    measurement_id: str | None = None
    firebase_app_id: str | None = None
    strict_auth: bool = False  # a wrong secret or stream id answered 403 instead of 204
    collected: list[dict[str, Any]] = field(default_factory=list)
    dropped: list[tuple[bytes, list[str]]] = field(default_factory=list)
    validated: list[dict[str, Any]] = field(default_factory=list)  # payloads sent to DEBUG

    def __call__(self, arrival: Arrival) -> Answer:
        if self.throttled():  # as Google's front does
            return _google_error(429, "Quota exceeded", "RESOURCE_EXHAUSTED")
        if arrival.path not in (COLLECT, DEBUG):
            return Answer(404, body="Not Found")
        if arrival.method != "POST":
            return Answer(405, body="Method Not Allowed")
        auth = self.auth_problems(arrival)
        if auth and self.strict_auth and arrival.path == COLLECT:
            return _google_error(403, "The caller does not have permission", "PERMISSION_DENIED")
        payload, problems = self.payload_problems(arrival)
        if arrival.path == DEBUG:
            with self._lock:
                if isinstance(payload, dict):
                    self.validated.append(payload)
            return Answer.json(200, {"validationMessages": problems})
        reasons = auth + [p["description"] for p in problems]
        with self._lock:
            if reasons or not isinstance(payload, dict):
                self.dropped.append((arrival.body, reasons))
            else:
                self.collected.append(payload)
        return Answer(204, body="")

    def auth_problems(self, arrival: Arrival) -> list[str]:
        query = arrival.query
        problems = []
        if query.get("api_secret") != self.api_secret:
            problems.append("api_secret is missing or wrong")
        if self.measurement_id is not None:
            if query.get("measurement_id") != self.measurement_id:
                problems.append("measurement_id is missing or wrong")
        elif query.get("firebase_app_id") != self.firebase_app_id:
            problems.append("firebase_app_id is missing or wrong")
        return problems

    def payload_problems(self, arrival: Arrival) -> tuple[Any, list[dict[str, str]]]:
        """The payload, and what GA4's validation server would say about it."""
        try:
            payload = json.loads(arrival.body)
        except ValueError:
            return None, [_problem("", "Unable to parse the request body as JSON")]
        if not isinstance(payload, dict):
            return payload, [_problem("", "The request body must be a JSON object")]
        problems: list[dict[str, str]] = []
        identity = "client_id" if self.measurement_id is not None else "app_instance_id"
        if not isinstance(payload.get(identity), str) or not payload[identity]:
            problems.append(_problem(identity, f"{identity} is required", "VALUE_REQUIRED"))
        if "user_id" in payload and not isinstance(payload["user_id"], str):
            problems.append(_problem("user_id", "user_id must be a string"))
        stamp = payload.get("timestamp_micros")
        if stamp is not None and (isinstance(stamp, bool) or not isinstance(stamp, int)):
            problems.append(_problem("timestamp_micros", "timestamp_micros must be an integer"))
        problems += _events_problems(payload.get("events"))
        problems += _user_properties_problems(payload.get("user_properties"))
        consent = payload.get("consent", {})
        for key, value in consent.items() if isinstance(consent, dict) else []:
            if value not in ("GRANTED", "DENIED"):
                problems.append(_problem(f"consent.{key}", "Consent must be GRANTED or DENIED"))
        return payload, problems


def _events_problems(events: Any) -> list[dict[str, str]]:
    if not isinstance(events, list) or not 1 <= len(events) <= 25:
        return [_problem("events", "Between 1 and 25 events are required", "VALUE_REQUIRED")]
    problems = []
    for n, event in enumerate(events):
        name = event.get("name") if isinstance(event, dict) else None
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            problems.append(_problem(f"events[{n}].name",
                                     f"Event at index: [{n}] has invalid name [{name}]. Names "
                                     "must start with an alphabetic character.",
                                     "NAME_INVALID"))  # fmt: skip
        elif name in _RESERVED_EVENTS or name.startswith(_RESERVED_PREFIXES):
            problems.append(_problem(f"events[{n}].name",
                                     f"Event at index: [{n}] has name [{name}] which is reserved.",
                                     "NAME_RESERVED"))  # fmt: skip
        params = event.get("params", {}) if isinstance(event, dict) else {}
        problems += _params_problems(n, params)
    return problems


def _params_problems(n: int, params: Any) -> list[dict[str, str]]:
    if not isinstance(params, dict):
        return [_problem(f"events[{n}].params", "params must be an object")]
    problems = []
    if len(params) > 25:
        problems.append(_problem(f"events[{n}].params", "At most 25 parameters per event"))
    for key, value in params.items():
        where = f"events[{n}].params.{key}"
        if not _NAME.fullmatch(key) or key.startswith(_RESERVED_PREFIXES):
            problems.append(_problem(where, f"Parameter name [{key}] is invalid", "NAME_INVALID"))
        elif key == "items":
            problems += _items_problems(where, value)
        elif isinstance(value, dict | list):
            problems.append(_problem(where, f"Parameter [{key}] must be a string or a number"))
    return problems


def _items_problems(where: str, items: Any) -> list[dict[str, str]]:
    if not isinstance(items, list):
        return [_problem(where, "items must be an array")]
    return [
        _problem(f"{where}[{i}]", "An item needs item_id or item_name", "VALUE_REQUIRED")
        for i, item in enumerate(items)
        if not isinstance(item, dict) or not (item.get("item_id") or item.get("item_name"))
    ]


def _user_properties_problems(properties: Any) -> list[dict[str, str]]:
    if properties is None:
        return []
    if not isinstance(properties, dict) or len(properties) > 25:
        return [_problem("user_properties", "At most 25 user properties, as an object")]
    problems = []
    for name, holder in properties.items():
        where = f"user_properties.{name}"
        value = holder.get("value") if isinstance(holder, dict) else None
        if not _USER_PROPERTY.fullmatch(name) or name.startswith(_RESERVED_PREFIXES[1:]):
            problems.append(_problem(where, f"User property name [{name}] is invalid",
                                     "NAME_INVALID"))  # fmt: skip
        elif not isinstance(holder, dict) or isinstance(value, dict | list) or value is None:
            problems.append(_problem(where, "A user property is {value: string|number|bool}"))
        elif isinstance(value, str) and len(value) > 36:
            problems.append(_problem(where, "User property values are at most 36 characters"))
    return problems
