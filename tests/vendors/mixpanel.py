"""A double of Mixpanel's ingestion API (`/import`, `/engage`, `/groups`), as a `tests.sink.Sink`
behaviour.

`/import` takes HTTP Basic auth: a service account (`user:secret`, with the `project_id` query
parameter) or the project token as the user with an empty password (and no `project_id`). The
body is a JSON array of at most 2000 `{event, properties}` objects, 10 MB at most (413 beyond).
With `strict=1` every event is checked as Mixpanel does: `time` present, after 1971 and at most
an hour ahead; `$insert_id` present, at most 36 letters, digits or `-`; a `distinct_id` that is
not one of the placeholder values Mixpanel refuses (`undefined`, `null`, `anonymous`, …);
fewer than 256 properties. The special events `$merge` and `$create_alias` need their own
properties instead. The answer is 200 `{code, num_records_imported, status}`, or 400 with
`failed_records[{index, $insert_id, field, message}]`: the events that passed are ingested all
the same (a partial success). Without `strict=1` invalid events are dropped in silence.

`/engage` and `/groups` take a JSON array of updates, each with the project's `$token`, the
profile's id (`$distinct_id`, or `$group_key` and `$group_id`) and exactly one operation. As
Mixpanel does, they answer 200 even to a refused batch: `{"error": …, "status": 0}` with
`verbose=1` (else `0`), and `{"error": null, "status": 1}` (else `1`) when it was applied.
"""

import base64
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

from tests.sink import Answer, Arrival
from tests.vendors import VendorDouble

MAX_ITEMS = 2000
MAX_BYTES = 10 * 1024 * 1024
PLACEHOLDER_IDS = frozenset({
    "", "0", "-1", "00000000-0000-0000-0000-000000000000", "<nil>", "[]", "{}", "anon",
    "anonymous", "nil", "none", "null", "n/a", "na", "undefined", "unknown", "lmy47d",
})  # fmt: skip
_INSERT_ID = re.compile(r"^[A-Za-z0-9-]{1,36}$")
_EARLIEST = 31_536_000  # 1971-01-01, in seconds
_PROFILE_OPS = ("$set", "$set_once", "$add", "$union", "$append", "$remove", "$unset", "$delete")
_GROUP_OPS = ("$set", "$set_once", "$union", "$remove", "$unset", "$delete")
_THROTTLED = "Project exceeded rate limits. Please retry the request with exponential backoff."


def _answer(status: int, text: str, **fields: Any) -> Answer:
    return Answer.json(status, {"code": status, "status": text, **fields})


