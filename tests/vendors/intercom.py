"""A double of Intercom's REST API as a `tests.sink.Sink` behaviour: the 2.x endpoints (contacts,
their companies, events, companies, tags) and the legacy 1.4 ones (users, events, companies).

Every request needs `Authorization: Bearer <token>` (else 401 `unauthorized`, "Access Token
Invalid") and an `Intercom-Version` header naming a version that has the endpoint (`/users` is
1.4 only, contacts 2.x only); bodies must be JSON objects. Answers are Intercom's: the object
written (200), 202 with no body for events, and `{"type": "error.list", "errors": [{code,
message}]}` for refusals — 400 `parameter_not_found`/`parameter_invalid`, 404 `not_found` or
`company_not_found`, 409 `conflict` when a contact is created with the email or external id of
one that exists, 429 `rate_limit_exceeded` with the `X-RateLimit-*` headers (`X-RateLimit-Reset`:
the Unix time the window ends, `window` seconds from now; `resets` records each one sent).

Intercom's contact search reads an index that lags behind its writes: `index_lag` is the
number of searches a contact created (or `seed`ed) stays invisible to.
"""

import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any

from tests.sink import Answer, Arrival
from tests.vendors import VendorDouble

V2 = "2.10"
V1 = "1.4"
RATE_LIMIT = 10_000  # calls per minute per app, enforced in 10-second windows
CONTACT_FIELDS = frozenset({
    "role", "external_id", "email", "phone", "name", "avatar", "signed_up_at", "last_seen_at",
    "owner_id", "unsubscribed_from_emails", "custom_attributes",
})  # fmt: skip
COMPANY_FIELDS = frozenset({
    "company_id", "name", "website", "plan", "size", "industry", "monthly_spend",
    "remote_created_at", "custom_attributes",
})  # fmt: skip
USER_FIELDS = frozenset({
    "user_id", "email", "phone", "name", "signed_up_at", "last_seen_user_agent",
    "update_last_request_at", "custom_attributes", "companies", "last_request_at",
})  # fmt: skip


def error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Answer:
    body = {"type": "error.list", "request_id": "req-0001", "errors": [
        {"code": code, "message": message}]}  # fmt: skip
    return Answer(status, {"Content-Type": "application/json", **(headers or {})},
                  body=json.dumps(body))  # fmt: skip


def ok(value: Any) -> Answer:
    return Answer.json(200, value)


