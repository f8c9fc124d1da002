"""A double of Klaviyo's server API (profiles, events, list subscriptions), as a
`tests.sink.Sink` behaviour.

Every request needs `Authorization: Klaviyo-API-Key <private key>` (else 401
`not_authenticated`; a revoked key: 403 `permission_denied`), a `revision` header naming a
revision Klaviyo has (else 400) and a JSON body. Errors are JSON:API documents:
`{"errors": [{id, status, code, title, detail, source: {pointer}}]}`; past the rate limit the
answer is 429 `throttled` with `Retry-After`.

* `POST /api/profile-import` takes `{data: {type: "profile", id?, attributes, meta?}}` whose
  attributes name the profile (email, phone_number, external_id, or `id`); an email must look
  like one and a phone number be E.164. The answer is 201 (created) or 200 (updated) with the
  profile.
* `POST /api/profiles` (the 2023 profile API) creates a profile: 201 with its new id, or 409
  `duplicate_profile` with `errors[0].meta.duplicate_profile_id` when a profile has its email,
  phone number or external id. `PATCH /api/profiles/<id>` updates one (`data.id` must be the
  id of the URL; an unknown id is 404): 200 with the profile.
* `POST /api/events` takes `{data: {type: "event", attributes: {metric, profile, properties,
  …}}}`: from revision 2023-10-15 `metric` and `profile` are JSON:API documents, before that
  the flat `{metric: {name}, profile: {$email, …}}`. 202, empty.
* `POST /api/profile-subscription-bulk-create-jobs` / `-delete-jobs` take a job for one list
  (`relationships.list`, or the 2023 `attributes.list_id`) and up to 1000 profiles, each with an
  email or phone. A profile Klaviyo refuses (an invalid email) refuses the whole job, the error
  pointing at it (`/data/attributes/profiles/data/<i>/attributes/email`): nothing of the job
  is applied. 202, empty.
"""

import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from tests.sink import Answer, Arrival
from tests.vendors import VendorDouble

REVISIONS = frozenset({"2023-02-22", "2023-10-15", "2024-10-15", "2026-04-15"})
MAX_JOB_PROFILES = 1000
_JOB_TYPES = {
    "/api/profile-subscription-bulk-create-jobs": ("profile-subscription-bulk-create-job", True),
    "/api/profile-subscription-bulk-delete-jobs": ("profile-subscription-bulk-delete-job", False),
}
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")


def _error(status: int, code: str, title: str, detail: str, pointer: str = "/data/") -> Answer:
    error = {"id": str(uuid.uuid4()), "status": status, "code": code, "title": title,
             "detail": detail, "source": {"pointer": pointer}}  # fmt: skip
    return Answer.json(status, {"errors": [error]})


def _invalid(detail: str, pointer: str) -> Answer:
    return _error(400, "invalid", "Invalid input.", detail, pointer)


def _dig(node: Any, path: str) -> Any:
    for key in path.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node


