"""The Mixpanel mapping: settings, refusals, identity, batching and what Mixpanel's answers mean."""

import base64
import contextlib
import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest

from engine import codec
from engine.destinations.base import BadSettings, Judgement, Request, Unsendable, Verdict
from engine.destinations.mixpanel import MIXPANEL

NOW = datetime(2026, 3, 1, tzinfo=UTC)
TOKEN = "tok-8c1f0e6a2b"
SECRET = "sa-secret-5d7e"
CHROME = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_2) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/79.0.3945.117 Safari/537.36"
)


def settings(**config: Any) -> Any:
    return MIXPANEL.parse_settings({"token": TOKEN, **config})


def track(**fields: Any) -> dict[str, Any]:
    return {
        "type": "track",
        "event": "Paid",
        "userId": "u1",
        "anonymousId": "a1",
        "messageId": "m-1",
        "timestamp": "2026-02-28T10:00:00.123Z",
        **fields,
    }


def one(event: dict[str, Any], **config: Any) -> Request:
    [request] = MIXPANEL.map(event, settings(**config), NOW)
    return request


def props(request: Request) -> dict[str, Any]:
    properties: dict[str, Any] = request.body[0]["properties"]
    return properties


# Settings


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({}, "token"),
        ({"token": "  "}, "token"),
        ({"token": TOKEN, "dataResidency": "mars"}, "dataResidency must be one of us, eu, in"),
        ({"token": TOKEN, "identityMergeApi": "magic"}, "identityMergeApi"),
        ({"token": TOKEN, "serviceAccountSecret": SECRET}, "serviceAccountUserName"),
        (
            {"token": TOKEN, "serviceAccountUserName": "sa", "serviceAccountSecret": SECRET},
            "projectId",
        ),
        (
            {
                "token": TOKEN,
                "serviceAccountUserName": "sa",
                "serviceAccountSecret": SECRET,
                "projectId": "my-project",
            },
            "numeric",
        ),
        ({"token": TOKEN, "useUserDefinedPageEventName": True}, "template is empty"),
        ({"token": TOKEN, "endpoint": "ftp://x"}, "not an http(s) URL"),
        ({"token": TOKEN, "strictMode": "yes"}, "strictMode"),
    ],
)
def test_bad_settings_say_what_is_wrong(config: dict[str, Any], message: str) -> None:
    with pytest.raises(BadSettings, match=re.escape(message)) as caught:
        MIXPANEL.parse_settings(config)
    assert caught.value.args[0].startswith("Mixpanel settings: ")
    assert TOKEN not in str(caught.value) and SECRET not in str(caught.value)


def test_rudderstack_configs_are_taken_as_they_are() -> None:
    parsed = MIXPANEL.parse_settings(
        {
            "token": TOKEN,
            "apiSecret": "x",
            "people": True,
            "projectId": 123456,
            "dataResidency": "EU",
            "superProperties": [{"property": "a"}],
            "groupKeySettings": [],
        }
    )
    assert parsed.dataResidency == "eu" and parsed.projectId == "123456"


def test_secrets_are_the_token_and_the_secrets() -> None:
    config = {
        "token": TOKEN,
        "serviceAccountUserName": "sa",
        "serviceAccountSecret": SECRET,
        "apiSecret": "legacy-secret",
        "projectId": "42",
    }
    assert set(MIXPANEL.secrets(config)) == {TOKEN, SECRET, "legacy-secret"}


# Hosts and auth


@pytest.mark.parametrize(
    ("config", "base"),
    [
        ({}, "https://api.mixpanel.com"),
        ({"dataResidency": "eu"}, "https://api-eu.mixpanel.com"),
        ({"dataResidency": "in"}, "https://api-in.mixpanel.com"),
        (
            {"dataResidency": "eu", "endpoint": "http://127.0.0.1:9/proxy/"},
            "http://127.0.0.1:9/proxy",
        ),
    ],
)
def test_hosts_follow_residency_and_the_endpoint_keeps_the_paths(
    config: dict[str, Any], base: str
) -> None:
    group = {"type": "group", "userId": "u1", "traits": {"company": "Acme"}}
    requests = MIXPANEL.map(
        group, settings(groupKeySettings=[{"groupKey": "company"}], **config), NOW
    )
    assert [r.url for r in requests] == [f"{base}/engage/", f"{base}/groups/"]
    assert one(track(), **config).url == f"{base}/import/"


