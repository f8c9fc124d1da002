"""A double of graph.facebook.com, as a `tests.sink.Sink` behaviour.

It plays the Conversions API (`POST /v25.0/<pixel or dataset id>/events`) and the App Events
API (`POST /v25.0/<app id>/activities`) and answers as the Graph API does: success bodies
(`{"events_received": n, "messages": [], "fbtrace_id": …}`, `{"success": true}`) and Graph
error objects — with HTTP 400 for client errors *and* for rate limits, the code telling them
apart. What it accepts lands in `events` / `app_events`; what it refuses in `refused`, with the
reason.

Switches: `throttle_next(n, code)` answers the next n requests with a rate-limit error (code 17
user limit, 4 app limit, 80003 business-use-case limit); `revoke()` makes the token invalid
(code 190), as when a user changes their password or an admin revokes the system user token.
"""

import itertools
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from tests.sink import Answer, Arrival
from tests.vendors import VendorDouble

VERSION = "v25.0"
_PATH = re.compile(r"/(v\d+\.\d+)/([A-Za-z0-9_-]+)/(events|activities)")
_HASH = re.compile(r"[0-9a-f]{64}")
_HASHED = ("em", "ph", "fn", "ln", "ge", "db", "ct", "st", "zp", "country")
_APP_NAME = re.compile(r"[0-9a-zA-Z_][0-9a-zA-Z _-]{0,39}")
_SOURCES = frozenset({"website", "app", "email", "phone_call", "chat", "physical_store",
                      "system_generated", "other"})  # fmt: skip
_THROTTLES = {
    4: "(#4) Application request limit reached",
    17: "(#17) User request limit reached",
    80003: "(#80003) There have been too many calls to this ad-account. Wait a bit and try again.",
}
_traces = itertools.count(1)


class Refused(Exception):
    """A request the Graph API would refuse: the error object's code, subcode and message."""

    def __init__(self, message: str, code: int = 100, subcode: int | None = None) -> None:
        super().__init__(message)
        self.code, self.subcode = code, subcode


def graph_error(
    message: str, code: int, subcode: int | None = None, kind: str = "OAuthException"
) -> Answer:
    error: dict[str, Any] = {"message": message, "type": kind, "code": code}
    if subcode is not None:
        error["error_subcode"] = subcode
    error["fbtrace_id"] = _trace()
    return Answer.json(400, {"error": error})


def _trace() -> str:
    return f"AbCdTrace{next(_traces):06d}"


@dataclass
class GraphDouble(VendorDouble):
    """Graph for one access token: any pixel/dataset id takes events with it; `app_token`
    (when set) is the app access token `/activities` requires."""

    token: str
    app_token: str | None = None
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (id, event)
    app_events: list[tuple[str, dict[str, str]]] = field(default_factory=list)  # (app, form)
    refused: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    _throttle_code: int = 17
    _revoked: bool = False

    def throttle_next(self, count: int, code: int = 17) -> None:
        with self._lock:
            self._throttle_code = code
        super().throttle_next(count)

    def revoke(self) -> None:
        with self._lock:
            self._revoked = True

    def __call__(self, arrival: Arrival) -> Answer:
        if self.throttled():
            code = self._throttle_code
            return graph_error(_THROTTLES.get(code, f"(#{code}) Rate limited"), code)
        try:
            return self._answer(arrival)
        except Refused as exc:
            with self._lock:
                self.refused.append((arrival.path, str(exc)))
            return graph_error(str(exc), exc.code, exc.subcode)

    def _answer(self, arrival: Arrival) -> Answer:
        match = _PATH.fullmatch(arrival.path)
        if match is None:
            raise Refused(f"Unknown path components: {arrival.path}", 2500)
        version, object_id, edge = match.groups()
        if version != VERSION:
            raise Refused(f"Unsupported version {version}", 2635)
        if arrival.method != "POST":
            raise Refused(f"Unsupported {arrival.method.lower()} request.", 100, 33)
        form = _form(arrival)
        token = arrival.query.get("access_token") or form.get("access_token")
        wanted = self.token if edge == "events" else self.app_token
        if wanted is not None:
            if not token:
                raise Refused("An access token is required to request this resource.", 104)
            if token != wanted or self._revoked:
                raise Refused("Invalid OAuth access token - Cannot parse access token", 190)
        if edge == "events":
            data = _server_events(form)
            with self._lock:
                self.events.extend((object_id, event) for event in data)
            return Answer.json(200, {"events_received": len(data), "messages": [],
                                     "fbtrace_id": _trace()})  # fmt: skip
        _check_app_event(form)
        with self._lock:
            self.app_events.append((object_id, form))
        return Answer.json(200, {"success": True})


