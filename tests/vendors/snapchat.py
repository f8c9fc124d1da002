"""A double of Snapchat's Conversions API (tr.snapchat.com), v2 and v3, as a `tests.sink.Sink`
behaviour.

* v2: `POST /v2/conversion` with `Authorization: Bearer <token>` and a JSON array of 1 to 2000
  conversions, each flat: a known `event_type`, an `event_conversion_type` (WEB and OFFLINE
  with this account's `pixel_id`, MOBILE_APP with its `snap_app_id` and an `app_id`), a
  `timestamp` in Unix seconds at most 37 days old, hashed fields as SHA-256 hex, and something
  to match the person by (hashed email, phone, advertising id, or IP with a user agent).
* v3: `POST /v3/<pixel or Snap app id>/events?access_token=<token>` with `{"data": [...]}`
  of 1 to 2000 events: a known `event_name`, an `action_source` that fits the id in the path
  (MOBILE_APP for the app id, with `app_data.app_id`), an `event_time` at most 7 days old,
  `user_data` with hashed fields as SHA-256 hex and something to match the person by.

Answers: 200 `{"status": "SUCCESS"}` with every conversion recorded; 400 `{"status": "FAILED",
"reason": …}` when one conversion is invalid — nothing of that request is recorded (Snap's
answer carries no per-conversion verdict Sluice could act on); 401 for a wrong token; 429
`{"status": "FAILED", "reason": …}` when throttled (`throttle_next`).
"""

import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

from tests.sink import Answer, Arrival
from tests.vendors import VendorDouble

MAX_ITEMS = 2000
EVENTS = frozenset({
    "SEARCH", "VIEW_CONTENT", "AD_VIEW", "AD_CLICK", "ADD_CART", "START_CHECKOUT", "ADD_BILLING",
    "PURCHASE", "ADD_TO_WISHLIST", "SIGN_UP", "APP_OPEN", "SAVE", "SUBSCRIBE",
    "COMPLETE_TUTORIAL", "LEVEL_COMPLETE", "INVITE", "LOGIN", "SHARE", "RESERVE",
    "ACHIEVEMENT_UNLOCKED", "SPENT_CREDITS", "RATE", "START_TRIAL", "LIST_VIEW", "PAGE_VIEW",
    "APP_INSTALL", "CUSTOM_EVENT_1", "CUSTOM_EVENT_2", "CUSTOM_EVENT_3", "CUSTOM_EVENT_4",
    "CUSTOM_EVENT_5",
})  # fmt: skip
SOURCES = frozenset({"WEB", "MOBILE_APP", "OFFLINE"})
_V3_PATH = re.compile(r"/v3/([A-Za-z0-9_-]+)/events")
_HASH = re.compile(r"[0-9a-f]{64}")
_SECONDS = re.compile(r"\d{9,10}")
_V2_HASHED = (
    "hashed_email", "hashed_phone_number", "hashed_mobile_ad_id", "hashed_idfv",
    "hashed_ip_address", "hashed_first_name_sha", "hashed_middle_name_sha",
    "hashed_last_name_sha", "hashed_city_sha", "hashed_state_sha", "hashed_zip",
)  # fmt: skip
_V3_HASHED = ("em", "ph", "fn", "ln", "ge", "ct", "st", "zp", "country")
_DAY = 86_400
_THROTTLED = "Too many requests, please retry after some time"


class Invalid(Exception):
    """Why Snap refuses a request (400)."""


def failed(status: int, reason: str) -> Answer:
    return Answer.json(status, {"status": "FAILED", "reason": reason})