@dataclass
class IntercomDouble(VendorDouble):
    """`contacts` (2.x, by Intercom id), `users` (1.4, by user_id or email), `companies` (by
    Intercom id), `attached` (contact id, company id) pairs, `tags` (name, company id) pairs and
    `events` hold what Intercom recorded; `searches` counts contact searches."""

    token: str
    index_lag: int = 0
    window: int = 10  # seconds until a throttled client may call again
    resets: list[int] = field(default_factory=list)
    contacts: dict[str, dict[str, Any]] = field(default_factory=dict)
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    companies: dict[str, dict[str, Any]] = field(default_factory=dict)
    attached: set[tuple[str, str]] = field(default_factory=set)
    tags: list[tuple[str, str]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    searches: int = 0
    _visible_after: dict[str, int] = field(default_factory=dict, repr=False)
    _ids: Any = field(default_factory=lambda: itertools.count(1), repr=False)

    def seed(self, **contact: Any) -> str:
        """A contact that exists before the test (subject to the index lag)."""
        with self._lock:
            return self._create(contact)

    def company(self, company_id: str) -> dict[str, Any] | None:
        with self._lock:
            return next((c for c in self.companies.values() if c["company_id"] == company_id),
                        None)  # fmt: skip

    def __call__(self, arrival: Arrival) -> Answer:
        if self.throttled():
            reset = int(time.time()) + self.window
            with self._lock:
                self.resets.append(reset)
            return error(429, "rate_limit_exceeded", "Exceeded rate limit of 1666 in 10_seconds",
                         {"X-RateLimit-Limit": str(RATE_LIMIT // 6), "X-RateLimit-Remaining": "0",
                          "X-RateLimit-Reset": str(reset)})  # fmt: skip
        scheme, _, token = arrival.header("authorization").partition(" ")
        if scheme != "Bearer" or token != self.token:
            return error(401, "unauthorized", "Access Token Invalid")
        version = arrival.header("intercom-version")
        if version not in (V1, V2):
            return error(400, "intercom_version_invalid", f"Requested version {version!r} ...")
        body: Any = None
        if arrival.method in ("POST", "PUT"):
            try:
                body = json.loads(arrival.body)
            except ValueError:
                return error(400, "parameter_invalid", "Request body is not valid JSON")
            if not isinstance(body, dict) or not arrival.header("content-type").startswith(
                "application/json"
            ):
                return error(400, "parameter_invalid", "Request body must be a JSON object")
        with self._lock:
            return self._route(arrival, version, body)

    def _route(self, arrival: Arrival, version: str, body: Any) -> Answer:
        parts = arrival.path.strip("/").split("/")
        route = (arrival.method, parts[0], len(parts))
        if version == V1:
            v1 = {("POST", "users", 1): self._user, ("POST", "events", 1): self._event_v1,
                  ("POST", "companies", 1): self._company_upsert, ("POST", "tags", 1): self._tag,
                  ("GET", "companies", 1): self._company_read}  # fmt: skip
            handler = v1.get(route)
            return handler(arrival, body) if handler else error(404, "not_found", "Not Found")
        if route == ("POST", "contacts", 2) and parts[1] == "search":
            return self._search(body)
        v2 = {("POST", "contacts", 1): self._contact_create, ("PUT", "contacts", 2): self._update,
              ("POST", "contacts", 3): self._attach, ("DELETE", "contacts", 4): self._detach,
              ("POST", "events", 1): self._event_v2,
              ("POST", "companies", 1): self._company_upsert,
              ("GET", "companies", 1): self._company_read,
              ("POST", "tags", 1): self._tag}  # fmt: skip
        handler = v2.get(route)
        return handler(arrival, body) if handler else error(404, "not_found", "Not Found")

    # contacts (2.x)

    def _create(self, contact: dict[str, Any]) -> str:
        contact_id = f"6{next(self._ids):017x}"
        self.contacts[contact_id] = {"type": "contact", "id": contact_id, "role": "user", **contact}
        self._visible_after[contact_id] = self.searches + self.index_lag
        return contact_id

    def _search(self, body: dict[str, Any]) -> Answer:
        query = body.get("query")
        if not isinstance(query, dict):
            return error(400, "parameter_invalid", "query is required")
        terms = query.get("value")
        if (
            not isinstance(terms, list)
            or query.get("operator") not in ("AND", "OR")
            or not all(
                isinstance(t, dict) and t.get("operator") == "=" and isinstance(t.get("field"), str)
                for t in terms
            )
        ):
            return error(400, "parameter_invalid", "query is not a valid search query")
        self.searches += 1
        pick = any if query["operator"] == "OR" else all
        found = [
            c for cid, c in self.contacts.items()
            if self._visible_after[cid] < self.searches
            and pick(_matches(c, t["field"], t.get("value")) for t in terms)
        ]  # fmt: skip
        pages = {"type": "pages", "page": 1, "per_page": 50, "total_pages": 1 if found else 0}
        return ok({"type": "list", "total_count": len(found), "pages": pages, "data": found})

    def _contact_create(self, arrival: Arrival, body: dict[str, Any]) -> Answer:
        if (refused := _unknown(body, CONTACT_FIELDS)) is not None:
            return refused
        if not body.get("email") and not body.get("external_id"):
            return error(400, "parameter_not_found", "email or external_id is required")
        for cid, contact in self.contacts.items():
            same_email = body.get("email") and _matches(contact, "email", body["email"])
            if same_email or (body.get("external_id") and
                              contact.get("external_id") == body["external_id"]):  # fmt: skip
                return error(409, "conflict", f"A contact matching those details already exists "
                                              f"with id={cid}")  # fmt: skip
        return ok(self.contacts[self._create(body)])

    def _update(self, arrival: Arrival, body: dict[str, Any]) -> Answer:
        contact = self.contacts.get(arrival.path.rstrip("/").split("/")[-1])
        if contact is None:
            return error(404, "not_found", "User Not Found")
        if (refused := _unknown(body, CONTACT_FIELDS)) is not None:
            return refused
        custom = {**contact.get("custom_attributes", {}), **body.get("custom_attributes", {})}
        contact.update(body)
        contact["custom_attributes"] = custom
        return ok(contact)

    def _attach(self, arrival: Arrival, body: dict[str, Any]) -> Answer:
        _, contact_id, _ = arrival.path.strip("/").split("/")
        if contact_id not in self.contacts:
            return error(404, "not_found", "User Not Found")
        company_id = body.get("id")
        if company_id not in self.companies:
            return error(404, "company_not_found", "Company Not Found")
        self.attached.add((contact_id, company_id))
        return ok(self.companies[company_id])

    def _detach(self, arrival: Arrival, body: Any) -> Answer:
        _, contact_id, _, company_id = arrival.path.strip("/").split("/")
        if contact_id not in self.contacts:
            return error(404, "not_found", "User Not Found")
        if (contact_id, company_id) not in self.attached:
            return error(404, "company_not_found", "Company Not Found")
        self.attached.discard((contact_id, company_id))
        return ok(self.companies[company_id])

    # events

    def _event_v2(self, arrival: Arrival, body: dict[str, Any]) -> Answer:
        return self._event(body, "created_at")

    def _event_v1(self, arrival: Arrival, body: dict[str, Any]) -> Answer:
        return self._event(body, "created")

    def _event(self, body: dict[str, Any], created: str) -> Answer:
        if not isinstance(body.get("event_name"), str) or not body["event_name"]:
            return error(400, "parameter_not_found", "event_name is required")
        if not isinstance(body.get(created), int):
            return error(400, "parameter_invalid", f"{created} must be a Unix timestamp")
        if not (body.get("user_id") or body.get("email") or body.get("id")):
            return error(400, "parameter_not_found", "user_id, id or email is required")
        metadata = body.get("metadata", {})
        if not isinstance(metadata, dict) or not all(map(_flat_metadata, metadata.values())):
            return error(400, "parameter_invalid", "metadata values must be flat")
        self.events.append(body)
        return Answer(202, body="")

    # companies and tags

    def _company_upsert(self, arrival: Arrival, body: dict[str, Any]) -> Answer:
        if (refused := _unknown(body, COMPANY_FIELDS)) is not None:
            return refused
        if not body.get("company_id"):
            return error(400, "parameter_not_found", "company not specified")
        return ok(self._upsert(body))

    def _upsert(self, fields: dict[str, Any]) -> dict[str, Any]:
        found = next((c for c in self.companies.values()
                      if c["company_id"] == fields["company_id"]), None)  # fmt: skip
        if found is None:
            company_id = f"c{next(self._ids):019x}"
            found = self.companies[company_id] = {"type": "company", "id": company_id}
        found.update(fields)
        return found

    def _company_read(self, arrival: Arrival, body: Any) -> Answer:
        wanted = arrival.query.get("company_id"), arrival.query.get("name")
        key = "company_id" if wanted[0] is not None else "name"
        value = wanted[0] if wanted[0] is not None else wanted[1]
        found = next((c for c in self.companies.values() if c.get(key) == value), None)
        if value is None or found is None:
            return error(404, "company_not_found", "Company Not Found")
        return ok(found)

    def _tag(self, arrival: Arrival, body: dict[str, Any]) -> Answer:
        companies = body.get("companies")
        if not isinstance(body.get("name"), str) or not isinstance(companies, list):
            return error(400, "parameter_invalid", "name and companies are required")
        ids = [str(c.get("id")) for c in companies if isinstance(c, dict)]
        if len(ids) != len(companies) or any(i not in self.companies for i in ids):
            return error(404, "company_not_found", "Company Not Found")
        self.tags.extend((body["name"], i) for i in ids)
        return ok({"type": "tag", "id": f"t-{body['name']}", "name": body["name"]})

    # users (1.4)

    def _user(self, arrival: Arrival, body: dict[str, Any]) -> Answer:
        if (refused := _unknown(body, USER_FIELDS)) is not None:
            return refused
        key = body.get("user_id") or body.get("email")
        if not key:
            return error(400, "parameter_not_found", "user_id or email is required")
        user = self.users.setdefault(key, {"type": "user", "id": f"u{len(self.users)}"})
        companies = body.pop("companies", [])
        user.update(body)
        for company in companies if isinstance(companies, list) else []:
            if not isinstance(company, dict) or not company.get("company_id"):
                return error(400, "parameter_invalid", "each company needs a company_id")
            self._upsert({k: v for k, v in company.items() if k != "remove"})
            user.setdefault("companies", []).append(company["company_id"])
        return ok(user)


def _flat_metadata(value: Any) -> bool:
    """A metadata value Intercom takes: a plain value, a monetary amount or a rich link."""
    if isinstance(value, dict):
        return {"amount", "currency"} <= value.keys() or {"url", "value"} <= value.keys()
    return not isinstance(value, list)


def _matches(contact: dict[str, Any], name: str, value: Any) -> bool:
    found = contact.get(name)
    if name == "email" and isinstance(found, str) and isinstance(value, str):
        return found.lower() == value.lower()
    return found is not None and found == value


def _unknown(body: dict[str, Any], known: frozenset[str]) -> Answer | None:
    """Intercom refuses fields it does not know, and nested custom attribute values."""
    extra = sorted(set(body) - known)
    if extra:
        return error(400, "parameter_invalid", f"{extra[0]} is not a valid parameter")
    custom = body.get("custom_attributes", {})
    if not isinstance(custom, dict) or any(isinstance(v, dict | list) for v in custom.values()):
        return error(400, "parameter_invalid", "custom attributes must be flat")
    return None
