"""Slack's rules the conformance cases do not reach: names, templates over hostile values,
refusals, settings, the `endpoint` host, secrets and how answers are read."""

import json
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest

from engine import codec
from engine.control import preview
from engine.destinations.base import BadSettings, Judgement, Unsendable, Verdict
from engine.destinations.slack import MAX_TEXT, SLACK, classify

HOOK = "https://hooks.slack.com/services/T01/B02/s3cr3tT0ken"
NESTED = "{{#each items}}{{#each ../items}}{{#each ../../items}}{{/each}}{{/each}}{{/each}}"
NOW = datetime(2026, 1, 15, tzinfo=UTC)
RATE_LIMITED = "past Slack's rate limit for the webhook, about a message a second"


def payload(event: dict[str, Any], **config: Any) -> dict[str, Any]:
    [request] = SLACK.map(codec.decode(json.dumps(event)), settings(**config), NOW)
    assert request.body_format == "form" and set(request.body) == {"payload"}
    found: dict[str, Any] = json.loads(request.body["payload"])
    return found


def settings(**config: Any) -> Any:
    return SLACK.parse_settings({"webhookUrl": HOOK, **config})


def track(**fields: Any) -> dict[str, Any]:
    return {"type": "track", "event": "Signed Up", "userId": "u1", **fields}


@pytest.mark.parametrize(
    ("fields", "name"),
    [
        ({"traits": {"name": "Ada", "firstName": "X"}}, "Ada"),
        ({"traits": {"firstName": "Ada", "lastName": "Lovelace"}}, "Ada Lovelace"),
        ({"traits": {"lastName": "Lovelace", "username": "ada"}}, "Lovelace"),
        ({"traits": {"username": "ada", "email": "t@x.io"}}, "ada"),
        ({"properties": {"email": "p@x.io"}, "traits": {"email": "t@x.io"}}, "p@x.io"),
        ({"context": {"traits": {"email": "t@x.io"}}}, "t@x.io"),
        ({}, "User u1"),
        ({"userId": None, "anonymousId": "a1"}, "Anonymous user a1"),
        ({"userId": 42}, "User 42"),
    ],
)
def test_who_the_message_names(fields: dict[str, Any], name: str) -> None:
    assert payload(track(**fields))["text"] == f"{name} did Signed Up"


def test_properties_named_name_or_event_replace_them_as_in_rudderstack() -> None:
    """RudderStack's template input is `{name, event, ...properties, properties, …}`."""
    event = track(properties={"name": "Shirt", "event": "x", "sku": "S-1", "traits": "t"})
    template = "{{name}} {{event}} {{sku}} {{properties.name}} {{traits}}"
    text = payload(event, eventTemplateSettings=[
        {"eventName": "Signed Up", "eventTemplate": template}
    ])["text"]  # fmt: skip
    assert text == "Shirt x S-1 Shirt "  # `traits` (the traits' text) wins over the property
    assert payload(event)["text"] == "Shirt did x"
    identify = {"type": "identify", "userId": "u1", "traits": {"name": "", "username": "ada"}}
    assert payload(identify, identifyTemplate="[{{name}}]")["text"] == "[]"


def test_trait_keys_are_escaped_in_the_default_identify_text() -> None:
    """Keys come from the event as values do: neither may ping a channel or add a link."""
    key = "<!channel> <https://evil.example|Reset password>"
    event = {"type": "identify", "userId": "u1", "traits": {key: "<b>", "plan": "pro"}}
    text = payload(event)["text"]
    assert text == (
        "Identified User u1&lt;!channel&gt; &lt;https://evil.example|Reset password&gt;: "
        "&lt;b&gt; plan: pro "
    )
    assert "<" not in text and ">" not in text
    listed = payload(event, whitelistedTraitsSettings=[{"trait": key}])["text"]
    assert "<" not in listed and listed.endswith(": &lt;b&gt; ")


def test_values_from_events_are_escaped_unless_the_template_says_otherwise() -> None:
    event = track(event="<b>&", traits={"name": "<!channel>"})
    assert payload(event)["text"] == "&lt;!channel&gt; did &lt;b&gt;&amp;"
    template = [{"eventName": "<", "eventRegex": True, "eventTemplate": "{{{name}}}"}]
    assert payload(event, eventTemplateSettings=template)["text"] == "<!channel>"


