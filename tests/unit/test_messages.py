"""Normalisation of Segment-spec messages, without a server."""

import msgspec
import pytest

from engine.errors import InvalidRequest, TooLarge
from engine.gateway import messages
from engine.partitions import PARTITIONS, partition_of
from engine.store.ingest_log import Row

FACTS = messages.RequestFacts.of("src-1", "2026-11-27T10:00:00.000Z", "192.0.2.7", 32 * 1024)


def payload(row: Row) -> dict[str, object]:
    return msgspec.json.decode(row.payload)  # type: ignore[no-any-return]


def single(message: object, call_type: str, facts: messages.RequestFacts = FACTS) -> list[Row]:
    body = messages.parse_single(msgspec.json.encode(message), call_type)
    return messages.rows(body, facts).rows


def batch(body: object) -> list[Row]:
    return messages.rows(messages.parse_batch(msgspec.json.encode(body)), FACTS).rows


def test_single_message_takes_its_type_from_the_path() -> None:
    (row,) = single({"type": "identify", "userId": "u1"}, "track", FACTS)
    assert payload(row)["type"] == "track"


def test_stamps_and_keeps() -> None:
    (row,) = single(
        {"anonymousId": "a1", "messageId": "m1", "writeKey": "secret", "context": {"ip": "x"}},
        "page",
        FACTS,
    )
    body = payload(row)
    assert body["receivedAt"] == FACTS.received_at
    assert body["request_ip"] == "192.0.2.7"
    assert body["context"] == {"ip": "x"}
    assert "writeKey" not in body
    assert (row.message_id, row.source_id, row.received_at) == ("m1", "src-1", FACTS.received_at)


def test_generates_a_message_id_and_stringifies_numeric_ids() -> None:
    (generated,) = single({"userId": 42}, "track", FACTS)
    (numeric,) = single({"userId": "u", "messageId": 7}, "track", FACTS)
    assert len(generated.message_id) == 36
    assert numeric.message_id == "7"
    assert generated.partition == partition_of("42")