@dataclass
class SnapchatDouble(VendorDouble):
    """`conversions` holds what v2 recorded, `events` what v3 recorded (v3 also in
    `events_by_id`, per pixel or app id); `requests` the number of conversions in each
    request that got an answer other than a throttle."""

    token: str
    pixel_id: str
    snap_app_id: str = ""
    conversions: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    events_by_id: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    requests: list[int] = field(default_factory=list)

    def __call__(self, arrival: Arrival) -> Answer:
        if arrival.method != "POST":
            return Answer(405, body="Method Not Allowed")
        if self.throttled():
            return failed(429, _THROTTLED)
        if arrival.path == "/v2/conversion":
            return self._v2(arrival)
        match = _V3_PATH.fullmatch(arrival.path)
        if match is not None:
            return self._v3(arrival, match[1])
        return Answer(404, body="Not Found")

    # v2

    def _v2(self, arrival: Arrival) -> Answer:
        scheme, _, token = arrival.header("authorization").partition(" ")
        if scheme.lower() != "bearer" or token != self.token:
            return failed(401, "Unauthorized: the access token is invalid or expired")
        try:
            conversions = _items(arrival, list)
            for index, conversion in enumerate(conversions):
                self._check_v2(index, conversion)
        except Invalid as exc:
            return self._refused(len(_parsed(arrival) or []), str(exc))
        with self._lock:
            self.conversions.extend(conversions)
            self.requests.append(len(conversions))
        return Answer.json(200, {"status": "SUCCESS"})

    def _check_v2(self, index: int, conversion: Any) -> None:
        def wrong(problem: str) -> Invalid:
            return Invalid(f"conversion {index}: {problem}")

        if not isinstance(conversion, dict):
            raise wrong("must be an object")
        if conversion.get("event_type") not in EVENTS:
            raise wrong("event_type is missing or unknown")
        kind = conversion.get("event_conversion_type")
        if kind not in SOURCES:
            raise wrong("event_conversion_type must be WEB, MOBILE_APP or OFFLINE")
        if kind == "MOBILE_APP":
            if conversion.get("snap_app_id") != self.snap_app_id or not conversion.get("app_id"):
                raise wrong("snap_app_id and app_id must name an app of this account")
        elif conversion.get("pixel_id") != self.pixel_id:
            raise wrong("pixel_id is not a pixel of this account")
        _check_time(conversion.get("timestamp"), 37, wrong)
        for name in _V2_HASHED:
            if name in conversion and not _hashed(conversion[name]):
                raise wrong(f"{name} must be a lower-case SHA-256 hex digest")
        ids = conversion.get("item_ids")
        if ids is not None and not (isinstance(ids, list) and all(isinstance(i, str) for i in ids)):
            raise wrong("item_ids must be a list of strings")
        if not any(conversion.get(k) for k in _V2_HASHED[:3]) and not (
            conversion.get("hashed_ip_address") and conversion.get("user_agent")
        ):
            raise wrong("no email, phone, mobile ad id, or IP address with user agent")

    # v3

    def _v3(self, arrival: Arrival, path_id: str) -> Answer:
        if arrival.query.get("access_token") != self.token:
            return failed(401, "Unauthorized: the access token is invalid or expired")
        if path_id not in (self.pixel_id, self.snap_app_id) or not path_id:
            return failed(400, f"{path_id} is not a pixel or app of this account")
        try:
            body = _items(arrival, dict)
            events = body.get("data") if isinstance(body, dict) else None
            if not isinstance(events, list) or not 1 <= len(events) <= MAX_ITEMS:
                raise Invalid(f"data must list 1 to {MAX_ITEMS} events")
            for index, event in enumerate(events):
                self._check_v3(index, event, app=path_id == self.snap_app_id)
        except Invalid as exc:
            data = (_parsed(arrival) or {}).get("data")
            return self._refused(len(data) if isinstance(data, list) else 0, str(exc))
        with self._lock:
            self.events.extend(events)
            self.events_by_id.setdefault(path_id, []).extend(events)
            self.requests.append(len(events))
        return Answer.json(200, {"status": "SUCCESS"})

    def _check_v3(self, index: int, event: Any, *, app: bool) -> None:
        def wrong(problem: str) -> Invalid:
            return Invalid(f"data[{index}]: {problem}")

        if not isinstance(event, dict):
            raise wrong("must be an object")
        if event.get("event_name") not in EVENTS:
            raise wrong("event_name is missing or unknown")
        source = event.get("action_source")
        if source not in SOURCES or (source == "MOBILE_APP") != app:
            raise wrong("action_source does not fit the pixel or app the request is for")
        app_data = event.get("app_data", {})
        if app and not (isinstance(app_data, dict) and app_data.get("app_id")):
            raise wrong("app events need app_data.app_id")
        _check_time(event.get("event_time"), 7, wrong)
        user = event.get("user_data")
        if not isinstance(user, dict):
            raise wrong("user_data is required")
        for name in _V3_HASHED:
            if name in user and not _hashed(user[name]):
                raise wrong(f"user_data.{name} must be a lower-case SHA-256 hex digest")
        if not any(user.get(k) for k in ("em", "ph", "madid")) and not (
            user.get("client_ip_address") and user.get("client_user_agent")
        ):
            raise wrong("user_data has no email, phone, madid, or IP address with user agent")
        custom = event.get("custom_data", {})
        if not isinstance(custom, dict) or not isinstance(custom.get("contents", []), list):
            raise wrong("custom_data must be an object, its contents a list")

    def _refused(self, count: int, reason: str) -> Answer:
        with self._lock:
            self.requests.append(count)
        return failed(400, reason)


def _parsed(arrival: Arrival) -> Any:
    try:
        return json.loads(arrival.body)
    except ValueError:
        return None


def _items(arrival: Arrival, shape: type) -> Any:
    if not arrival.header("content-type").startswith("application/json"):
        raise Invalid("Content-Type must be application/json")
    body = _parsed(arrival)
    if not isinstance(body, shape):
        raise Invalid(f"the body must be a JSON {'array' if shape is list else 'object'}")
    if isinstance(body, list) and not 1 <= len(body) <= MAX_ITEMS:
        raise Invalid(f"the body must list 1 to {MAX_ITEMS} conversions")
    return body


def _hashed(value: Any) -> bool:
    return isinstance(value, str) and _HASH.fullmatch(value) is not None


def _check_time(value: Any, days: int, wrong: Any) -> None:
    if not isinstance(value, str) or not _SECONDS.fullmatch(value):
        raise wrong("the time must be Unix seconds, as a string")
    age = time.time() - int(value)
    if age > days * _DAY or age < -_DAY:
        raise wrong(f"the event must have happened within the last {days} days")