def test_identify_lists_the_whitelisted_traits_or_all_of_them() -> None:
    event = {"type": "identify", "userId": "u1",
             "traits": {"name": "Ada", "plan": "pro", "seats": 3, "tags": ["a", "b"]}}  # fmt: skip
    assert payload(event)["text"] == "Identified Adaname: Ada plan: pro seats: 3 tags: a,b "
    rows = [{"trait": " seats "}, {"trait": ""}, {"trait": "missing"}]
    assert (
        payload(event, whitelistedTraitsSettings=rows)["text"]
        == "Identified Adaseats: 3 missing:  "
    )
    template = "{{name}}: {{traits}}/{{traitsList.plan}}/{{plan}}"
    text = payload(event, whitelistedTraitsSettings=rows, identifyTemplate=template)["text"]
    assert text == "Ada: seats: 3 /pro/pro"


def test_track_template_input_lists_properties_and_traits() -> None:
    event = track(properties={"a": 1, "b": None}, context={"traits": {"plan": "pro", "x": 1}})
    template = [{"eventName": "Signed Up", "eventTemplate": "{{propertiesList}}|{{traits}}"}]
    text = payload(event, eventTemplateSettings=template,
                   whitelistedTraitsSettings=[{"trait": "plan"}])["text"]  # fmt: skip
    assert text == "a: 1 b: null |plan: pro "


def test_the_first_matching_rows_choose_template_and_channel() -> None:
    rows = [
        {"eventName": "Order", "eventRegex": False, "eventTemplate": "exact only"},
        {"eventName": "^Ord", "eventRegex": True, "eventTemplate": "   "},
        {"eventName": "der C", "eventRegex": True, "eventTemplate": "regex {{event}}"},
        {"eventName": "Order Completed", "eventTemplate": "later"},
    ]
    channels = [
        {"eventName": "Order Completed", "eventChannelWebhook": "https://hooks.slack.com/x/y"},
        {"eventName": "Completed$", "eventRegex": True, "eventChannel": "#sales"},
        {"eventName": "Order Completed", "eventChannel": "#other"},
    ]
    event = track(event="Order Completed")
    legacy = payload(event, eventTemplateSettings=rows, eventChannelSettings=channels)
    assert legacy == {"text": "regex Order Completed", "channel": "#sales"}
    [modern] = SLACK.map(event, settings(incomingWebhooksType="modern",
                                         eventChannelSettings=channels), NOW)  # fmt: skip
    assert modern.url == "https://hooks.slack.com/x/y"
    assert json.loads(modern.body["payload"]) == {"text": "User u1 did Order Completed"}


@pytest.mark.parametrize(
    ("event", "config", "why"),
    [
        (track(event=""), {}, "needs an event name"),
        (track(event=7), {}, "needs an event name"),
        (
            track(properties={"items": list(range(2000))}),
            {"eventTemplateSettings": [{"eventName": "Signed Up", "eventTemplate": NESTED}]},
            r"event template \(eventTemplateSettings\) '\{\{#each items\}\}.*' cannot be "
            r"rendered: rendering takes too long",
        ),
        (
            {"type": "identify", "userId": "u1"},
            {"identifyTemplate": "{{nothing}}  "},
            "text is empty",
        ),
        ({"type": "page", "userId": "u1"}, {}, "unsupported call type 'page'"),
    ],
)
def test_events_that_cannot_be_posted(event: dict[str, Any], config: dict[str, Any],
                                      why: str) -> None:  # fmt: skip
    with pytest.raises(Unsendable, match=why):
        SLACK.map(event, settings(**config), NOW)


def test_a_long_message_is_cut_where_slack_would() -> None:
    event = track(properties={"blob": "x" * 50_000})
    template = [{"eventName": "Signed Up", "eventTemplate": "{{blob}}{{blob}}"}]
    assert payload(event, eventTemplateSettings=template)["text"] == "x" * MAX_TEXT


