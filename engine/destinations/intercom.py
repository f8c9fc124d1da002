"""Intercom: contacts, events and companies through Intercom's REST API, version 2.10 (`apiVersion:
v2`, the default) or the legacy 1.4 (`v1`), with RudderStack's `intercom` keys.

Hosts: `https://api.intercom.io`, `api.eu.intercom.io` or `api.au.intercom.io` by `apiServer`
(standard/eu/au) for v2; v1 always uses the standard host, as RudderStack does; the `endpoint`
setting replaces either. Every request carries `Authorization: Bearer <apiKey>` (an access
token), `Accept: application/json` and `Intercom-Version: 2.10` or `1.4`.

Who: `userId` (else the traits' `userId` or `id`), else `anonymousId` with `sendAnonymousId`; the
email is the traits' (or the properties') `email`. identify and track need one of the two.

v2, where the contact's Intercom id is needed, the request is completed when it is sent
(`resolve`, asked again on every attempt):
* identify → a contact `{external_id, email, phone, name (else first + last name), avatar, role,
  owner_id (a number), last_seen_at, signed_up_at (createdAt), unsubscribed_from_emails,
  custom_attributes}`; custom attributes are the other traits, nested values flattened with
  `_`. Stored as `POST /contacts`; when sent, Intercom is searched (`POST /contacts/search`, OR
  of the email, lower-cased, and the external id; `integrations.INTERCOM.lookup` names another
  field to search instead of the email) and a contact found is updated (`PUT /contacts/<id>`)
  instead. With `traits.company.remove: true` and a contact found, the company (by its `id`,
  else its `name`: `GET /companies`) is detached from it first (`DELETE
  /contacts/<id>/companies/<company id>`; already detached counts as done).
* track → `POST /events {event_name, created_at (seconds), user_id, email, metadata}`: metadata
  are the properties, nested values flattened with `.` except Intercom's monetary amounts
  (`{amount, currency}`) and rich links (`{url, value}`), which it takes as objects.
* group → a company upsert `POST /companies {company_id: groupId, name, website, plan, size,
  industry, monthly_spend, remote_created_at, custom_attributes}` (the other traits, flattened
  with `_`). When sent, the user's contact is searched as for identify: found, the upsert is made
  while resolving (idempotent by `company_id`, so a retry repeats it harmlessly) and the request
  sent is the attachment `POST /contacts/<contact id>/companies {id}` — the request that
  completes the work; not found, the upsert itself is sent (RudderStack marks both outputs
  "suppressed" because its transformer already made the calls; here each job sends one
  request). Each of `context.traits.tags` then tags the company: `POST /tags {name,
  companies: [{id}]}`, the id read by `GET /companies?company_id=` (kept 5 minutes).

v1 (no look-ups but the tags'): identify → `POST /users {user_id, email, phone, name,
signed_up_at, last_seen_user_agent (context.userAgent), update_last_request_at
(updateLastRequestAt), custom_attributes (flattened with `.` and `[i]`), companies (from
`traits.company`: its `id`, else the MD5 of its name)}`; track → `POST /events` with `created`;
group → `POST /companies` then `POST /users {user_id | email, companies: [{company_id, name}]}`.
page, screen and alias are not Intercom calls: filtered.

What a look-up must carry that the vendor request does not (whom to search, which company to
detach) travels in the stored request's `hints` (`search.<field>`, `detach.<key>`), which are
never sent. The look-ups that change something at Intercom (the company upsert, detaching a
company) are writes: a preview does not make them, and needs their answers given.

No batching: Intercom has no bulk endpoint for these calls. Rate limits (10,000 calls a minute
per app, in 10-second windows) answer 429 with `X-RateLimit-Reset`, the end of the window, which
the sender reads as when to come back.

Answers: 2xx delivered; 408, 429 and 5xx retried; a 409 to a contact create (`POST …/contacts`,
API 2.10, told by the request answered) is retried: Intercom's search index lags behind its
writes, and the next attempt's search finds the contact and updates it. Other 4xx (a 409 to
any other request, 1.4's included) are final, with Intercom's `errors[].message`. A look-up
refused the same way fails the event with Intercom's words. Events carry no dedup id: an event
sent again after a lost answer is recorded twice.
"""

