"""The PostHog mapping: settings, refusals, identity, the size limit, batching and what
PostHog's answers mean."""

import uuid
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest

from engine import codec
from engine.control import preview
from engine.destinations.base import BadSettings, Judgement, Request, Unsendable, Verdict
from engine.destinations.posthog import MAX_EVENT_BYTES, POSTHOG, UUID_NAMESPACE

NOW = datetime(2026, 3, 1, tzinfo=UTC)
KEY = "phc_3kd8Qm2vXk9TfR4sLw1bNc8Yd"
CHROME = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_2) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/79.0.3945.117 Safari/537.36"
)


def settings(**config: Any) -> Any:
    return POSTHOG.parse_settings({"teamApiKey": KEY, **config})


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
    [request] = POSTHOG.map(event, settings(**config), NOW)
    return request


def body(event: dict[str, Any], **config: Any) -> dict[str, Any]:
    found: dict[str, Any] = one(event, **config).body
    return found


# Settings


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({}, "teamApiKey"),
        ({"teamApiKey": "  "}, "teamApiKey is empty"),
        ({"teamApiKey": "phc_a b"}, "contains spaces"),
        ({"teamApiKey": "phx_personal0123"}, "personal API key"),
        ({"teamApiKey": KEY, "yourInstance": "eu.posthog.com"}, "yourInstance 'eu.posthog.com'"),
        ({"teamApiKey": KEY, "yourInstance": "https://x.example/?a=1"}, "yourInstance"),
        ({"teamApiKey": KEY, "endpoint": "ftp://proxy.example"}, "endpoint"),
        ({"teamApiKey": KEY, "useV2Group": "yes"}, "useV2Group"),
    ],
)
def test_bad_settings_are_refused_with_the_setting_named(
    config: dict[str, Any], message: str
) -> None:
    with pytest.raises(BadSettings, match=message):
        POSTHOG.parse_settings(config)


@pytest.mark.parametrize(
    ("config", "url"),
    [
        ({}, "https://app.posthog.com/batch"),
        ({"yourInstance": "https://eu.i.posthog.com/"}, "https://eu.i.posthog.com/batch"),
        ({"yourInstance": " https://ph.example.org/base "}, "https://ph.example.org/base/batch"),
        (
            {"yourInstance": "https://eu.i.posthog.com", "endpoint": "http://127.0.0.1:9/"},
            "http://127.0.0.1:9/batch",
        ),
    ],
)
def test_the_host_is_the_endpoint_else_the_instance_else_posthog_cloud(
    config: dict[str, Any], url: str
) -> None:
    request = one(track(), **config)
    assert (request.method, request.url) == ("POST", url)
    assert request.headers == {"Content-Type": "application/json"}


def test_every_setting_has_help_and_the_key_is_secret() -> None:
    fields = {f.encode_name for f in msgspec.structs.fields(POSTHOG.settings)}
    assert set(POSTHOG.help) == fields
    assert all(line.strip() for line in POSTHOG.help.values())
    assert POSTHOG.secret_keys == ("teamApiKey",)
    assert POSTHOG.required == ("teamApiKey",)


def test_the_preview_masks_the_project_key_in_the_body() -> None:
    [request] = preview.of_type("posthog", {"teamApiKey": KEY}, track(), NOW)
    assert request.body["api_key"] == "****"
    assert KEY not in codec.encode(request).decode()


# Mapping rules the cases do not cover


def test_the_key_travels_in_the_body_and_no_header_carries_it() -> None:
    request = one(track())
    assert request.body["api_key"] == KEY
    assert KEY not in str(request.headers) and not request.params


def test_distinct_id_follows_rudderstacks_order_and_is_text() -> None:
    assert body(track(userId=42))["distinct_id"] == "42"
    assert body(track(userId=42))["properties"]["distinct_id"] == "42"
    # No userId: the traits' id comes before the anonymous id (as RudderStack sends it).
    anonymous = track(userId=None, context={"traits": {"id": "t-7"}})
    assert body(anonymous)["distinct_id"] == "t-7"
    assert body(anonymous)["properties"]["distinct_id"] == "a1"
    with pytest.raises(Unsendable, match="neither userId nor anonymousId"):
        POSTHOG.map(track(userId="", anonymousId=None), settings(), NOW)


def test_a_track_without_a_name_is_refused_and_a_numeric_name_is_sent_as_text() -> None:
    # An empty name would make PostHog refuse the whole batch that carries it.
    for name in (None, "", "  ", {"a": 1}):
        with pytest.raises(Unsendable, match="event name"):
            POSTHOG.map(track(event=name), settings(), NOW)
    assert body(track(event=404))["event"] == "404"


