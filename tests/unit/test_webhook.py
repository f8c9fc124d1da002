"""The webhook mapping: what it refuses, and how it keeps what it sends safe."""

import re
from datetime import UTC, datetime
from typing import Any

import pytest

from engine.destinations.base import BadSettings, Unsendable
from engine.destinations.webhook import WEBHOOK

NOW = datetime(2026, 1, 1, tzinfo=UTC)
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
        WEBHOOK.map(event, SETTINGS, NOW)


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
    [request] = WEBHOOK.map(event, settings, NOW)
    assert request.params == {"score": "1e999", "plan.tier": "pro"}
    [post] = WEBHOOK.map(event, SETTINGS, NOW)
    assert b'"score":1e999' in codec.encode(post.body)


def test_event_headers_cannot_replace_configured_or_framing_ones() -> None:
    settings = WEBHOOK.parse_settings(
        {"webhookUrl": "https://x/y", "headers": [{"from": "Authorization", "to": "Bearer s"}]}
    )
    event = {"type": "track", "header": {"authorization": "mine", "Host": "evil", "X-Ok": "1"}}
    [request] = WEBHOOK.map(event, settings, NOW)
    assert request.headers["authorization"] == "Bearer s"
    assert "Host" not in request.headers and request.headers["X-Ok"] == "1"


def test_append_path_cannot_change_the_host() -> None:
    with pytest.raises(Unsendable, match="must start with"):
        WEBHOOK.map({"type": "track", "appendPath": "@evil.example/x"}, SETTINGS, NOW)
    [request] = WEBHOOK.map({"type": "track", "appendPath": "?q=1"}, SETTINGS, NOW)
    assert request.url == "https://example.com/hook?q=1"