def test_import_authenticates_with_the_token_or_a_service_account() -> None:
    by_token = one(track())
    assert (
        by_token.headers["Authorization"]
        == "Basic " + base64.b64encode(f"{TOKEN}:".encode()).decode()
    )
    assert by_token.params == {"strict": "1"}
    by_account = one(
        track(), serviceAccountUserName="sa.user", serviceAccountSecret=SECRET, projectId="42"
    )
    decoded = base64.b64decode(by_account.headers["Authorization"].removeprefix("Basic "))
    assert decoded == f"sa.user:{SECRET}".encode()
    assert by_account.params == {"strict": "1", "project_id": "42"}
    assert one(track(), strictMode=False).params == {"strict": "0"}


# Events


def test_track_carries_identity_time_and_a_valid_insert_id() -> None:
    properties = props(one(track(properties={"plan": "pro"})))
    assert properties["distinct_id"] == "u1" and properties["$user_id"] == "u1"
    assert properties["time"] == 1772272800123 and properties["token"] == TOKEN
    assert properties["$insert_id"] == "m-1" and properties["plan"] == "pro"
    long_id = "1662363980287-168cf720-6227-4b56-a98e-c49bdc7279e9"
    assert props(one(track(messageId=long_id)))["$insert_id"] == long_id[-36:]
    odd = props(one(track(messageId="not/ok:id")))["$insert_id"]
    assert (
        re.fullmatch(r"[0-9a-f]{36}", odd)
        and odd == props(one(track(messageId="not/ok:id")))["$insert_id"]
    )
    assert re.fullmatch(r"[0-9a-f]{36}", props(one(track(messageId=None)))["$insert_id"])


def test_properties_win_over_traits_and_numbers_keep_their_text() -> None:
    text = json.dumps(
        track(
            properties={"plan": "pro", "price": "<price>"},
            context={"traits": {"plan": "free", "age": 3}},
        )
    )
    event = codec.decode(text.replace('"<price>"', "1.50"))
    request = one(event)
    assert props(request)["plan"] == "pro" and props(request)["age"] == 3
    assert b'"price":1.50' in codec.encode(request.body)
    assert "age" not in props(one(event, dropTraitsInTrackEvent=True))


def test_simplified_id_merge_uses_device_ids() -> None:
    anonymous = props(one(track(userId=None), identityMergeApi="simplified"))
    assert anonymous["distinct_id"] == "$device:a1" and anonymous["$device_id"] == "a1"
    assert "$user_id" not in anonymous
    known = props(one(track(), identityMergeApi="simplified"))
    assert known["distinct_id"] == "u1" and known["$device_id"] == "a1"


def test_revenue_and_increments_update_the_profile_first() -> None:
    event = track(properties={"revenue": "12.50", "logins": 2, "visits": "x"})
    requests = MIXPANEL.map(
        event, settings(propIncrements=[{"property": "logins"}, {"property": "visits"}]), NOW
    )
    assert [r.url.rsplit("/", 2)[1] for r in requests] == ["engage", "engage", "import"]
    assert requests[0].body == [
        {
            "$append": {"$transactions": {"$time": "2026-02-28T10:00:00.123Z", "$amount": 12.5}},
            "$distinct_id": "u1",
            "$token": TOKEN,
        }
    ]
    assert requests[1].body[0]["$add"] == {"logins": 2}
    assert len(MIXPANEL.map(track(properties={"revenue": "lots"}), settings(), NOW)) == 1


