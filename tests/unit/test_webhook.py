"""The webhook mapping: what it refuses, and how it keeps what it sends safe."""

import re
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest

from engine.destinations.base import BadSettings, Unsendable
from engine.destinations.secrets import MASK
from engine.destinations.webhook import WEBHOOK
from engine.pipeline.topology import Target
from engine.specs import DestinationSpec

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


def test_a_shown_request_hides_the_urls_credentials_and_every_configured_header_value() -> None:
    url = "https://robot:hunter2-pass@hooks.example.com/in?team=growth&token=tok-123456"
    config = {"webhookUrl": url, "webhookMethod": "POST",
              "headers": [{"from": "X-Custom", "to": "custom-42"},
                          {"from": "X-Api-Key", "to": "key-987654"}]}  # fmt: skip
    target = Target.of(DestinationSpec(name="hook", type="webhook", config=config))
    event = {"type": "track", "event": "custom-42 growth", "header": {"X-Event": "mine"}}
    [request] = WEBHOOK.map(event, WEBHOOK.parse_settings(config), NOW)
    request = msgspec.structs.replace(request, url=request.url + "/more")  # an appendPath
    shown = target.masked(request)
    assert shown.url == "https://****@hooks.example.com/in?team=****&token=****/more"
    assert shown.headers["x-custom"] == shown.headers["x-api-key"] == MASK
    assert shown.headers["X-Event"] == "mine"  # the event's own, as it sent them
    assert shown.body["event"] == "custom-42 growth"  # the event's data is not the settings'
    # the URL's password and token and the key are secrets: masked in any text shown
    said = target.mask(f"401 for {url}: key-987654 refused, password hunter2-pass")
    assert "hunter2-pass" not in said and "tok-123456" not in said and "key-987654" not in said


def test_an_answer_echoing_the_request_shows_none_of_the_private_settings() -> None:
    """What a vendor answered (a debugging endpoint echoes the request it got) is shown like
    the request: without the header values and query values a viewer is not shown."""
    url = "https://hooks.example.com/in?team=T9-growth&token=tok-123456"
    config = {"webhookUrl": url, "headers": [{"from": "X-Partner-Id", "to": "privval-777"}]}
    target = Target.of(DestinationSpec(name="hook", type="webhook", config=config))
    echoed = (
        f'{{"url": "{url}", "headers": {{"X-Partner-Id": "privval-777"}}, "team": "T9-growth"}}'
    )
    shown = target.mask_text(echoed)
    assert "privval-777" not in shown and "T9-growth" not in shown and "tok-123456" not in shown
    assert shown == '{"url": "****", "headers": {"X-Partner-Id": "****"}, "team": "****"}'
