"""Intercom's rules the conformance cases do not reach: answers, settings, and how requests are
completed with look-ups (contact search, company reads, upserts, detaching)."""

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from engine.control import preview
from engine.destinations.base import (
    BadSettings,
    Judgement,
    LookupFailed,
    Request,
    Unsendable,
    Verdict,
)
from engine.destinations.intercom import INTERCOM, IntercomSettings, resolve
from engine.pipeline.delivery.lookups import Given

NOW = datetime(2026, 1, 15, 10, 0, tzinfo=UTC)
BASE = "https://api.intercom.io"
TOKEN = "tok-4d1e"


def settings(**config: Any) -> IntercomSettings:
    parsed: IntercomSettings = INTERCOM.parse_settings({"apiKey": TOKEN, **config})
    return parsed


def made(event: dict[str, Any], **config: Any) -> list[Request]:
    return INTERCOM.map(event, settings(**config), NOW)


def errors(*messages: str, code: str = "parameter_invalid") -> bytes:
    listed = [{"code": code, "message": m} for m in messages]
    return json.dumps({"type": "error.list", "errors": listed}).encode()


def judged(status: int, body: bytes) -> Judgement:
    """The one judgement of a single request's answer (an answer with Intercom's words)."""
    said = INTERCOM.classify(status, body, 1)
    assert not isinstance(said, Verdict)
    [one] = said
    return one


def answer(method: str, path: str, status: int, body: Any = None, **more: Any) -> dict[str, Any]:
    return {"method": method, "endpoint": BASE + path, "response": {"status": status,
            "body": body}, **more}  # fmt: skip


def found(*ids: str) -> dict[str, Any]:
    return {"type": "list", "total_count": len(ids), "data": [{"id": i} for i in ids]}


# Answers


def test_answers_are_read_as_intercom_means_them() -> None:
    classify = INTERCOM.classify
    assert classify(200, b"{}", 1) is Verdict.DELIVERED
    assert classify(202, b"", 1) is Verdict.DELIVERED
    for status in (408, 429, 500, 503):
        assert classify(status, b"", 1) is Verdict.RETRY
    refused = judged(401, errors("Access Token Invalid", code="unauthorized"))
    assert refused.verdict is Verdict.ABORT and refused.reason == "Access Token Invalid"
    assert classify(404, b"<html>Not Found</html>", 1) is Verdict.ABORT


def test_a_409_to_a_contact_create_is_retried_other_conflicts_are_final() -> None:
    """Told by the request answered, whatever Intercom's words: a create the search index
    missed finds the contact next time. An update's or the 1.4 API's 409 is final."""
    said = errors("A contact matching those details already exists with id=6a1", code="conflict")
    identify = {"type": "identify", "userId": "u1", "traits": {"email": "a@x.io"}}
    [create] = made(identify)
    assert INTERCOM.judge(409, said, [create]) is Verdict.RETRY
    assert INTERCOM.judge(409, b"", [create]) is Verdict.RETRY
    update = Request("PUT", f"{BASE}/contacts/c1", create.headers, body=create.body)
    [legacy] = made(identify, apiVersion="v1")
    [event] = made({"type": "track", "userId": "u1", "event": "E"})
    for request in (update, legacy, event):
        assert INTERCOM.judge(409, said, [request]) == [Judgement(Verdict.ABORT, str(
            json.loads(said)["errors"][0]["message"]))]  # fmt: skip
    assert INTERCOM.classify(409, said, 1) != Verdict.RETRY  # the text alone decides nothing


# Settings


@pytest.mark.parametrize(
    ("config", "said"),
    [
        ({"apiKey": "  "}, "apiKey is required"),
        ({"apiKey": "tok en"}, "without spaces"),
        ({"apiKey": TOKEN, "apiServer": "mars"}, "apiServer"),
        ({"apiKey": TOKEN, "apiVersion": "v3"}, "apiVersion"),
        ({"apiKey": TOKEN, "endpoint": "https://proxy.example/?x=1"}, "without query"),
    ],
)
def test_malformed_settings_are_refused_with_the_key_named(
    config: dict[str, Any], said: str
) -> None:
    with pytest.raises(BadSettings, match=said):
        INTERCOM.parse_settings(config)