def test_page_and_screen_names_and_templates() -> None:
    page = {**track(type="page", name="Pricing", category="Docs"), "event": None}
    assert one(page).body[0]["event"] == "Loaded a Page"
    assert props(one(page))["name"] == "Pricing" and props(one(page))["category"] == "Docs"
    named = one(
        page,
        useUserDefinedPageEventName=True,
        userDefinedPageEventTemplate="Viewed {{ category }} {{name}} page",
    )
    assert named.body[0]["event"] == "Viewed Docs Pricing page"
    screen = one(
        {**page, "type": "screen", "name": None, "category": None},
        useUserDefinedScreenEventName=True,
        userDefinedScreenEventTemplate="{{ name }}",
    )
    assert screen.body[0]["event"] == "Loaded a Screen"


def test_web_events_name_the_browser() -> None:
    web = props(one(track(channel="web", context={"userAgent": CHROME})))
    assert (web["$browser"], web["$browser_version"]) == ("Chrome", "79.0.3945.117")
    assert "$browser" not in props(one(track(channel="mobile", context={"userAgent": CHROME})))
    assert "$browser" not in props(one(track(channel="web", context={"userAgent": "UA/1"})))


# Profiles, aliases and groups


def test_identify_sets_the_profile_and_merges_ids() -> None:
    event = {
        "type": "identify",
        "userId": "u1",
        "anonymousId": "a1",
        "channel": "web",
        "timestamp": "2026-02-28T10:00:00Z",
        "context": {
            "ip": "1.2.3.4",
            "active": False,
            "userAgent": CHROME,
            "traits": {"firstName": "Ada", "lastName": "L", "plan": "pro"},
            "device": {"type": "ios", "token": "push-1", "model": "iPhone15,2"},
        },
        "traits": {
            "email": "ada@example.com",
            "address": {"city": "Paris"},
            "tags": "beta",
            "first_seen": "2020",
        },
    }
    requests = MIXPANEL.map(
        event,
        settings(
            unionProperties=[{"property": "tags"}],
            setOnceProperties=[{"property": "first_seen"}],
        ),
        NOW,
    )
    profile, once, union, merge = (r.body[0] for r in requests)
    assert profile["$set"] == {
        "$email": "ada@example.com",
        "$first_name": "Ada",
        "$last_name": "L",
        "$name": "Ada L",
        "$city": "Paris",
        "plan": "pro",
        "$ios_devices": ["push-1"],
        "$ios_device_model": "iPhone15,2",
        "$model": "iPhone15,2",
        "$browser": "Chrome",
        "$browser_version": "79.0.3945.117",
    }
    assert profile["$ip"] == "1.2.3.4" and profile["$ignore_time"] is True
    assert profile["$time"] == 1772272800000 and profile["$token"] == TOKEN
    assert once["$set_once"] == {"first_seen": "2020"} and union["$union"] == {"tags": ["beta"]}
    assert merge == {
        "event": "$merge",
        "properties": {"$distinct_ids": ["u1", "a1"], "token": TOKEN},
    }
    assert requests[-1].url.endswith("/import/")
    simplified = MIXPANEL.map(event, settings(identityMergeApi="simplified"), NOW)
    assert [r.url.rsplit("/", 2)[1] for r in simplified] == ["engage"]
    legacy = MIXPANEL.map(event, settings(useNewMapping=False), NOW)[0].body[0]["$set"]
    assert legacy["$firstName"] == "Ada" and "$first_name" not in legacy


def test_alias_creates_an_alias_under_the_original_merge_only() -> None:
    alias = {
        "type": "alias",
        "userId": "u1",
        "previousId": "p1",
        "timestamp": "2026-02-01T00:00:00Z",
    }
    assert one(alias).body == [
        {
            "event": "$create_alias",
            "properties": {"distinct_id": "p1", "alias": "u1", "token": TOKEN},
        }
    ]
    with pytest.raises(Unsendable, match="Simplified"):
        MIXPANEL.map(alias, settings(identityMergeApi="simplified"), NOW)