def test_timestamp_is_text_as_written_else_left_out() -> None:
    assert body(track())["timestamp"] == "2026-02-28T10:00:00.123Z"
    # PostHog takes only text: a number there would refuse the batch.
    found = body(track(timestamp=1772272800, originalTimestamp="2026-02-28T09:00:00Z"))
    assert found["timestamp"] == "2026-02-28T09:00:00Z"
    assert found["properties"]["$time"] == "2026-02-28T09:00:00Z"
    bare = body(track(timestamp=None, properties={"timestamp": "2026-01-01T00:00:00Z"}))
    assert bare["timestamp"] == "2026-01-01T00:00:00Z"
    assert "$time" not in bare["properties"]
    assert "timestamp" not in body(track(timestamp=None))


def test_event_properties_win_over_context_copies() -> None:
    event = track(
        context={"ip": "10.0.0.1", "os": {"name": "iOS"}, "campaign": {"name": "spring"}},
        properties={"$ip": "10.9.9.9", "plan": "pro"},
    )
    properties = body(event)["properties"]
    assert properties["$ip"] == "10.9.9.9" and properties["plan"] == "pro"
    assert properties["$os"] == "iOS" and properties["utm_campaign"] == "spring"


def test_host_is_read_from_an_absolute_page_url_only() -> None:
    def host(url: str) -> Any:
        return body(track(context={"page": {"url": url}}))["properties"].get("$host")

    assert host("https://Shop.Example.com:443/a?b=1") == "shop.example.com"
    assert host("http://localhost:1112/x") == "localhost:1112"
    assert host("http://[::1]:8080/") == "[::1]:8080"
    assert host("/relative/path") is None
    assert host("http://bad:port/") is None


def test_only_web_events_read_the_user_agent() -> None:
    context = {"userAgent": CHROME, "os": {"name": "from-context"}}
    web = body(track(channel="web", context=context))["properties"]
    assert (web["$browser"], web["$browser_version"]) == ("Chrome", "79.0.3945.117")
    assert web["$os"] == "Mac OS X" and web["$useragent"] == CHROME
    mobile = body(track(channel="mobile", context=context))["properties"]
    assert "$browser" not in mobile and mobile["$os"] == "from-context"


def test_screen_name_comes_from_the_event_else_the_name() -> None:
    screen = {"type": "screen", "userId": "u1", "name": "Home", "category": "Main"}
    found = body(screen)
    assert (found["type"], found["event"]) == ("screen", "$screen")
    assert found["properties"]["$screen_name"] == "Home"
    assert (found["name"], found["category"]) == ("Home", "Main")
    assert body({**screen, "event": "Feed"})["properties"]["$screen_name"] == "Feed"


def test_identify_sets_traits_top_level_and_goes_without_them() -> None:
    identify = {"type": "identify", "userId": "u1", "anonymousId": "a1",
                "context": {"traits": {"plan": "pro"}}}  # fmt: skip
    found = body(identify)
    assert found["$set"] == {"plan": "pro"} and "$set" not in found["properties"]
    # Without traits it still merges the anonymous person into the user.
    bare = body({"type": "identify", "userId": "u1", "anonymousId": "a1"})
    assert "$set" not in bare and bare["properties"]["$anon_distinct_id"] == "a1"


def test_v2_groups_need_a_type_and_a_key() -> None:
    group = {"type": "group", "userId": "u1", "groupId": 7, "traits": {"groupType": "team"}}
    found = body(group, useV2Group=True)["properties"]
    assert (found["$group_key"], found["$group_type"], found["$group_set"]) == ("7", "team", {})
    assert found["$groups"] == {"team": "7"}
    with pytest.raises(Unsendable, match=r"traits\.groupType"):
        POSTHOG.map({**group, "traits": {"name": "x"}}, settings(useV2Group=True), NOW)
    with pytest.raises(Unsendable, match="groupId"):
        POSTHOG.map({**group, "groupId": None}, settings(useV2Group=True), NOW)
    legacy = body({**group, "traits": {"name": "x"}})
    assert (legacy["groupId"], legacy["traits"]) == (7, {"name": "x"})


def test_alias_needs_a_previous_id() -> None:
    alias = {"type": "alias", "userId": "u2", "previousId": "u1", "messageId": "m-9"}
    found = body(alias)
    assert found["properties"]["alias"] == "u1" and found["properties"]["distinct_id"] == "u2"
    assert "distinct_id" not in found and "messageId" not in found  # (RudderStack's shape)
    with pytest.raises(Unsendable, match="previousId"):
        POSTHOG.map({**alias, "previousId": ""}, settings(), NOW)


def test_an_event_over_the_size_limit_is_refused_alone() -> None:
    def sized(extra: int) -> dict[str, Any]:
        event = track(properties={"blob": ""})
        base = len(codec.encode({k: v for k, v in body(event).items() if k != "api_key"}))
        return track(properties={"blob": "x" * (MAX_EVENT_BYTES - base + extra)})

    assert len(POSTHOG.map(sized(0), settings(), NOW)) == 1
    with pytest.raises(Unsendable, match=r"900001 bytes.*over 1 MB"):
        POSTHOG.map(sized(1), settings(), NOW)


def test_unsupported_call_types_are_refused() -> None:
    with pytest.raises(Unsendable, match="unsupported call type"):
        POSTHOG.map({"type": "merge", "userId": "u1"}, settings(), NOW)


