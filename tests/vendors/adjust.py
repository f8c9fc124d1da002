"""A double of Adjust's S2S event API, as a `tests.sink.Sink` behaviour.

It checks what Adjust checks (S2S Security token, `s2s=1`, a known app token and event token,
a device id, well-formed revenue and JSON parameters) and answers as Adjust does: 200 with
`{"status": "OK"}`, or an error status with `{"error": "Event request failed (<reason>)"}`.
Parameters are read from the query string and, for a form POST, from the body.
"""

import json
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from tests.sink import Answer, Arrival
from tests.vendors import VendorDouble

DEVICE_IDS = ("idfa", "gps_adid", "fire_adid", "oaid", "web_uuid", "idfv", "android_id", "adid")


def _error(status: int, reason: str) -> Answer:
    return Answer.json(status, {"error": f"Event request failed ({reason})"})


@dataclass
class AdjustDouble(VendorDouble):
    """`accepted` holds the parameters of every event Adjust would record."""

    app_token: str
    event_tokens: frozenset[str]
    s2s_token: str | None = None  # S2S Security on: requests must carry this Bearer token
    inactive: bool = False  # the app is inactive: every event refused for good (403)
    accepted: list[dict[str, str]] = field(default_factory=list)

    def __call__(self, arrival: Arrival) -> Answer:
        if self.throttled():  # as Adjust's front does under load
            return _error(429, "Too many requests")
        answer = self._judge(arrival)
        if answer.status == 200:
            with self._lock:
                self.accepted.append(self.params(arrival))
        return answer

    @staticmethod
    def params(arrival: Arrival) -> dict[str, str]:
        params = dict(arrival.query)
        if arrival.header("content-type").startswith("application/x-www-form-urlencoded"):
            params.update(parse_qsl(arrival.body.decode()))
        return params

    def _judge(self, arrival: Arrival) -> Answer:
        if arrival.path != "/event" or arrival.method not in ("GET", "POST"):
            return Answer(404, body="Not Found")
        if self.s2s_token and arrival.header("authorization") != f"Bearer {self.s2s_token}":
            return _error(401, "Authorization token is missing or wrong")
        params = self.params(arrival)
        if params.get("s2s") != "1":
            return _error(400, "Missing s2s parameter")
        if params.get("app_token") != self.app_token:
            return _error(404, "App token not found")
        if self.inactive:
            return _error(403, "App is inactive")
        if params.get("event_token") not in self.event_tokens:
            return _error(400, "Invalid event token")
        if not any(params.get(name) for name in DEVICE_IDS):
            return _error(400, "Device ID is missing")
        if params.get("environment", "production") not in ("production", "sandbox"):
            return _error(400, "Invalid environment")
        return self._check_values(params)

    @staticmethod
    def _check_values(params: dict[str, str]) -> Answer:
        if "revenue" in params:
            try:
                revenue = float(params["revenue"])
            except ValueError:
                return _error(400, "Invalid revenue")
            currency = params.get("currency", "")
            if not abs(revenue) <= 100_000_000_000 or len(currency) != 3:  # NaN fails too
                return _error(400, "Invalid revenue")
        for name in ("callback_params", "partner_params"):
            if name not in params:
                continue
            try:
                value = json.loads(params[name])
            except ValueError:
                value = None
            if not isinstance(value, dict):
                return _error(400, f"Invalid {name.replace('_', ' ')}")
        return Answer.json(200, {"status": "OK"})