def test_hosts_follow_the_region_and_the_version() -> None:
    track = {"type": "track", "userId": "u1", "event": "E"}
    assert made(track, apiServer="au")[0].url == "https://api.au.intercom.io/events"
    # The 1.4 API is reached on the standard host whatever the region, as RudderStack does.
    assert made(track, apiServer="eu", apiVersion="v1")[0].url == f"{BASE}/events"
    assert made(track, endpoint="http://proxy:8080/icm/")[0].url == "http://proxy:8080/icm/events"
    assert made(track, apiVersion=None)[0].headers["Intercom-Version"] == "2.10"


def test_page_screen_and_alias_are_filtered_not_failed() -> None:
    assert INTERCOM.supported_types == {"identify", "track", "group"}


def test_the_token_is_masked_in_what_a_preview_shows() -> None:
    dest = preview.unsaved("intercom", {"apiKey": TOKEN})
    [shown] = preview.requests(dest, {"type": "track", "userId": "u1", "event": "E"}, NOW)
    assert shown.headers["Authorization"] == "Bearer ****"
    assert TOKEN not in json.dumps(shown.headers)


# Mapping


def test_an_anonymous_user_is_created_and_searched_by_the_anonymous_id() -> None:
    event = {"type": "identify", "anonymousId": "anon-1", "traits": {"plan": "pro"}}
    with pytest.raises(Unsendable, match="userId or an email"):
        made(event)
    [request] = made(event, sendAnonymousId=True)
    assert request.body == {"external_id": "anon-1", "custom_attributes": {"plan": "pro"}}
    assert request.hints == {"search.external_id": "anon-1"} and request.params == {}


def test_v1_companies_of_an_identify_are_named_by_id_else_by_the_hash_of_their_name() -> None:
    event: dict[str, Any] = {"type": "identify", "userId": "u1",
             "traits": {"company": {"name": "Acme", "plan": "pro", "tags": ["a"]}}}  # fmt: skip
    [request] = made(event, apiVersion="v1")
    assert request.body["companies"] == [{
        "company_id": hashlib.md5(b"Acme").hexdigest(), "name": "Acme",
        "custom_attributes": {"plan": "pro", "tags": '["a"]'},
    }]  # fmt: skip
    event["traits"]["company"]["id"] = "c-9"
    [request] = made(event, apiVersion="v1")
    assert request.body["companies"][0]["company_id"] == "c-9"


def test_a_group_upserts_the_company_then_tags_it() -> None:
    event = {"type": "group", "userId": "u1", "groupId": "acme",
             "traits": {"name": "Acme", "size": "12", "region": {"eu": True}},
             "context": {"traits": {"email": "Ada@Example.com",
                                    "tags": ["vip", "beta"]}}}  # fmt: skip
    upsert, vip, beta = made(event)
    assert upsert.url == f"{BASE}/companies"
    assert upsert.body == {"company_id": "acme", "name": "Acme", "size": 12,
                           "custom_attributes": {"region_eu": True}}  # fmt: skip
    assert upsert.hints == {"search.email": "ada@example.com", "search.external_id": "u1"}
    assert vip.body == {"name": "vip", "companies": [{"company_id": "acme"}]}
    assert beta.body["name"] == "beta"
    with pytest.raises(Unsendable, match="groupId"):
        made({**event, "groupId": None})