import hashlib
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import quote, urlsplit

import msgspec
from msgspec import Raw

from engine.destinations import segment
from engine.destinations.base import (
    DestinationType,
    Judgement,
    LookupFailed,
    Lookups,
    Request,
    Unsendable,
    Verdict,
    base_url,
    check_endpoint,
    for_call,
)

HOSTS = {
    "standard": "https://api.intercom.io",
    "eu": "https://api.eu.intercom.io",
    "au": "https://api.au.intercom.io",
}
VERSIONS = {"v1": "1.4", "v2": "2.10"}
SEARCH = "search."  # hints of a stored request: the contact to look up
DETACH = "detach."  # ... and the company to detach from it (`company_id` or `name`)
COMPANY_KEPT = 300.0  # seconds a company's Intercom id, read by its company_id, is reused
_JSON = "application/json"
_REASON = 300  # characters of Intercom's words kept in an error

# Traits that are contact or company fields, not custom attributes (RudderStack's lists).
_V1_USER = frozenset(
    {"userId", "email", "phone", "name", "createdAt", "firstName", "lastName", "firstname",
     "lastname", "company"}
)  # fmt: skip
_V2_USER = frozenset(
    {"userId", "role", "email", "phone", "name", "avatar", "company", "ownerId", "lastName",
     "lastname", "firstName", "firstname", "createdAt", "timestamp", "lastSeenAt",
     "originalTimestamp", "unsubscribedFromEmails"}
)  # fmt: skip
_V1_COMPANY = frozenset(
    {"remoteCreatedAt", "monthlySpend", "industry", "website", "size", "plan", "name", "userId"}
)
_V2_COMPANY = frozenset(
    {"tags", "size", "plan", "name", "email", "userId", "website", "industry", "segments",
     "userCount", "createdAt", "sessionCount", "monthlySpend", "remoteCreatedAt"}
)  # fmt: skip
_COMPANY_FIELDS = frozenset({"id", "name", "industry", "remove"})  # of an identify's `company`
# Metadata objects Intercom takes whole (its monetary amounts and rich links).
_METADATA_OBJECTS = (frozenset({"amount", "currency"}), frozenset({"url", "value"}))

HELP = {
    "apiKey": "An Intercom access token (Developer Hub → your app → Authentication).",
    "apiServer": "Where your workspace is hosted: standard (US), eu or au (v2 only).",
    "apiVersion": "v2 sends to Intercom's API 2.10 (contacts); v1 to the legacy 1.4 (users).",
    "sendAnonymousId": "Without a userId, send the anonymousId as the user's id (external_id).",
    "updateLastRequestAt": "v1: mark the user as seen now on every identify.",
    "endpoint": "Replaces Intercom's base URL (a proxy or a test server); paths are kept.",
}


class IntercomSettings(msgspec.Struct):
    apiKey: str
    apiServer: Literal["standard", "eu", "au"] | None = "standard"
    apiVersion: Literal["v1", "v2"] | None = "v2"
    sendAnonymousId: bool = False
    updateLastRequestAt: bool = True
    endpoint: str | None = None

    def __post_init__(self) -> None:
        self.apiKey = self.apiKey.strip()
        if not self.apiKey:
            raise ValueError("apiKey is required: an access token of your Intercom app")
        if any(c.isspace() for c in self.apiKey):
            raise ValueError("apiKey must be the access token alone, without spaces")
        self.apiServer = self.apiServer or "standard"
        self.apiVersion = self.apiVersion or "v2"
        check_endpoint(self.endpoint)

    @property
    def v1(self) -> bool:
        return self.apiVersion == "v1"


# ---------------------------------------------------------------------------------------------
# Requests


def _base(settings: IntercomSettings) -> str:
    host = HOSTS["standard"] if settings.v1 else HOSTS[settings.apiServer or "standard"]
    return base_url(settings.endpoint, host)


