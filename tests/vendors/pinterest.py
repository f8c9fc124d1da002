"""A double of Pinterest's Conversions API, both versions, as a `tests.sink.Sink` behaviour.

* v3 (legacy): `POST /events/v3`, no credentials; each event names its `advertiser_id`, which
  must be the advertiser's (else that event fails).
* v5: `POST /v5/ad_accounts/<id>/events` with `Authorization: Bearer <conversion token>`: a
  missing or wrong token is 401 `{code: 2, message: "Authentication failed."}`, another ad
  account than the token's is 403 `{code: 29, …}`.

The body is a JSON object `{"data": [...]}` of 1 to 1000 events (else 400 `{code, message}`).
Each event is checked as Pinterest does: `event_name` one of Pinterest's names, `action_source`
one of app_android/app_ios/web/offline, `event_time` unix seconds, `event_id`, and `user_data`
holding `em`, `hashed_maids`, or both `client_ip_address` and `client_user_agent`, with the
hashed fields lists of SHA-256 hex digests. The answer is 200 `{num_events_received,
num_events_processed, events: [{status, error_message, warning_message}]}`, one entry per event
in the order received: events that pass are recorded, the `failed` ones are not (a partial
success). With `test=true` the events are checked and answered alike but not recorded.
`throttle_next(n)` answers the next n requests 429 `{code: 8, …}`, as past the per-account
rate limit.
"""

import json
import re
from dataclasses import dataclass, field
from typing import Any

from tests.sink import Answer, Arrival
from tests.vendors import VendorDouble

MAX_EVENTS = 1000
EVENT_NAMES = frozenset({"add_to_cart", "checkout", "custom", "lead", "page_visit", "search",
                         "signup", "view_category", "watch_video"})  # fmt: skip
ACTION_SOURCES = frozenset({"app_android", "app_ios", "web", "offline"})
HASHED = ("em", "ph", "ge", "db", "ln", "fn", "ct", "st", "zp", "country", "hashed_maids",
          "external_id")  # fmt: skip
_V5 = re.compile(r"/v5/ad_accounts/([^/]+)/events")
_HASH = re.compile(r"[0-9a-f]{64}")
_THROTTLED = (
    "This request exceeded a rate limit. This can happen if the client exceeds one of the "
    "published rate limits within a short time window."
)


def _error(status: int, code: int, message: str) -> Answer:
    return Answer.json(status, {"code": code, "message": message})


@dataclass
class PinterestDouble(VendorDouble):
    """`events` holds every event Pinterest recorded (with the version it came through),
    `batches` the number of events in each request it answered 200, `tested` the events it
    checked in test mode."""

    token: str = ""
    ad_account: str = ""
    advertiser: str = ""
    events: list[dict[str, Any]] = field(default_factory=list)
    batches: list[int] = field(default_factory=list)
    tested: list[dict[str, Any]] = field(default_factory=list)

    def names(self) -> list[str]:
        with self._lock:
            return [e["event_name"] for e in self.events]

    def __call__(self, arrival: Arrival) -> Answer:
        if arrival.method != "POST":
            return _error(405, 405, "Method Not Allowed")
        if self.throttled():
            return _error(429, 8, _THROTTLED)
        if arrival.path == "/events/v3":
            return self._events(arrival, "v3")
        account = _V5.fullmatch(arrival.path)
        if account is None:
            return _error(404, 404, "Not found")
        scheme, _, token = arrival.header("authorization").partition(" ")
        if scheme != "Bearer" or not self.token or token != self.token:
            return _error(401, 2, "Authentication failed.")
        if account[1] != self.ad_account:
            return _error(403, 29, "You are not permitted to access that resource.")
        return self._events(arrival, "v5")

    def _events(self, arrival: Arrival, version: str) -> Answer:
        if not arrival.header("content-type").startswith("application/json"):
            return _error(400, 1, "Content-Type must be application/json")
        try:
            body = json.loads(arrival.body)
        except ValueError:
            return _error(400, 1, "The request body is not valid JSON")
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list) or not 1 <= len(data) <= MAX_EVENTS:
            return _error(400, 1, f"data must be a list of 1 to {MAX_EVENTS} events")
        verdicts = [self._problem(event, version) for event in data]
        good = [e for e, problem in zip(data, verdicts, strict=True) if problem is None]
        with self._lock:
            if arrival.query.get("test") == "true":
                self.tested.extend(good)
            else:
                self.events.extend({**e, "_version": version} for e in good)
            self.batches.append(len(data))
        entries = [
            {"status": "processed", "error_message": None, "warning_message": None}
            if problem is None
            else {"status": "failed", "error_message": problem, "warning_message": None}
            for problem in verdicts
        ]
        return Answer.json(
            200,
            {"num_events_received": len(data), "num_events_processed": len(good),
             "events": entries},
        )  # fmt: skip

    def _problem(self, event: Any, version: str) -> str | None:
        """Why Pinterest refuses one event, in its words, or None."""
        if not isinstance(event, dict):
            return "Event must be an object"
        if event.get("event_name") not in EVENT_NAMES:
            return f"Invalid event_name: {str(event.get('event_name'))[:60]}"
        if event.get("action_source") not in ACTION_SOURCES:
            return "action_source must be one of app_android, app_ios, web, offline"
        stamp = event.get("event_time")
        if not isinstance(stamp, int) or isinstance(stamp, bool) or stamp > 10**10:
            return "event_time must be a unix timestamp in seconds"
        if not isinstance(event.get("event_id"), str) or not event["event_id"]:
            return "event_id is required"
        if version == "v3" and event.get("advertiser_id") != self.advertiser:
            return "advertiser_id is missing or not a valid advertiser"
        if version == "v5" and "advertiser_id" in event:
            return "advertiser_id is not a field of the v5 API: the ad account is in the path"
        return _user_problem(event.get("user_data"))


def _user_problem(user: Any) -> str | None:
    if not isinstance(user, dict):
        return "user_data is required"
    for key in HASHED:
        values = user.get(key)
        if values is not None and not (
            isinstance(values, list) and all(isinstance(v, str) and _HASH.fullmatch(v)
                                             for v in values)
        ):  # fmt: skip
            return f"user_data.{key} must be a list of SHA-256 hashes"
    if not (
        user.get("em")
        or user.get("hashed_maids")
        or (user.get("client_ip_address") and user.get("client_user_agent"))
    ):
        return (
            "It is required at least one of em, hashed_maids or pair of client_ip_address "
            "and client_user_agent"
        )
    return None