@dataclass
class MixpanelDouble(VendorDouble):
    """`events` holds every event Mixpanel ingested, `profiles` and `groups` every update it
    applied; `imports` the number of events in each `/import` request that got an answer."""

    token: str
    service_account: tuple[str, str] | None = None  # (user, secret): /import must use it
    project_id: str | None = None
    revoked: bool = False  # the credentials were revoked: every request refused for good
    events: list[dict[str, Any]] = field(default_factory=list)
    profiles: list[dict[str, Any]] = field(default_factory=list)
    groups: list[dict[str, Any]] = field(default_factory=list)
    imports: list[int] = field(default_factory=list)

    def insert_ids(self) -> list[str]:
        with self._lock:
            return [e["properties"].get("$insert_id") for e in self.events]

    def __call__(self, arrival: Arrival) -> Answer:
        if arrival.method != "POST":
            return Answer(405, body="Method Not Allowed")
        if self.throttled():  # past the project's rate limit
            return _answer(429, "Too Many Requests", error=_THROTTLED)
        path = arrival.path.rstrip("/")
        if path == "/import":
            return self._import(arrival)
        if path == "/engage":
            return self._updates(arrival, self._profile_error, self.profiles)
        if path == "/groups":
            return self._updates(arrival, self._group_error, self.groups)
        return Answer(404, body="Not Found")

    # /import

    def _import(self, arrival: Arrival) -> Answer:
        refused = self._auth(arrival)
        if refused is not None:
            return refused
        if len(arrival.body) > MAX_BYTES:
            return _answer(413, "Request Entity Too Large", error="request body too large")
        events = _array(arrival)
        if events is None or not all(isinstance(e, dict) for e in events):
            return _answer(400, "Bad Request", error="unable to parse body as a JSON array")
        if len(events) > MAX_ITEMS:
            return _answer(400, "Bad Request", error=f"more than {MAX_ITEMS} events")
        failed = []
        for index, event in enumerate(events):
            problem = _event_problem(event, self.token)
            if problem is not None:
                insert_id = _properties(event).get("$insert_id")
                failed.append({"index": index, "$insert_id": insert_id, **problem})
        bad = {record["index"] for record in failed}
        good = [e for i, e in enumerate(events) if i not in bad]
        with self._lock:
            self.events.extend(good)
            self.imports.append(len(events))
        if failed and arrival.query.get("strict") == "1":
            error = "some data points in the request failed validation"
            return _answer(
                400,
                "Bad Request",
                error=error,
                failed_records=failed,
                num_records_imported=len(good),
            )
        return _answer(200, "OK", num_records_imported=len(good))

    def _auth(self, arrival: Arrival) -> Answer | None:
        scheme, _, encoded = arrival.header("authorization").partition(" ")
        try:
            user, _, secret = base64.b64decode(encoded, validate=True).decode().partition(":")
        except ValueError:
            user = secret = ""
        project = arrival.query.get("project_id")
        if self.service_account is not None:
            expected, wanted_project = self.service_account, self.project_id
        else:
            expected, wanted_project = (self.token, ""), None
        if self.revoked or scheme.lower() != "basic" or (user, secret) != expected:
            return _answer(401, "Unauthorized", error="Invalid credentials")
        if project != wanted_project:
            return _answer(401, "Unauthorized", error="project_id is missing or not this account's")
        return None

    # /engage and /groups

    def _updates(self, arrival: Arrival, problem: Any, into: list[dict[str, Any]]) -> Answer:
        verbose = arrival.query.get("verbose") == "1"
        updates = _array(arrival)
        error: str | None
        if updates is None or not updates or len(updates) > MAX_ITEMS:
            error = f"data must be a JSON array of 1 to {MAX_ITEMS} updates"
        else:
            error = next((e for u in updates if (e := problem(u)) is not None), None)
        if error is None:
            with self._lock:
                into.extend(updates or [])
        if not verbose:
            return Answer(200, body="0" if error else "1")
        return Answer.json(200, {"error": error, "status": 0 if error else 1})

    def _owned(self, update: Any) -> str | None:
        if not isinstance(update, dict):
            return "each update must be a JSON object"
        if self.revoked or update.get("$token") != self.token:
            return "$token, missing or invalid"
        return None

    def _profile_error(self, update: Any) -> str | None:
        if (error := self._owned(update)) is not None:
            return error
        distinct = update.get("$distinct_id")
        if not isinstance(distinct, str) or distinct.lower() in PLACEHOLDER_IDS:
            return "$distinct_id, missing or invalid"
        ops = [op for op in _PROFILE_OPS if op in update]
        if len(ops) != 1:
            return "exactly one operation is required per update"
        add = update.get("$add")
        if add is not None and not (
            isinstance(add, dict)
            and all(isinstance(v, int | float) and not isinstance(v, bool) for v in add.values())
        ):
            return "$add values must be numbers"
        return None

    def _group_error(self, update: Any) -> str | None:
        if (error := self._owned(update)) is not None:
            return error
        if not isinstance(update.get("$group_key"), str) or not update["$group_key"]:
            return "$group_key, missing or invalid"
        if not isinstance(update.get("$group_id"), str | int) or update["$group_id"] == "":
            return "$group_id, missing or invalid"
        if len([op for op in _GROUP_OPS if op in update]) != 1:
            return "exactly one operation is required per update"
        return None


def _array(arrival: Arrival) -> list[Any] | None:
    if not arrival.header("content-type").startswith("application/json"):
        return None
    try:
        body = json.loads(arrival.body)
    except ValueError:
        return None
    return body if isinstance(body, list) else None


def _properties(event: dict[str, Any]) -> dict[str, Any]:
    properties = event.get("properties")
    return properties if isinstance(properties, dict) else {}


def _problem(field: str, message: str) -> dict[str, str]:
    return {"field": field, "message": f"'{field}' is invalid: {message}"}


def _event_problem(event: dict[str, Any], token: str) -> dict[str, str] | None:
    """Why Mixpanel refuses one event, as a failed record's `field` and `message`."""
    name, properties = event.get("event"), event.get("properties")
    if not isinstance(name, str) or not name:
        return _problem("event", "must be a non-empty string")
    if not isinstance(properties, dict):
        return _problem("properties", "must be an object")
    if properties.get("token", token) != token:
        return _problem("properties.token", "does not belong to this project")
    if name == "$merge":
        ids = properties.get("$distinct_ids")
        ok = isinstance(ids, list) and len(ids) == 2 and all(isinstance(i, str) for i in ids)
        return None if ok else _problem("properties.$distinct_ids", "must list two ids")
    if name == "$create_alias":
        ok = all(isinstance(properties.get(k), str) for k in ("distinct_id", "alias"))
        return None if ok else _problem("properties.alias", "needs distinct_id and alias")
    return _regular_problem(properties)


def _regular_problem(properties: dict[str, Any]) -> dict[str, str] | None:
    stamp = properties.get("time")
    if not isinstance(stamp, int | float) or isinstance(stamp, bool):
        return _problem("properties.time", "must be specified as seconds since epoch")
    seconds = stamp / 1000 if stamp > 100_000_000_000 else stamp
    if seconds < _EARLIEST or seconds > time.time() + 3600:
        return _problem("properties.time", "must be after 1971 and at most an hour ahead")
    insert_id = properties.get("$insert_id")
    if not isinstance(insert_id, str) or not _INSERT_ID.match(insert_id):
        return _problem("properties.$insert_id", "must be 1 to 36 letters, digits or '-'")
    distinct = properties.get("distinct_id")
    if not isinstance(distinct, str) or distinct.lower() in PLACEHOLDER_IDS - {""}:
        return _problem("properties.distinct_id", "is a placeholder value, not an id")
    if len(properties) > 255:
        return _problem("properties", "has more than 255 properties")
    return None