def _headers(settings: IntercomSettings) -> dict[str, str]:
    return {
        "Content-Type": _JSON,
        "Accept": _JSON,
        "Authorization": f"Bearer {settings.apiKey}",
        "Intercom-Version": VERSIONS[settings.apiVersion or "v2"],
    }


def _post(
    settings: IntercomSettings, path: str, body: Any, hints: dict[str, str] | None = None
) -> Request:
    return Request("POST", f"{_base(settings)}{path}", _headers(settings), body=body,
                   hints=hints or {})  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Reading the event


def _scalar(value: Any) -> Any:
    """A value for a field: text (non-empty), a boolean or a number; else None."""
    if isinstance(value, str):
        return value or None
    if isinstance(value, bool | int | float | Raw):
        return value
    return None


def _traits(event: dict[str, Any]) -> dict[str, Any]:
    """The user's traits: `context.traits`, with the root `traits` over them."""
    return segment.mapping(segment.context(event).get("traits")) | segment.mapping(
        event.get("traits")
    )


def _trait(event: dict[str, Any], *names: str) -> Any:
    """The first of `names` in the root traits, else in `context.traits`."""
    for source in (segment.mapping(event.get("traits")), segment.context(event).get("traits")):
        for name in names:
            if (value := _scalar(segment.mapping(source).get(name))) is not None:
                return value
    return None


def _user_id(event: dict[str, Any], settings: IntercomSettings) -> str | None:
    found = segment.user_id(event) or segment.text(_trait(event, "userId", "id"))
    if found is None and settings.sendAnonymousId:
        found = segment.anonymous_id(event)
    return found


def _email(event: dict[str, Any]) -> str | None:
    return segment.text(_trait(event, "email") or segment.properties(event).get("email"))


def _name(event: dict[str, Any]) -> str | None:
    if (name := segment.text(_trait(event, "name"))) is not None:
        return name
    first = segment.text(_trait(event, "firstName", "firstname", "first_name"))
    last = segment.text(_trait(event, "lastName", "lastname", "last_name"))
    return " ".join(part for part in (first, last) if part) or None