def test_groups_set_membership_and_group_profiles() -> None:
    event = {
        "type": "group",
        "userId": "u1",
        "groupId": "g-7",
        "traits": {"company": ["Acme", "Initech"], "size": 10},
    }
    requests = MIXPANEL.map(
        event,
        settings(
            groupKeySettings=[
                {"groupKey": "company"},
                {"groupKey": "groupId"},
                {"groupKey": "missing"},
                {},
            ]
        ),
        NOW,
    )
    bodies = [r.body[0] for r in requests]
    assert bodies[0]["$set"] == {"company": ["Acme", "Initech"]}
    assert [(b["$group_key"], b["$group_id"]) for b in bodies if "$group_key" in b] == [
        ("company", "Acme"),
        ("company", "Initech"),
        ("groupId", "g-7"),
    ]
    assert bodies[1]["$set"] == event["traits"] and bodies[1]["$token"] == TOKEN


# Refusals


@pytest.mark.parametrize(
    ("event", "config", "message"),
    [
        ({"type": "delete"}, {}, "unsupported call type"),
        ({"event": "x"}, {}, "unsupported call type"),
        (track(userId=None, anonymousId=None), {}, "neither userId nor anonymousId"),
        (track(event=""), {}, "event name"),
        (track(event=["x"]), {}, "event name"),
        (track(timestamp=None), {}, "no timestamp"),
        (track(timestamp="2020-01-01T00:00:00Z"), {}, "more than 5 years"),
        ({"type": "alias", "userId": "u1"}, {}, "previousId"),
        ({"type": "alias", "userId": "u1", "previousId": "u1"}, {}, "nothing to alias"),
        ({"type": "group", "userId": "u1", "traits": {"company": "A"}}, {}, "groupKeySettings"),
        (
            {"type": "group", "userId": "u1", "traits": {}},
            {"groupKeySettings": [{"groupKey": "company"}]},
            "none of the group keys",
        ),
    ],
)
def test_what_cannot_be_sent_is_refused(
    event: dict[str, Any], config: dict[str, Any], message: str
) -> None:
    with pytest.raises(Unsendable, match=re.escape(message)) as caught:
        MIXPANEL.map(event, settings(**config), NOW)
    assert TOKEN not in str(caught.value)


GARBAGE: list[Any] = [None, 1, 1.5, True, "", "x", [], ["x"], {}, {"a": None}]


@pytest.mark.parametrize("kind", ["track", "page", "screen", "identify", "group", "alias"])
def test_garbage_in_any_field_is_sent_or_refused_never_a_crash(kind: str) -> None:
    config = settings(
        groupKeySettings=[{"groupKey": "company"}],
        propIncrements=[{"property": "n"}],
        setOnceProperties=[{"property": "a"}],
    )
    fields = [
        "event",
        "userId",
        "anonymousId",
        "previousId",
        "messageId",
        "timestamp",
        "properties",
        "traits",
        "context",
        "channel",
        "name",
        "groupId",
    ]
    base = {**track(type=kind), "traits": {"company": "A"}, "previousId": "p"}
    for name in fields:
        for value in GARBAGE:
            for event in (
                {**base, name: value},
                {
                    **base,
                    "context": {
                        "traits": value,
                        "device": value,
                        "page": value,
                        "campaign": value,
                        "userAgent": value,
                    },
                },
                {**base, "properties": {"revenue": value, "n": value}},
            ):
                with contextlib.suppress(Unsendable):
                    MIXPANEL.map(event, config, NOW)


# Batching


def test_requests_to_one_endpoint_combine_into_one_array() -> None:
    identify = {"type": "identify", "userId": "u1", "traits": {"a": 1}}
    first, second = one(track()), one(track(messageId="m-2"))
    profile = one(identify)
    assert MIXPANEL.batch_key(first) == MIXPANEL.batch_key(second) != MIXPANEL.batch_key(profile)
    other_account = one(
        track(), serviceAccountUserName="sa", serviceAccountSecret=SECRET, projectId="1"
    )
    assert MIXPANEL.batch_key(first) != MIXPANEL.batch_key(other_account)
    assert MIXPANEL.combine is not None
    combined = MIXPANEL.combine([first, second])
    assert [e["properties"]["$insert_id"] for e in combined.body] == ["m-1", "m-2"]
    assert (combined.url, combined.headers, combined.params) == (
        first.url,
        first.headers,
        first.params,
    )
    assert MIXPANEL.combine([profile]).body == profile.body
    assert MIXPANEL.batch_size == 2000 and MIXPANEL.batch_bytes <= 10_000_000


