"""The webhook mapping against the conformance cases, and what it refuses."""

import json
import re
from pathlib import Path
from typing import Any

import pytest

from engine.destinations.base import BadSettings, Unsendable
from engine.destinations.webhook import WEBHOOK

CASES = [
    case
    for case in json.loads(
        (Path(__file__).parents[1] / "conformance/destinations.json").read_text()
    )
    if case["destination"] == "webhook"
]


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_conformance(case: dict[str, Any]) -> None:
    expected = case["expected"]
    [request] = WEBHOOK.map(case["event"], WEBHOOK.parse_settings(case["config"]))
    assert request.method == expected["method"]
    assert request.url == expected["endpoint"]
    # loose field: header names compare case-insensitively
    assert {k.lower(): v for k, v in request.headers.items()} == {
        k.lower(): v for k, v in expected.get("headers", {}).items()
    }
    assert request.params == {k: _text(v) for k, v in expected.get("params", {}).items()}
    assert request.body == expected.get("body")


def test_there_are_webhook_cases() -> None:
    assert len(CASES) == 8


SETTINGS = WEBHOOK.parse_settings({"webhookUrl": "https://example.com/hook"})


@pytest.mark.parametrize(
    "event",
    [
        {"type": "track", "header": {"X-Evil": "a\r\nSet-Cookie: x=1"}},
        {"type": "track", "header": {"bad name": "v"}},
        {"type": "track", "fullPath": "file:///etc/passwd"},
        {"type": "track", "appendPath": "/a b"},
    ],
)
def test_an_event_that_cannot_make_a_safe_request_is_refused(event: dict[str, Any]) -> None:
    with pytest.raises(Unsendable):
        WEBHOOK.map(event, SETTINGS)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({}, "webhookUrl"),
        ({"webhookUrl": "ftp://x"}, "not an http(s) URL"),
        ({"webhookUrl": "https://x", "webhookMethod": "TRACE"}, "webhookMethod"),
        ({"webhookUrl": "https://x", "headers": [{"from": "a b", "to": "c"}]}, "header name"),
    ],
)
def test_bad_settings_say_what_is_wrong(config: dict[str, Any], message: str) -> None:
    with pytest.raises(BadSettings, match=re.escape(message)):
        WEBHOOK.parse_settings(config)


def test_numbers_keep_their_text_and_identify_sends_traits_on_get() -> None:
    from engine import codec

    event = codec.decode(b'{"type":"identify","traits":{"score":1e999,"plan":{"tier":"pro"}}}')
    settings = WEBHOOK.parse_settings({"webhookUrl": "https://x/y", "webhookMethod": "get"})
    [request] = WEBHOOK.map(event, settings)
    assert request.params == {"score": "1e999", "plan.tier": "pro"}
    [post] = WEBHOOK.map(event, SETTINGS)
    assert b'"score":1e999' in codec.encode(post.body)


def test_event_headers_cannot_replace_configured_or_framing_ones() -> None:
    settings = WEBHOOK.parse_settings(
        {"webhookUrl": "https://x/y", "headers": [{"from": "Authorization", "to": "Bearer s"}]}
    )
    event = {"type": "track", "header": {"authorization": "mine", "Host": "evil", "X-Ok": "1"}}
    [request] = WEBHOOK.map(event, settings)
    assert request.headers["authorization"] == "Bearer s"
    assert "Host" not in request.headers and request.headers["X-Ok"] == "1"


def test_append_path_cannot_change_the_host() -> None:
    with pytest.raises(Unsendable, match="must start with"):
        WEBHOOK.map({"type": "track", "appendPath": "@evil.example/x"}, SETTINGS)
    [request] = WEBHOOK.map({"type": "track", "appendPath": "?q=1"}, SETTINGS)
    assert request.url == "https://example.com/hook?q=1"
