"""A double of AppsFlyer's S2S in-app events API, as a `tests.sink.Sink` behaviour.

It checks what AppsFlyer checks (the key in the `authentication` header, a JSON body with
`appsflyer_id`, `eventName` and `eventValue` as a string holding a JSON object or empty) and
answers as AppsFlyer does: 200 `ok`, 400 or 401 with a line of text. Like AppsFlyer, it
answers 200 to an event for an iOS app id without its `id` prefix and records nothing
(`dropped`).
"""

import json
import re
from dataclasses import dataclass, field
from typing import Any

from tests.sink import Answer, Arrival
from tests.vendors import VendorDouble

_PATH = re.compile(r"^/inappevent/([^/]+)$")


def _text(status: int, body: str) -> Answer:
    return Answer(status, {"Content-Type": "text/plain"}, body=body)


@dataclass
class AppsFlyerDouble(VendorDouble):
    """`accepted` holds (app id, body) of every event AppsFlyer would record."""

    key: str  # the dev key or S2S key the account has
    app_ids: frozenset[str]  # package names and id<digits>
    key_revoked: bool = False  # every request refused for good (401)
    accepted: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    dropped: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def __call__(self, arrival: Arrival) -> Answer:
        if self.throttled():  # beyond the account's rate
            return _text(429, "Too Many Requests")
        return self._judge(arrival)

    def _judge(self, arrival: Arrival) -> Answer:
        match = _PATH.match(arrival.path)
        if match is None or arrival.method != "POST":
            return _text(404, "Not Found")
        if self.key_revoked or arrival.header("authentication") != self.key:
            return _text(401, "Unauthorized")
        if not arrival.header("content-type").startswith("application/json"):
            return _text(400, "Bad Request: Content-Type must be application/json")
        try:
            body = json.loads(arrival.body)
        except ValueError:
            return _text(400, "Bad Request: invalid JSON")
        problem = _problem(body)
        if problem is not None:
            return _text(400, f"Bad Request: {problem}")
        app_id = match.group(1)
        with self._lock:
            if app_id.isdigit():  # an iOS app without its "id" prefix: silently nothing
                self.dropped.append((app_id, body))
            elif app_id in self.app_ids:
                self.accepted.append((app_id, body))
            else:
                return _text(400, "Bad Request: app id not found")
        return _text(200, "ok")


def _problem(body: Any) -> str | None:
    if not isinstance(body, dict):
        return "the body must be a JSON object"
    for name in ("appsflyer_id", "eventName"):
        if not isinstance(body.get(name), str) or not body[name]:
            return f"{name} is mandatory"
    value = body.get("eventValue")
    if not isinstance(value, str):
        return "eventValue is mandatory and must be a string"
    if value:
        try:
            decoded = json.loads(value)
        except ValueError:
            decoded = None
        if not isinstance(decoded, dict):
            return "eventValue must hold a JSON object"
    return None