# Answers


def classify(status: int, body: bytes | str, count: int = 3) -> Any:
    return MIXPANEL.classify(status, body.encode() if isinstance(body, str) else body, count)


def test_successes_are_delivered() -> None:
    assert classify(200, '{"code":200,"num_records_imported":3,"status":"OK"}') is Verdict.DELIVERED
    assert classify(200, '{"error":null,"status":1}') is Verdict.DELIVERED
    assert classify(200, "1") is Verdict.DELIVERED
    assert classify(204, "") is Verdict.DELIVERED


def test_profile_updates_refused_with_a_200_are_aborted_with_mixpanels_words() -> None:
    refused = classify(200, '{"error":"$distinct_id, missing or invalid","status":0}', 2)
    assert refused == [Judgement(Verdict.ABORT, "$distinct_id, missing or invalid")] * 2
    assert {j.verdict for j in classify(200, "0", 2)} == {Verdict.ABORT}
    assert {j.verdict for j in classify(200, '{"status":0}', 1)} == {Verdict.ABORT}


def test_a_partial_import_aborts_only_the_failed_records() -> None:
    answer = {
        "code": 400,
        "error": "some data points in the request failed validation",
        "status": "Bad Request",
        "num_records_imported": 2,
        "failed_records": [
            {
                "index": 1,
                "$insert_id": "m-2",
                "field": "properties.time",
                "message": "'properties.time' is invalid: must be specified as seconds since epoch",
            },
            {"index": 7, "field": "x", "message": "out of range: ignored"},
            {"index": "0", "message": "not an index: ignored"},
        ],
    }
    judged = classify(400, json.dumps(answer))
    assert [j.verdict for j in judged] == [Verdict.DELIVERED, Verdict.ABORT, Verdict.DELIVERED]
    assert judged[1].reason.startswith("'properties.time' is invalid")
    named = classify(
        400, json.dumps({"failed_records": [{"index": 0, "field": "event", "message": "empty"}]}), 1
    )
    assert named == [Judgement(Verdict.ABORT, "event: empty")]
    nowhere = classify(400, json.dumps({"error": "bad", "failed_records": []}), 2)
    assert nowhere == [Judgement(Verdict.ABORT, "bad")] * 2


@pytest.mark.parametrize(
    ("status", "body", "verdict"),
    [
        (400, '{"code":400,"error":"unable to parse body","status":"Bad Request"}', Verdict.ABORT),
        (401, '{"code":401,"error":"Invalid credentials","status":"Unauthorized"}', Verdict.ABORT),
        (403, "Forbidden", Verdict.ABORT),
        (404, "", Verdict.ABORT),
        (413, '{"code":413,"error":"request body too large"}', Verdict.RETRY),
        (429, '{"code":429,"error":"Project exceeded rate limits."}', Verdict.RETRY),
        (500, "<html>oops</html>", Verdict.RETRY),
        (503, "", Verdict.RETRY),
        # A partial answer cut short: which events failed cannot be told, so all go again.
        (400, '{"code":400,"failed_records":[{"index":0,"field":"x","mess', Verdict.RETRY),
    ],
)
def test_other_answers(status: int, body: str, verdict: Verdict) -> None:
    judged = classify(status, body)
    verdicts = {judged} if isinstance(judged, Verdict) else {j.verdict for j in judged}
    assert verdicts == {verdict}


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"\xff\xfe\x00",
        b"[1,2",
        b"null",
        b"[]",
        b'"0"',
        b"{}",
        b'{"error": 5, "status": "x"}',
        b'{"failed_records": 3}',
    ],
)
@pytest.mark.parametrize("status", [200, 400, 401, 429, 500])
def test_garbage_answers_never_raise(status: int, body: bytes) -> None:
    judged = MIXPANEL.classify(status, body, 2)
    assert isinstance(judged, Verdict) or len(judged) == 2