def _seconds(value: Any) -> int | None:
    """A time as Unix seconds: ISO 8601 text, or a number of seconds (milliseconds if larger)."""
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return int((parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp())
    number = segment.number(value) if not isinstance(value, str) else None
    if number is None:
        return None
    return int(number // 1000 if number > 100_000_000_000 else number)


def _number(value: Any) -> int | float | None:
    """A number as JavaScript's `Number()` reads one (numeric text included); zero kept."""
    number = segment.number(value)
    if isinstance(number, float) and number.is_integer():
        return int(number)
    return number


def _flattened(value: Any, separator: str, prefix: str = "") -> dict[str, Any]:
    """`{"a": {"b": 1}, "l": ["x"]}` → `{"a<sep>b": 1, "l[0]": "x"}`; empty objects and arrays
    are kept as values (Intercom refuses nested values in custom attributes and metadata)."""
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flattened(item, separator, f"{prefix}{separator}{key}" if prefix else key))
        return out
    if isinstance(value, list) and value:
        out = {}
        for index, item in enumerate(value):
            out.update(_flattened(item, separator, f"{prefix}[{index}]"))
        return out
    return {prefix: value}


def _custom(traits: dict[str, Any], reserved: frozenset[str], separator: str) -> dict[str, Any]:
    kept = {k: v for k, v in traits.items() if k not in reserved}
    return _flattened(kept, separator) if kept else {}


def _present(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None and v != {}}


# ---------------------------------------------------------------------------------------------
# Look-up hints: whom to search, which company to detach


def _lookup_field(event: dict[str, Any]) -> str:
    chosen = segment.integration(event, "INTERCOM").get("lookup")
    return chosen if isinstance(chosen, str) and chosen.strip() else "email"


def _search_hints(event: dict[str, Any], field: str, external_id: str | None) -> dict[str, str]:
    """The contact search: the lookup field's value (the email, lower-cased, by default) OR
    the external id."""
    hints: dict[str, str] = {}
    if field == "email":
        value = _email(event)
        value = value.lower() if value else None
    else:
        value = segment.text(_trait(event, field) or event.get(field))
    if value is not None:
        hints[SEARCH + field] = value
    if field != "external_id" and external_id is not None:
        hints[SEARCH + "external_id"] = external_id
    return hints


def _detach_hints(event: dict[str, Any]) -> dict[str, str]:
    company = segment.mapping(_traits(event).get("company"))
    if company.get("remove") is not True:
        return {}
    if (company_id := segment.text(company.get("id"))) is not None:
        return {DETACH + "company_id": company_id}
    if (name := segment.text(company.get("name"))) is not None:
        return {DETACH + "name": name}
    return {}


# ---------------------------------------------------------------------------------------------
# identify


def _identify(event: dict[str, Any], settings: IntercomSettings, now: datetime) -> list[Request]:
    return [_identify_v1(event, settings) if settings.v1 else _identify_v2(event, settings)]


def _identify_v2(event: dict[str, Any], settings: IntercomSettings) -> Request:
    external_id, email = _user_id(event, settings), _email(event)
    if external_id is None and email is None:
        raise Unsendable("an identify call needs a userId or an email (traits.email)")
    lookup = _lookup_field(event)
    owner = _number(_trait(event, "ownerId"))
    contact = {
        "external_id": external_id,
        "email": email,
        "phone": _trait(event, "phone"),
        "name": _name(event),
        "avatar": _trait(event, "avatar", "avatarURL", "avatar_URL"),
        "role": _trait(event, "role"),
        "owner_id": owner or None,
        "last_seen_at": _seconds(_trait(event, "lastSeenAt")),
        "signed_up_at": _seconds(_trait(event, "createdAt")),
        "unsubscribed_from_emails": _trait(event, "unsubscribedFromEmails"),
        "custom_attributes": _custom(_traits(event), _V2_USER | {lookup}, "_"),
    }
    hints = _search_hints(event, lookup, external_id) | _detach_hints(event)
    return _post(settings, "/contacts", _present(contact), hints)


def _identify_v1(event: dict[str, Any], settings: IntercomSettings) -> Request:
    user_id, email = _user_id(event, settings), _email(event)
    if user_id is None and email is None:
        raise Unsendable("an identify call needs a userId or an email (traits.email)")
    traits = _traits(event)
    user = {
        "user_id": user_id,
        "email": email,
        "phone": _trait(event, "phone"),
        "name": _name(event),
        "signed_up_at": _seconds(_trait(event, "createdAt")),
        "last_seen_user_agent": segment.text(segment.context(event).get("userAgent")),
        "update_last_request_at": settings.updateLastRequestAt,
        "custom_attributes": _custom(traits, _V1_USER | {_lookup_field(event)}, "."),
        "companies": _companies(traits.get("company")),
    }
    return _post(settings, "/users", _present(user))


def _companies(company: Any) -> list[dict[str, Any]] | None:
    """An identify's `traits.company` as the v1 user's companies (RudderStack's rule: without
    an id, the MD5 of the name is the company_id)."""
    company = segment.mapping(company)
    company_id, name = segment.text(company.get("id")), segment.text(company.get("name"))
    if company_id is None and name is None:
        return None
    if company_id is None and name is not None:
        company_id = hashlib.md5(name.encode(), usedforsecurity=False).hexdigest()
    custom = {
        key: segment.json_text(value) if isinstance(value, dict | list) else value
        for key, value in company.items()
        if key not in _COMPANY_FIELDS and value is not None
    }
    entry = {
        "company_id": company_id,
        "custom_attributes": custom,
        "name": name,
        "industry": _scalar(company.get("industry")),
        "remove": company.get("remove") if isinstance(company.get("remove"), bool) else None,
    }
    return [{k: v for k, v in entry.items() if v is not None}]


# ---------------------------------------------------------------------------------------------
# track


def _track(event: dict[str, Any], settings: IntercomSettings, now: datetime) -> list[Request]:
    name = event.get("event")
    if not isinstance(name, str) or not name.strip():
        raise Unsendable("a track call needs an event name")
    user_id, email = _user_id(event, settings), _email(event)
    if user_id is None and email is None:
        raise Unsendable("a track call needs a userId or an email (traits.email)")
    when = (
        segment.event_time(event)
        or segment.event_time({"timestamp": event.get("receivedAt")})
        or now
    )
    created = int(when.timestamp())
    body = {
        "event_name": name,
        "created" if settings.v1 else "created_at": created,
        "user_id": user_id,
        "email": email,
        "metadata": _metadata(segment.properties(event)) or None,
    }
    return [_post(settings, "/events", {k: v for k, v in body.items() if v is not None})]


def _metadata(properties: dict[str, Any]) -> dict[str, Any]:
    whole = {
        k: v
        for k, v in properties.items()
        if isinstance(v, dict) and any(keys <= v.keys() for keys in _METADATA_OBJECTS)
    }
    rest = {k: v for k, v in properties.items() if k not in whole}
    return whole | (_flattened(rest, ".") if rest else {})


# ---------------------------------------------------------------------------------------------
# group


def _group(event: dict[str, Any], settings: IntercomSettings, now: datetime) -> list[Request]:
    group_id = segment.text(event.get("groupId")) or segment.text(_trait(event, "groupId"))
    if group_id is None:
        raise Unsendable("a group call needs a groupId (the company's id)")
    company = _company(event, settings, group_id)
    if settings.v1:
        requests = [_post(settings, "/companies", company)]
        if (attach := _attach_v1(event, settings, group_id)) is not None:
            requests.append(attach)
    else:
        hints = _search_hints(event, _lookup_field(event), _user_id(event, settings))
        requests = [_post(settings, "/companies", company, hints)]
    return requests + _tags(event, settings, group_id)


def _company(event: dict[str, Any], settings: IntercomSettings, group_id: str) -> dict[str, Any]:
    lookup = _lookup_field(event)
    searched = {lookup} if lookup != "email" else set()  # a company may have its own email
    if settings.v1:
        custom = _custom(segment.traits(event), _V1_COMPANY | searched, ".")
    else:
        custom = _custom(segment.mapping(event.get("traits")), _V2_COMPANY | searched, "_")
    size = _number(_trait(event, "size"))
    spend = _number(_trait(event, "monthlySpend"))
    created = _number(_trait(event, "remoteCreatedAt"))
    fields = {
        "company_id": group_id,
        "name": _trait(event, "name"),
        "website": _trait(event, "website") or _scalar(segment.properties(event).get("website")),
        "plan": _trait(event, "plan"),
        "size": size,
        "industry": _trait(event, "industry"),
        "monthly_spend": spend,
        "remote_created_at": created,
        "custom_attributes": custom,
    }
    return _present(fields)


def _attach_v1(event: dict[str, Any], settings: IntercomSettings, group_id: str) -> Request | None:
    """The v1 user's membership of the company, when the user can be named."""
    user_id = _user_id(event, settings)
    email = segment.text(segment.mapping(segment.context(event).get("traits")).get("email"))
    if user_id is None and email is None:
        return None
    company: dict[str, Any] = {"company_id": group_id}
    if (name := _scalar(segment.mapping(event.get("traits")).get("name"))) is not None:
        company["name"] = name
    user = _present({"user_id": user_id, "email": email}) | {"companies": [company]}
    return _post(settings, "/users", user)


def _tags(event: dict[str, Any], settings: IntercomSettings, group_id: str) -> list[Request]:
    names = segment.mapping(segment.context(event).get("traits")).get("tags")
    requests = []
    for name in names if isinstance(names, list) else []:
        if (tag := segment.text(name)) is not None:
            body = {"name": tag, "companies": [{"company_id": group_id}]}
            requests.append(_post(settings, "/tags", body))
    return requests


# ---------------------------------------------------------------------------------------------
# Completing requests with Intercom's answers (resolve)


async def resolve(request: Request, settings: IntercomSettings, lookups: Lookups) -> Request:
    """The request to send: the stored one completed with the contact's and the company's
    Intercom ids, its look-up hints taken off. Look-ups go to the stored request's host with
    its headers (the settings it was made with)."""
    hints = dict(request.hints)
    bare = msgspec.structs.replace(request, hints={})
    root, _, path = request.url.rpartition("/")
    asking = _Asking(root, request.headers, lookups)
    if request.method != "POST":
        return bare
    if path == "tags":
        return await _tag(bare, asking)
    search = {k.removeprefix(SEARCH): v for k, v in hints.items() if k.startswith(SEARCH)}
    if not search or path not in ("contacts", "companies"):
        return bare
    contact = await _contact(search, asking)
    if contact is None:
        return bare  # a new contact, or a company no contact is known to belong to
    contact_url = f"{root}/contacts/{quote(contact, safe='')}"
    if path == "contacts":
        await _detach(contact_url, hints, asking)
        return msgspec.structs.replace(bare, method="PUT", url=contact_url)
    company = await _upsert(bare, lookups)
    return msgspec.structs.replace(bare, url=f"{contact_url}/companies", body={"id": company})


class _Asking:
    """Look-ups to Intercom's API at `root`, authenticated as the request being completed."""

    def __init__(self, root: str, headers: dict[str, str], lookups: Lookups) -> None:
        self.root, self.lookups = root, lookups
        self.headers = {k: v for k, v in headers.items() if k.lower() != "content-type"}

    async def ask(
        self,
        method: str,
        path: str,
        params: dict[str, str] | None = None,
        body: Any = None,
        keep: float = 0.0,
        writes: bool = False,
    ) -> tuple[int, Any]:
        headers = self.headers if body is None else {**self.headers, "Content-Type": _JSON}
        request = Request(method, f"{self.root}{path}", headers, params or {}, body)
        looked = await self.lookups.ask(request, keep, writes=writes)
        return looked.status, looked.body


async def _contact(search: dict[str, str], asking: _Asking) -> str | None:
    """The Intercom id of the first contact the search finds, or None. Not kept: a contact
    created a moment ago must be found."""
    terms = [{"field": field, "operator": "=", "value": value} for field, value in search.items()]
    query = {"query": {"operator": "OR" if len(terms) > 1 else "AND", "value": terms}}
    status, body = await asking.ask("POST", "/contacts/search", body=query)
    data = segment.mapping(_checked(status, body, "searching the contact")).get("data")
    first = data[0] if isinstance(data, list) and data else None
    return segment.text(segment.mapping(first).get("id"))


async def _upsert(company: Request, lookups: Lookups) -> str:
    """The company created or updated (a write made while resolving: by `company_id`, so an
    attempt made again repeats it harmlessly), and its Intercom id."""
    looked = await lookups.ask(company, writes=True)
    body = _checked(looked.status, looked.body, "creating or updating the company")
    found = segment.text(segment.mapping(body).get("id"))
    if found is None:
        raise LookupFailed("Intercom's answer to the company upsert has no company id")
    return found


async def _company_id(params: dict[str, str], asking: _Asking) -> str | None:
    """A company's Intercom id, read by its company_id or name (None: Intercom has none)."""
    status, body = await asking.ask("GET", "/companies", params, keep=COMPANY_KEPT)
    if status == 404:
        return None
    body = segment.mapping(_checked(status, body, "reading the company"))
    if body.get("type") == "list":  # several companies of that name: the first
        data = body.get("data")
        body = segment.mapping(data[0] if isinstance(data, list) and data else None)
    return segment.text(body.get("id"))


async def _detach(contact_url: str, hints: dict[str, str], asking: _Asking) -> None:
    """Detach the company an identify names with `remove: true` from the contact."""
    which = {k.removeprefix(DETACH): v for k, v in hints.items() if k.startswith(DETACH)}
    if not which:
        return
    company = await _company_id(which, asking)
    if company is None:
        return  # no such company: nothing is attached
    path = contact_url.removeprefix(asking.root) + f"/companies/{quote(company, safe='')}"
    status, body = await asking.ask("DELETE", path, writes=True)
    if status != 404:  # 404: not attached (any more), which is what was asked
        _checked(status, body, "detaching the company")


async def _tag(request: Request, asking: _Asking) -> Request:
    """A tag request naming its company by company_id, completed with the Intercom id."""
    body = segment.mapping(request.body)
    companies = body.get("companies")
    named = segment.mapping(companies[0] if isinstance(companies, list) and companies else None)
    company_id = segment.text(named.get("company_id"))
    if company_id is None:
        return request
    found = await _company_id({"company_id": company_id}, asking)
    if found is None:
        raise Unsendable(f"Intercom has no company {company_id[:100]!r} to tag")
    return msgspec.structs.replace(request, body={**body, "companies": [{"id": found}]})


def _checked(status: int, body: Any, doing: str) -> Any:
    """A look-up's answer body when it succeeded. 408 has it asked again later; other refusals
    fail the event, with Intercom's words."""
    if 200 <= status < 300:
        return body
    said = f"Intercom answered HTTP {status} {doing}"
    if status == 408:
        raise LookupFailed(said)
    reason = _messages(body)
    raise Unsendable(f"{said}: {reason}" if reason else said)


# ---------------------------------------------------------------------------------------------
# Answers


def _messages(answer: Any) -> str | None:
    """Intercom's error list (`{"type": "error.list", "errors": [{code, message}]}`) as text."""
    errors = segment.mapping(answer).get("errors")
    said = []
    for error in errors if isinstance(errors, list) else []:
        error = segment.mapping(error)
        text = segment.text(error.get("message")) or segment.text(error.get("code"))
        if text:
            said.append(text)
    return "; ".join(said)[:_REASON] or None


def classify(status: int, body: bytes, count: int) -> Verdict | Sequence[Judgement]:
    if 200 <= status < 300:
        return Verdict.DELIVERED
    if status in (408, 429) or 500 <= status < 600:
        return Verdict.RETRY
    try:
        reason = _messages(msgspec.json.decode(body))
    except msgspec.DecodeError:
        reason = None
    return Verdict.ABORT if reason is None else [Judgement(Verdict.ABORT, reason)] * count


def classify_sent(
    status: int, body: bytes, requests: Sequence[Request]
) -> Verdict | Sequence[Judgement]:
    """`classify`, and a 409 to a contact create retried: the contact was made a moment ago
    and Intercom's search index had not caught up, so the next attempt finds and updates it."""
    if status == 409 and len(requests) == 1 and _creates_contact(requests[0]):
        return Verdict.RETRY
    return classify(status, body, len(requests))


def _creates_contact(request: Request) -> bool:
    """A contact create of API 2.10 (1.4 has no such search to catch up with)."""
    path = urlsplit(request.url).path.rstrip("/")
    return (
        request.method == "POST"
        and path.endswith("/contacts")
        and request.headers.get("Intercom-Version") == VERSIONS["v2"]
    )


# ---------------------------------------------------------------------------------------------
# The plug-in

_CALLS: dict[str, Callable[[dict[str, Any], IntercomSettings, datetime], list[Request]]] = {
    "identify": _identify,
    "track": _track,
    "group": _group,
}


def map_event(event: dict[str, Any], settings: IntercomSettings, now: datetime) -> list[Request]:
    call = for_call(event, _CALLS)
    return call(event, settings, now)


INTERCOM = DestinationType(
    name="intercom",
    title="Intercom",
    category="Messaging",
    description="Customer messaging: users, companies and events.",
    settings=IntercomSettings,
    map=map_event,
    supported_types=frozenset(_CALLS),
    secret_keys=("apiKey",),
    help=HELP,
    classify=classify,
    classify_sent=classify_sent,
    resolve=resolve,
)