def test_a_track_keeps_intercoms_objects_and_flattens_the_rest() -> None:
    event = {"type": "track", "userId": "u1", "event": "Paid",
             "timestamp": "2026-01-15T10:00:00Z",
             "properties": {"total": {"amount": 5, "currency": "EUR"},
                            "link": {"url": "x", "value": "y"},
                            "cart": {"items": [{"sku": "a"}]}, "empty": {}}}  # fmt: skip
    [request] = made(event)
    assert request.body["metadata"] == {
        "total": {"amount": 5, "currency": "EUR"}, "link": {"url": "x", "value": "y"},
        "cart.items[0].sku": "a", "empty": {},
    }  # fmt: skip
    assert request.body["created_at"] == 1768471200


# Completing requests


async def test_a_contact_found_is_updated_and_the_hints_never_reach_intercom() -> None:
    [stored] = made({"type": "identify", "userId": "u1", "traits": {"email": "A@x.io"}})
    assert stored.hints == {"search.email": "a@x.io", "search.external_id": "u1"}
    assert stored.params == {}
    query = {"query": {"operator": "OR", "value": [
        {"field": "email", "operator": "=", "value": "a@x.io"},
        {"field": "external_id", "operator": "=", "value": "u1"}]}}  # fmt: skip
    given = Given([answer("POST", "/contacts/search", 200, found("c1", "c2"), request_body=query)])
    sent = await resolve(stored, settings(), given)
    assert (sent.method, sent.url, sent.hints) == ("PUT", f"{BASE}/contacts/c1", {})
    assert sent.body == stored.body
    none = Given([answer("POST", "/contacts/search", 200, found())])
    sent = await resolve(stored, settings(), none)
    assert (sent.method, sent.url, sent.hints) == ("POST", f"{BASE}/contacts", {})


async def test_another_lookup_field_is_searched_instead_of_the_email() -> None:
    event = {"type": "identify", "userId": "u1", "integrations": {"INTERCOM": {"lookup": "phone"}},
             "traits": {"email": "a@x.io", "phone": "+4412"}}  # fmt: skip
    [stored] = made(event)
    assert stored.hints == {"search.phone": "+4412", "search.external_id": "u1"}


async def test_a_company_marked_removed_is_detached_from_the_contact_found() -> None:
    event = {
        "type": "identify",
        "userId": "u1",
        "traits": {"company": {"id": "acme", "remove": True}},
    }
    [stored] = made(event)
    given = Given([
        answer("POST", "/contacts/search", 200, found("c1")),
        answer("GET", "/companies", 200, {"type": "company", "id": "co-7"},
               params={"company_id": "acme"}),
        answer("DELETE", "/contacts/c1/companies/co-7", 404,
               json.loads(errors("Company Not Found", code="company_not_found"))),
    ])  # fmt: skip
    sent = await resolve(stored, settings(), given)  # already detached: done all the same
    assert (sent.method, sent.url) == ("PUT", f"{BASE}/contacts/c1")
    refused = Given([
        answer("POST", "/contacts/search", 200, found("c1")),
        answer("GET", "/companies", 200, {"id": "co-7"}, params={"company_id": "acme"}),
        answer("DELETE", "/contacts/c1/companies/co-7", 403, json.loads(errors("Forbidden"))),
    ])  # fmt: skip
    with pytest.raises(Unsendable, match="HTTP 403 detaching the company: Forbidden"):
        await resolve(stored, settings(), refused)


async def test_a_group_attaches_the_company_to_the_contact_or_else_upserts_it() -> None:
    event = {"type": "group", "userId": "u1", "groupId": "acme", "traits": {"name": "Acme"}}
    [stored] = made(event)
    body = {"company_id": "acme", "name": "Acme"}
    given = Given([
        answer("POST", "/contacts/search", 200, found("c1")),
        answer("POST", "/companies", 200, {"type": "company", "id": "co-7"}, request_body=body),
    ])  # fmt: skip
    sent = await resolve(stored, settings(), given)
    assert (sent.url, sent.body, sent.hints) == (f"{BASE}/contacts/c1/companies", {"id": "co-7"},
                                                 {})  # fmt: skip
    # No contact: the upsert itself is what is sent (no upsert is made while resolving).
    alone = Given([answer("POST", "/contacts/search", 200, found())])
    sent = await resolve(stored, settings(), alone)
    assert (sent.url, sent.body, sent.hints) == (f"{BASE}/companies", body, {})
    refused = Given([
        answer("POST", "/contacts/search", 200, found("c1")),
        answer("POST", "/companies", 400, json.loads(errors("company not specified"))),
    ])  # fmt: skip
    with pytest.raises(Unsendable, match="company not specified"):
        await resolve(stored, settings(), refused)