@pytest.mark.parametrize(
    ("config", "why"),
    [
        ({"webhookUrl": "  "}, "webhookUrl .* is required"),
        ({"webhookUrl": "hooks.slack.com/services/T/B/s3cr3t"}, "not an https URL"),
        ({"webhookUrl": "http://hooks.slack.com/services/T/B/s3cr3t"}, "not an https URL"),
        ({"webhookUrl": "https://hooks.slack.com/"}, "must be Slack's"),
        (
            {"eventChannelSettings": [{"eventChannelWebhook": "ftp://x/s3cr3t"}]},
            "eventChannelSettings row 1: the webhook URL is not",
        ),
        (
            {"eventTemplateSettings": [{}, {"eventName": "(", "eventRegex": True}]},
            r"eventTemplateSettings row 2: eventName '\(' is not a valid regular expression",
        ),
        (
            {"eventTemplateSettings": [{}, {"eventName": "x", "eventTemplate": "{{#if a}}"}]},
            r"eventTemplateSettings row 2: \{\{#if\}\} is not closed",
        ),
        (
            {"eventTemplateSettings": [{"eventName": "not this", "eventTemplate": "{{p. x}}"}]},
            r"eventTemplateSettings row 1: cannot read \{\{p\. x\}\}",
        ),
        ({"identifyTemplate": "{{a b}}"}, "identifyTemplate: .*a is not a helper"),
        ({"incomingWebhooksType": "new"}, "incomingWebhooksType"),
        ({"endpoint": "localhost:9000"}, "not an http"),
    ],
)
def test_settings_that_are_refused(config: dict[str, Any], why: str) -> None:
    with pytest.raises(BadSettings, match=why) as caught:
        settings(**config)
    assert "s3cr3t" not in str(caught.value)  # a webhook URL is never quoted back


def test_endpoint_replaces_the_host_and_the_webhooks_are_masked() -> None:
    config = {"webhookUrl": HOOK, "endpoint": "http://127.0.0.1:9/proxy/",
              "incomingWebhooksType": "modern", "eventChannelSettings": [
                  {"eventName": "Signed Up", "eventChannelWebhook": HOOK + "2?x=1"}]}  # fmt: skip
    made = SLACK.map(track(), SLACK.parse_settings(config), NOW)
    assert made[0].url == "http://127.0.0.1:9/proxy/services/T01/B02/s3cr3tT0ken2?x=1"
    for event in (track(), {"type": "identify", "userId": "u1"}):
        [shown] = preview.of_type("slack", config, event, NOW)
        assert shown.url == "http://127.0.0.1:9/proxy****"
    # Every webhook, the rows' too, is a secret, and so is its path alone (what is left of it
    # once `endpoint` replaces the host).
    assert set(SLACK.secrets(config)) == {
        HOOK, "/services/T01/B02/s3cr3tT0ken",
        HOOK + "2?x=1", "/services/T01/B02/s3cr3tT0ken2?x=1",
    }  # fmt: skip
    [local] = preview.of_type("slack", {"webhookUrl": HOOK}, track(), NOW)
    assert local.url == "****"


def test_every_setting_has_help_and_the_webhook_is_the_secret() -> None:
    fields = msgspec.structs.fields(SLACK.settings)
    assert {f.name for f in fields} == set(SLACK.help)
    assert all(line.strip() for line in SLACK.help.values())
    assert SLACK.required == ("webhookUrl",) and SLACK.secret_keys == ("webhookUrl",)


@pytest.mark.parametrize(
    ("status", "body", "judged"),
    [
        (200, b"ok", Verdict.DELIVERED),
        (429, b"rate_limited", Judgement(Verdict.RETRY, f"rate_limited ({RATE_LIMITED})")),
        (500, b"rollup_error", Judgement(Verdict.RETRY, "rollup_error")),
        (503, b"<html>Service Unavailable</html>", Verdict.RETRY),
        (400, b"no_text", Judgement(Verdict.ABORT, "no_text (the message has no text)")),
        (404, b"channel_not_found\n", Judgement(
            Verdict.ABORT, "channel_not_found (the channel does not exist, or the webhook may "
                           "not post there)")),
        (410, b"channel_is_archived", Judgement(Verdict.ABORT,
                                                "channel_is_archived (the channel is archived)")),
        (403, b"", Verdict.ABORT),
    ],
)  # fmt: skip
def test_answers(status: int, body: bytes, judged: Verdict | Judgement) -> None:
    assert classify(status, body, 1) == (judged if isinstance(judged, Verdict) else [judged])


def test_a_pattern_that_backtracks_without_end_fails_the_event_instead_of_holding_the_worker() -> (
    None
):
    rows = [{"eventName": "(a|aa)+$", "eventRegex": True, "eventTemplate": "matched"}]
    event = track(event="a" * 60 + "!")  # any sender can name an event so
    with pytest.raises(Unsendable, match=r"pattern '\(a\|aa\)\+\$' took longer than 0.1 s"):
        SLACK.map(event, settings(eventTemplateSettings=rows), NOW)