# Batching


def test_a_batch_wraps_the_events_with_one_key_in_their_order() -> None:
    requests = [one(track(userId=f"u{n}", messageId=f"m-{n}")) for n in range(3)]
    assert len({POSTHOG.batch_key(r) for r in requests}) == 1
    combined = POSTHOG.combine(requests) if POSTHOG.combine else None
    assert combined is not None and combined.url == requests[0].url
    assert combined.body["api_key"] == KEY
    assert [e["messageId"] for e in combined.body["batch"]] == ["m-0", "m-1", "m-2"]
    assert all("api_key" not in e for e in combined.body["batch"])


def test_requests_for_another_key_or_host_do_not_combine() -> None:
    first = POSTHOG.batch_key(one(track()))
    assert first != POSTHOG.batch_key(one(track(), teamApiKey="phc_other"))
    assert first != POSTHOG.batch_key(one(track(), yourInstance="https://eu.i.posthog.com"))


# Answers


@pytest.mark.parametrize(
    ("status", "answer", "verdict"),
    [
        (200, b'{"status": 1}', Verdict.DELIVERED),
        (204, b"", Verdict.DELIVERED),
        (429, b"rate limited", Verdict.RETRY),
        (429, b"billing limit reached", Verdict.RETRY),
        (503, b"transient error, please retry", Verdict.RETRY),
        (400, b"", Verdict.ABORT),
        (404, b"   ", Verdict.ABORT),
    ],
)
def test_answers_without_partial_success(status: int, answer: bytes, verdict: Verdict) -> None:
    assert POSTHOG.classify(status, answer, 3) == verdict


@pytest.mark.parametrize(
    ("status", "answer", "reason"),
    [
        (400, b"event submitted without a distinct_id", "event submitted without a distinct_id"),
        (401, b"API key is not valid: personal api key", "API key is not valid: personal api key"),
        (
            401,
            b'{"type": "authentication_error", "code": "invalid_api_key",'
            b' "detail": "Project API key invalid."}',
            "Project API key invalid.",
        ),
        (400, b'"bad"', "bad"),
        (400, b"x" * 1000, "x" * 300),
    ],
)
def test_a_refusal_refuses_every_event_with_posthogs_words(
    status: int, answer: bytes, reason: str
) -> None:
    assert POSTHOG.classify(status, answer, 1) == [Judgement(Verdict.ABORT, reason)]
    if status != 400:
        assert POSTHOG.classify(status, answer, 2) == [Judgement(Verdict.ABORT, reason)] * 2


@pytest.mark.parametrize(
    ("status", "answer"),
    [(400, b"event submitted without a distinct_id"), (413, b"maximum event size exceeded")],
)
def test_a_batch_refused_for_one_event_is_judged_whole_so_the_router_splits_it(
    status: int, answer: bytes
) -> None:
    """PostHog names no event: the batch's events go again one by one (`split_on` for 400,
    the router's own rule for 413); a 401 is every event's, and is not split."""
    assert POSTHOG.split_on == frozenset({400})
    assert POSTHOG.classify(status, answer, 3) is Verdict.ABORT
    assert POSTHOG.classify(401, b"API key is not valid", 3) == [
        Judgement(Verdict.ABORT, "API key is not valid")] * 3  # fmt: skip


# Dedup: PostHog's event UUID


def test_every_call_carries_a_uuid_made_from_its_message_id() -> None:
    events = [
        track(),
        track(type="page", name="Home"),
        track(type="screen", name="Home"),
        track(type="identify", traits={"plan": "pro"}),
        track(type="group", groupId="g1"),
        track(type="alias", previousId="a0"),
    ]
    uuids = {e["type"]: one(e).body["uuid"] for e in events}
    expected = str(uuid.uuid5(UUID_NAMESPACE, "m-1"))
    assert set(uuids.values()) == {expected}
    assert uuid.UUID(expected).version == 5  # a valid UUID, as PostHog requires


def test_the_same_message_id_gives_the_same_uuid_and_another_a_different_one() -> None:
    first, again = one(track()).body["uuid"], one(track(properties={"x": 1})).body["uuid"]
    other = one(track(messageId="m-2")).body["uuid"]
    assert first == again and first != other
    # Fixed for good: a change would give events sent again a new UUID.
    assert one(track(messageId="m-fixed")).body["uuid"] == "eed94e3a-de78-5a8a-9212-975d0a5fb11a"


def test_an_event_without_a_message_id_carries_no_uuid() -> None:
    event = track()
    del event["messageId"]
    assert "uuid" not in one(event).body
    assert "uuid" not in one(track(messageId="")).body


def test_a_batch_keeps_each_events_uuid() -> None:
    assert POSTHOG.combine is not None
    requests = [one(track(messageId=f"m-{n}")) for n in range(2)]
    batch = POSTHOG.combine(requests).body["batch"]
    assert [e["uuid"] for e in batch] == [r.body["uuid"] for r in requests]
    assert batch[0]["uuid"] != batch[1]["uuid"]