async def test_a_search_that_timed_out_is_asked_again_later() -> None:
    [stored] = made({"type": "identify", "userId": "u1"})
    with pytest.raises(LookupFailed, match="HTTP 408 searching the contact"):
        await resolve(stored, settings(), Given([answer("POST", "/contacts/search", 408)]))
    denied = Given(
        [
            answer(
                "POST",
                "/contacts/search",
                401,
                json.loads(errors("Access Token Invalid", code="unauthorized")),
            )
        ]
    )
    with pytest.raises(Unsendable, match="HTTP 401 searching the contact: Access Token Invalid"):
        await resolve(stored, settings(), denied)


async def test_a_tag_names_the_company_by_its_intercom_id() -> None:
    event = {"type": "group", "userId": "u1", "groupId": "acme",
             "context": {"traits": {"tags": ["vip"]}}}  # fmt: skip
    *_, tag = made(event, apiVersion="v1")
    given = Given([answer("GET", "/companies", 200, {"id": "co-7"}, params={"company_id": "acme"})])
    sent = await resolve(tag, settings(apiVersion="v1"), given)
    assert sent.body == {"name": "vip", "companies": [{"id": "co-7"}]}
    missing = Given([answer("GET", "/companies", 404, None, params={"company_id": "acme"})])
    with pytest.raises(Unsendable, match="no company 'acme' to tag"):
        await resolve(tag, settings(apiVersion="v1"), missing)


class Recorded:
    """Given answers, and what was asked, with whether it was a write."""

    def __init__(self, answers: list[dict[str, Any]]) -> None:
        self.given = Given(answers)
        self.asked: list[tuple[str, str, bool]] = []

    async def ask(self, request: Request, keep: float = 0.0, writes: bool = False) -> Any:
        self.asked.append((request.method, request.url.removeprefix(BASE), writes))
        return await self.given.ask(request, keep, writes)


async def test_look_ups_that_change_something_at_intercom_are_writes() -> None:
    """A preview makes no writes: the company upsert and a detach are marked as such."""
    group = {"type": "group", "userId": "u1", "groupId": "acme", "traits": {"name": "Acme"}}
    [stored] = made(group)
    lookups = Recorded([answer("POST", "/contacts/search", 200, found("c1")),
                        answer("POST", "/companies", 200, {"id": "co-7"})])  # fmt: skip
    await resolve(stored, settings(), lookups)
    assert lookups.asked == [("POST", "/contacts/search", False), ("POST", "/companies", True)]
    identify = {"type": "identify", "userId": "u1",
                "traits": {"company": {"id": "acme", "remove": True}}}  # fmt: skip
    [stored] = made(identify)
    lookups = Recorded([answer("POST", "/contacts/search", 200, found("c1")),
                        answer("GET", "/companies", 200, {"id": "co-7"},
                               params={"company_id": "acme"}),
                        answer("DELETE", "/contacts/c1/companies/co-7", 200, {})])  # fmt: skip
    await resolve(stored, settings(), lookups)
    assert lookups.asked == [("POST", "/contacts/search", False), ("GET", "/companies", False),
                             ("DELETE", "/contacts/c1/companies/co-7", True)]  # fmt: skip


async def test_requests_without_look_ups_are_sent_as_they_are() -> None:
    [track] = made({"type": "track", "userId": "u1", "event": "E"})
    assert await resolve(track, settings(), Given([])) == track