def _form(arrival: Arrival) -> dict[str, str]:
    """The form fields, as Graph reads them: only from a urlencoded body."""
    kind = arrival.header("content-type").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        return {}
    try:
        pairs = parse_qsl(arrival.body.decode(), keep_blank_values=True, strict_parsing=True)
    except (UnicodeDecodeError, ValueError):
        raise Refused("Could not parse the request body") from None
    return dict(pairs)


def _json_field(form: dict[str, str], name: str) -> Any:
    if name not in form:
        raise Refused(f"(#100) The parameter {name} is required")
    try:
        return json.loads(form[name])
    except json.JSONDecodeError:
        raise Refused(f"(#100) param {name} must be JSON") from None


def _server_events(form: dict[str, str]) -> list[dict[str, Any]]:
    data = _json_field(form, "data")
    if not isinstance(data, list) or not 1 <= len(data) <= 1000:
        raise Refused("(#100) param data must be an array of 1 to 1000 server events")
    for event in data:
        _check_server_event(event)
    if "test_event_code" in form and not form["test_event_code"]:
        raise Refused("(#100) param test_event_code must be a non-empty string")
    return data


def _check_server_event(event: Any) -> None:
    if not isinstance(event, dict):
        raise Refused("(#100) each server event must be an object")
    if not isinstance(event.get("event_name"), str) or not event["event_name"]:
        raise Refused("(#100) The parameter event_name is required")
    when = event.get("event_time")
    if not isinstance(when, int) or isinstance(when, bool):
        raise Refused("(#100) param event_time must be an integer (unix seconds)")
    if when < time.time() - 7 * 86400 or when > time.time() + 60:
        raise Refused("Invalid parameter: event_time is too far in the past or future", 100,
                      2804003)  # fmt: skip
    if event.get("action_source") not in _SOURCES:
        raise Refused("(#100) action_source must be one of " + ", ".join(sorted(_SOURCES)))
    user = event.get("user_data")
    if not isinstance(user, dict) or not user:
        raise Refused("(#100) The parameter user_data is required")
    for key in _HASHED:
        if key in user and not (isinstance(user[key], str) and _HASH.fullmatch(user[key])):
            raise Refused(f"(#100) user_data.{key} must be a SHA-256 hash", 100, 2804019)
    if event["action_source"] == "website" and not user.get("client_user_agent"):
        raise Refused("(#100) client_user_agent is required for website events", 100, 2804050)
    custom = event.get("custom_data", {})
    if not isinstance(custom, dict):
        raise Refused("(#100) param custom_data must be an object")
    if event["event_name"] == "Purchase" and not (
        isinstance(custom.get("value"), int | float) and isinstance(custom.get("currency"), str)
    ):
        raise Refused("(#100) Purchase events need custom_data value and currency", 100, 2804048)


def _check_app_event(form: dict[str, str]) -> None:
    kind = form.get("event")
    if kind not in ("CUSTOM_APP_EVENTS", "MOBILE_APP_INSTALL"):
        raise Refused("(#100) param event must be one of {CUSTOM_APP_EVENTS, MOBILE_APP_INSTALL}")
    for flag in ("advertiser_tracking_enabled", "application_tracking_enabled"):
        if form.get(flag) not in ("0", "1"):
            raise Refused(f"(#100) The parameter {flag} is required")
    extinfo = _json_field(form, "extinfo")
    if (
        not isinstance(extinfo, list) or len(extinfo) != 16
        or not all(isinstance(v, str) for v in extinfo) or extinfo[0] not in ("a2", "i2")
    ):  # fmt: skip
        raise Refused("(#100) param extinfo must be an array of 16 strings, a2 or i2 first")
    user = {k[3:-1]: v for k, v in form.items() if k.startswith("ud[") and k.endswith("]")}
    if not (form.get("advertiser_id") or form.get("anon_id") or user):
        raise Refused("(#100) advertiser_id, anon_id or ud is required")
    for key, value in user.items():
        if key in _HASHED and not _HASH.fullmatch(value):
            raise Refused(f"(#100) ud[{key}] must be a SHA-256 hash")
    if kind == "MOBILE_APP_INSTALL":
        return
    events = _json_field(form, "custom_events")
    if not isinstance(events, list) or not events:
        raise Refused("(#100) param custom_events must be a non-empty array")
    for event in events:
        if not isinstance(event, dict) or not isinstance(event.get("_logTime"), int):
            raise Refused("(#100) each custom event needs _logTime")
        name = event.get("_eventName")
        if not isinstance(name, str) or not _APP_NAME.fullmatch(name):
            raise Refused(f"(#100) invalid event name {name!r}")
        for key in event:
            if not key.startswith("_") and not _APP_NAME.fullmatch(key):
                raise Refused(f"(#100) invalid parameter name {key!r}")