@pytest.mark.parametrize(
    ("message", "needle"),
    [
        ({"type": "track"}, "userId"),
        ({"type": "track", "userId": "", "anonymousId": None}, "userId"),
        ({"type": "track", "userId": True}, "userId"),
        ({"type": "launch", "userId": "u"}, "'type'"),
        ({"userId": "u"}, "'type'"),
        ({"type": "track", "userId": "u", "context": "web"}, "context"),
        ("not an object", "JSON object"),
    ],
)
def test_rejections_name_the_message(message: object, needle: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        batch({"batch": [{"type": "track", "userId": "ok"}, message]})
    assert "message 1 of the batch" in caught.value.message
    assert needle in caught.value.message


def test_batch_level_fields_are_inherited_but_never_override() -> None:
    rows = batch(
        {
            "batch": [
                {"type": "track", "userId": "u", "context": {"app": "mine"}},
                {"type": "track", "userId": "u", "sentAt": "own", "integrations": {"All": False}},
            ],
            "sentAt": "shared",
            "context": {"library": {"name": "lib"}, "app": "shared"},
            "integrations": {"All": True},
        }
    )
    first, second = (payload(r) for r in rows)
    assert first["sentAt"] == "shared"
    assert first["context"] == {"library": {"name": "lib"}, "app": "mine"}
    assert second["sentAt"] == "own"
    assert second["integrations"] == {"All": False}


def test_a_message_over_the_size_limit_is_refused_alone() -> None:
    small = FACTS._replace(max_message_bytes=1024)
    big = {"type": "track", "userId": "u", "properties": {"x": "y" * 2000}}
    body = {"batch": [big, {"type": "track", "userId": "u", "event": "Fits"}]}
    accepted = messages.rows(messages.parse_batch(msgspec.json.encode(body)), small)
    assert [payload(row)["event"] for row in accepted.rows] == ["Fits"]
    (refusal,) = accepted.refused
    assert refusal.reason.startswith("message 0 of the batch is 2")
    assert refusal.reason.endswith("the limit is 1024 bytes")
    assert refusal.message == msgspec.json.encode(big)
    with pytest.raises(TooLarge, match="limit is 1024 bytes"):
        messages.from_pixel(iter([("userId", "u"), ("x", "y" * 2000)]), "track", small)


def test_nul_characters_are_dropped_everywhere() -> None:
    (row,) = single(
        {"userId": "u\x00", "messageId": "m\x001", "properties": {"k\x00": ["v\x00", "\\u0000"]}},
        "track",
        FACTS,
    )
    body = payload(row)
    assert row.message_id == "m1"
    assert body["userId"] == "u"
    # an escaped backslash followed by "u0000" is text, not a NUL, and is kept
    assert body["properties"] == {"k": ["v", "\\u0000"]}


def test_a_lone_surrogate_is_read_as_a_replacement_character_as_the_go_server_reads_it() -> None:
    # An SDK that cut a string in the middle of an emoji: well-formed JSON, no Unicode text.
    text = (
        b'"event": "Cut \\ud83d", "userId": "u\\udc00",'
        b' "properties": {"e": "\\ud83d\\ude00", "n": 1.50}'
    )
    (one,) = messages.rows(messages.parse_single(b"{" + text + b"}", "track"), FACTS).rows
    (two,) = messages.rows(
        messages.parse_batch(b'{"batch": [{"type": "track", ' + text + b"}]}"), FACTS
    ).rows
    for row in (one, two):
        stored = payload(row)
        assert stored["event"] == "Cut \ufffd" and stored["userId"] == "u\ufffd"
        assert stored["properties"] == {"e": "\U0001f600", "n": 1.5}
        assert b'"n": 1.50' in row.payload  # the rest as it was written


def test_pixel_parameters_nest_on_dots() -> None:
    row = messages.from_pixel(
        iter(
            [
                ("writeKey", "k"),
                ("anonymousId", "a"),
                ("context.page.path", "/x"),
                ("context.page.title", "X"),
                ("name", "Home"),
            ]
        ),
        "page",
        FACTS,
    )
    body = payload(row)
    assert body["context"] == {"page": {"path": "/x", "title": "X"}}
    assert body["name"] == "Home" and body["type"] == "page" and "writeKey" not in body


def test_partitions_are_stable_and_in_range() -> None:
    assert partition_of("user-1") == partition_of("user-1")
    assert {partition_of(f"user-{i}") for i in range(5000)} == set(range(PARTITIONS))


QUICK_AND_FULL = [
    {"type": "track", "userId": "u", "event": "E", "properties": {"a": [1, 2.5, None, "x"]}},
    {"type": "page", "anonymousId": "a", "messageId": "m", "context": {"page": {"path": "/"}}},
    {"type": "group", "userId": 5, "groupId": "g", "traits": {"n": 'é ✓ "quoted"'}},
    {"type": "alias", "userId": "u", "previousId": "p", "timestamp": "2026-01-01T00:00:00Z"},
    {"type": "screen", "userId": "u", "anonymousId": None, "context": {}},
    {
        "type": "track",
        "userId": "u",
        "sentAt": "2026-01-01T00:00:00Z",
        "context": {"ip": "1.2.3.4"},
    },
    {"type": "track", "userId": "u", "properties": {"price": 89.99, "tiny": 1e-7, "n": 12345}},
    {"type": "track", "userId": 1.5},
    {"type": "track", "anonymousId": "a", "userId": -1e-300},
]


@pytest.mark.parametrize("message", QUICK_AND_FULL)
def test_the_quick_way_stores_what_the_full_way_would(message: dict[str, object]) -> None:
    body = {"batch": [message], "sentAt": "2026-11-27T09:59:59Z"}
    parsed = messages.parse_batch(msgspec.json.encode(body))
    ((raw, envelope),) = parsed.messages
    quick = messages._quick(raw, envelope, parsed, FACTS, 0)
    assert quick is not None, "this message should take the quick way"
    decoded = messages._any.decode(msgspec.json.encode(message))  # as the full way reads it
    full = messages.normalise(
        {"sentAt": "2026-11-27T09:59:59Z", **decoded},
        FACTS,
        "m",
    )
    quick_payload, full_payload = payload(quick), payload(full)
    if "messageId" not in message:  # each way generates its own
        assert quick.message_id == quick_payload.pop("messageId") != full_payload.pop("messageId")
    assert quick_payload == full_payload
    assert quick._replace(payload=b"", message_id="") == full._replace(payload=b"", message_id="")


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (b'{"batch": [{"type": [], "userId": "u"}]}', "'type'"),
        (b'{"batch": [{"type": {}, "userId": "u"}]}', "'type'"),
        (
            b'{"batch": [{"type": "track", "userId": "u", "p": '
            + b"[" * 3000
            + b"]" * 3000
            + b"}]}",
            "nested too deeply",
        ),
        (  # deep, a lone surrogate in it, and cut short: nothing to mend, no crash
            b'{"batch": [{"type": "track", "userId": "u", "p": ' + b"[" * 700 + b'"\\ud800"',
            "malformed JSON",
        ),
    ],
)
def test_odd_shapes_are_400_not_crashes(body: bytes, needle: str) -> None:
    with pytest.raises(InvalidRequest, match=needle):
        messages.rows(messages.parse_batch(body), FACTS)


def test_numbers_keep_their_text_even_beyond_any_float() -> None:
    huge = b"1e1000000000000000000"
    for call_type in ("track", "identify"):
        raw = b'{"userId": 1.50, "properties": {"n": ' + huge + b', "x": 0.10}}'
        (row,) = messages.rows(messages.parse_single(raw, call_type), FACTS).rows
        assert huge in row.payload and b"0.10" in row.payload
        assert row.partition == partition_of("1.50")


def test_nul_only_ids_and_shared_values_are_cleaned_both_ways() -> None:
    rows = batch(
        {"batch": [{"type": "track", "userId": "u", "messageId": "\x00"}], "sentAt": "\x00"}
    )
    body = payload(rows[0])
    assert len(rows[0].message_id) == 36 and body["messageId"] == rows[0].message_id
    assert body["sentAt"] == ""


def test_an_own_sent_at_is_never_merged_with_the_batch_one() -> None:
    (row,) = batch(
        {"batch": [{"type": "identify", "userId": "u", "sentAt": {"a": 1}}], "sentAt": {"b": 2}}
    )
    assert payload(row)["sentAt"] == {"a": 1}