@dataclass
class KlaviyoDouble(VendorDouble):
    """`profiles` holds every profile imported, `events` every event created; `subscriptions`
    one `(list id, subscribed?, profile attributes)` per profile of an applied job; `jobs` the
    number of profiles in each subscription job answered (applied or not)."""

    private_key: str
    lists: frozenset[str] = frozenset()  # the account's lists (empty: any list exists)
    revoked: bool = False
    profiles: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    subscriptions: list[tuple[str, bool, dict[str, Any]]] = field(default_factory=list)
    jobs: list[int] = field(default_factory=list)
    revisions: list[str] = field(default_factory=list)  # of every accepted request
    created: list[dict[str, Any]] = field(default_factory=list)  # POST /api/profiles, created
    updates: list[dict[str, Any]] = field(default_factory=list)  # PATCH /api/profiles/<id>
    _known: set[str] = field(default_factory=set)  # profile keys seen (for 200 vs 201)
    _ids: dict[str, str] = field(default_factory=dict)  # "email:…", … → the 2023 profile id
    _stored: dict[str, dict[str, Any]] = field(default_factory=dict)  # 2023 id → attributes

    def __call__(self, arrival: Arrival) -> Answer:
        path = arrival.path.rstrip("/")
        updating = arrival.method == "PATCH" and path.startswith("/api/profiles/")
        if arrival.method != "POST" and not updating:
            return _error(405, "method_not_allowed", "Method not allowed.", "Use POST.")
        if self.throttled():
            return Answer(
                429,
                {"Content-Type": "application/json", "Retry-After": "1"},
                body=json.dumps({"errors": [{"id": str(uuid.uuid4()), "status": 429,
                                             "code": "throttled", "title": "Request was throttled.",
                                             "detail": "Request was throttled. Expected available "
                                             "in 1 second."}]}),
            )  # fmt: skip
        refused = self._auth(arrival)
        if refused is not None:
            return refused
        revision = arrival.header("revision")
        if revision not in REVISIONS:
            return _invalid(f"Invalid revision header {revision!r}.", "/headers/revision")
        try:
            body = json.loads(arrival.body)
        except ValueError:
            return _error(400, "parse_error", "Malformed JSON.", "The body is not valid JSON.")
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict):
            return _invalid("The body must be a JSON:API document.", "/data")
        if updating:
            answer = self._update(data, path.removeprefix("/api/profiles/"))
        elif path == "/api/profiles":
            answer = self._create(data)
        elif path == "/api/profile-import":
            answer = self._profile(data)
        elif path == "/api/events":
            answer = self._event(data, revision)
        elif path in _JOB_TYPES:
            answer = self._job(data, *_JOB_TYPES[path])
        else:
            return _error(404, "not_found", "Not found.", f"No route for {path}.")
        if answer.status < 300:
            with self._lock:
                self.revisions.append(revision)
        return answer

    def _auth(self, arrival: Arrival) -> Answer | None:
        scheme, _, key = arrival.header("authorization").partition(" ")
        if scheme != "Klaviyo-API-Key" or key != self.private_key:
            return _error(401, "not_authenticated", "Authentication credentials were not "
                          "provided.", "Missing or invalid private key.")  # fmt: skip
        if self.revoked:
            return _error(403, "permission_denied", "You do not have permission to perform "
                          "this action.", "The private key was revoked.")  # fmt: skip
        return None

    # Profiles

    def _profile(self, data: dict[str, Any]) -> Answer:
        if data.get("type") != "profile":
            return _invalid("data.type must be 'profile'.", "/data/type")
        attributes = data.get("attributes")
        if not isinstance(attributes, dict):
            return _invalid("attributes are required.", "/data/attributes")
        problem = _identity_problem(attributes, "/data/attributes", data.get("id"))
        if problem is not None:
            return problem
        key = str(data.get("id") or attributes.get("external_id") or attributes.get("email")
                  or attributes.get("phone_number"))  # fmt: skip
        with self._lock:
            created = key not in self._known
            self._known.add(key)
            self.profiles.append(data)
        document = {"type": "profile", "id": key, "attributes": attributes}
        return Answer.json(201 if created else 200, {"data": document})

    # Profiles, the 2023 way

    def _create(self, data: dict[str, Any]) -> Answer:
        if data.get("type") != "profile":
            return _invalid("data.type must be 'profile'.", "/data/type")
        attributes = data.get("attributes")
        if not isinstance(attributes, dict):
            return _invalid("attributes are required.", "/data/attributes")
        problem = _identity_problem(attributes, "/data/attributes", None)
        if problem is not None:
            return problem
        keys = [f"{k}:{attributes[k]}" for k in ("email", "phone_number", "external_id")
                if attributes.get(k)]  # fmt: skip
        with self._lock:
            existing = next((self._ids[k] for k in keys if k in self._ids), None)
            if existing is None:
                profile_id = "01" + uuid.uuid4().hex[:24].upper()
                self._ids.update((k, profile_id) for k in keys)
                self._stored[profile_id] = dict(attributes)
                self.created.append(data)
        if existing is not None:
            error = {"id": str(uuid.uuid4()), "status": 409, "code": "duplicate_profile",
                     "title": "Conflict.", "detail": "A profile already exists with one of "
                     "these identifiers.", "source": {"pointer": "/data/attributes"},
                     "meta": {"duplicate_profile_id": existing}}  # fmt: skip
            return Answer.json(409, {"errors": [error]})
        document = {"type": "profile", "id": profile_id, "attributes": attributes}
        return Answer.json(201, {"data": document})

    def _update(self, data: dict[str, Any], profile_id: str) -> Answer:
        if data.get("type") != "profile":
            return _invalid("data.type must be 'profile'.", "/data/type")
        if data.get("id") != profile_id:
            return _invalid("data.id must be the id of the URL.", "/data/id")
        attributes = data.get("attributes")
        if not isinstance(attributes, dict):
            return _invalid("attributes are required.", "/data/attributes")
        problem = _identity_problem(attributes, "/data/attributes", profile_id)
        if problem is not None:
            return problem
        with self._lock:
            stored = self._stored.get(profile_id)
            if stored is not None:
                stored.update(attributes)
                self.updates.append(data)
        if stored is None:
            return _error(404, "not_found", "Not found.", f"No profile {profile_id!r}.")
        return Answer.json(200, {"data": {"type": "profile", "id": profile_id,
                                          "attributes": stored}})  # fmt: skip

    # Events

    def _event(self, data: dict[str, Any], revision: str) -> Answer:
        if data.get("type") != "event":
            return _invalid("data.type must be 'event'.", "/data/type")
        attributes = data.get("attributes")
        if not isinstance(attributes, dict):
            return _invalid("attributes are required.", "/data/attributes")
        if not isinstance(attributes.get("properties"), dict):
            return _invalid("properties must be an object.", "/data/attributes/properties")
        if revision < "2023-10-15":
            name, profile = _dig(attributes, "metric.name"), attributes.get("profile")
            pointer = "/data/attributes/profile"
            ids = {"email": "$email", "phone_number": "$phone_number", "external_id": "$id"}
            if isinstance(profile, dict):
                profile = {k: profile[v] for k, v in ids.items() if v in profile}
        else:
            name = _dig(attributes, "metric.data.attributes.name")
            profile = _dig(attributes, "profile.data.attributes")
            pointer = "/data/attributes/profile/data/attributes"
        if not isinstance(name, str) or not name:
            return _invalid("A metric name is required.", "/data/attributes/metric")
        if not isinstance(profile, dict):
            return _invalid("A profile is required.", pointer)
        profile_id = _dig(attributes, "profile.data.id")
        problem = _identity_problem(profile, pointer, profile_id, anonymous=True)
        if problem is not None:
            return problem
        with self._lock:
            self.events.append(attributes)
        return Answer(202, body="")

    # Subscription jobs

    def _job(self, data: dict[str, Any], kind: str, subscribe: bool) -> Answer:
        if data.get("type") != kind:
            return _invalid(f"data.type must be {kind!r}.", "/data/type")
        attributes = data.get("attributes")
        if not isinstance(attributes, dict):
            return _invalid("attributes are required.", "/data/attributes")
        list_id = _dig(data, "relationships.list.data.id")
        if "subscriptions" in attributes:  # the 2023-02-22 shape
            entries, pointer = attributes["subscriptions"], "/data/attributes/subscriptions"
            list_id = attributes.get("list_id")
        else:
            entries, pointer = _dig(attributes, "profiles.data"), "/data/attributes/profiles/data"
        if not isinstance(list_id, str) or (self.lists and list_id not in self.lists):
            return _error(404, "not_found", "Not found.", f"List {list_id!r} does not exist.",
                          "/data/relationships/list/data/id")  # fmt: skip
        if not isinstance(entries, list) or not 1 <= len(entries) <= MAX_JOB_PROFILES:
            return _invalid(f"1 to {MAX_JOB_PROFILES} profiles are required.", pointer)
        with self._lock:
            self.jobs.append(len(entries))
        profiles = []
        for index, entry in enumerate(entries):
            profile = entry.get("attributes", entry) if isinstance(entry, dict) else None
            where = f"{pointer}/{index}" + ("/attributes" if pointer.endswith("/data") else "")
            if not isinstance(profile, dict):
                return _invalid("Each profile must be an object.", where)
            problem = _subscriber_problem(profile, where, entry.get("id"), subscribe)
            if problem is not None:
                return problem  # the job is refused whole
            profiles.append(profile)
        with self._lock:
            self.subscriptions.extend((list_id, subscribe, p) for p in profiles)
        return Answer(202, body="")


def _identity_problem(
    attributes: dict[str, Any], pointer: str, profile_id: Any, *, anonymous: bool = False
) -> Answer | None:
    """Why Klaviyo refuses a profile's identity, or None."""
    email, phone = attributes.get("email"), attributes.get("phone_number")
    if email is not None and not (isinstance(email, str) and _EMAIL.match(email)):
        return _invalid(f"Invalid email address: {email!r}.", f"{pointer}/email")
    if phone is not None and not (
        isinstance(phone, str) and _E164.match(re.sub(r"[^\d+]", "", phone))
    ):
        return _invalid(
            "Invalid phone number format (Example of a valid format: +12345678901).",
            f"{pointer}/phone_number",
        )
    names = ["email", "phone_number", "external_id", *(["anonymous_id"] if anonymous else [])]
    if profile_id is None and not any(attributes.get(k) for k in names):
        return _invalid("One of email, phone_number or external_id is required.", pointer)
    return None


def _subscriber_problem(
    profile: dict[str, Any], pointer: str, profile_id: Any, subscribe: bool
) -> Answer | None:
    problem = _identity_problem({k: v for k, v in profile.items() if k != "external_id"},
                                pointer, profile_id if subscribe else None)  # fmt: skip
    if problem is not None:
        return problem
    subscriptions = profile.get("subscriptions", {})
    if not isinstance(subscriptions, dict) or not all(
        isinstance(s, dict) for s in subscriptions.values()
    ):
        return _invalid("subscriptions must map channels to objects.", f"{pointer}/subscriptions")
    consents = [_dig(s, "marketing.consent") for s in subscriptions.values()]
    wanted = "SUBSCRIBED" if subscribe else "UNSUBSCRIBED"
    if any(consent != wanted for consent in consents):
        return _invalid(f"Marketing consent must be {wanted}.", f"{pointer}/subscriptions")
    return None
