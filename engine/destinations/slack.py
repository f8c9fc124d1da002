"""Slack: a message per event, posted to an incoming webhook (RudderStack's `slack` keys).

Host: none of its own — each request goes to a webhook URL the user made in Slack
(`https://hooks.slack.com/services/…`; https is required): `webhookUrl`, or a per-event one.
The `endpoint` setting replaces a webhook URL's scheme and host (its path, which names the
webhook, is kept): for a proxy or a test double. Auth: none beyond the URL, whose path is the
credential — every webhook URL is a secret, masked wherever a request or an error is shown,
with and without the `endpoint` host.

The request: `POST`, a form (`application/x-www-form-urlencoded`) with one field, `payload`,
the JSON text `{"text": …}` (plus `"channel"` when a legacy webhook is steered to a channel).

* identify → `identifyTemplate` (Handlebars, see `engine.destinations.handlebars`) rendered
  over `name` (below), the traits (`traits`, else `context.traits`) by name — a trait named
  `name` replaces it, as in RudderStack —, `traits` (the whitelisted traits, else all, as
  `key: value ` text) and `traitsList` (the traits object). Without a template:
  `Identified <name>` followed by `<trait>: <value> ` for each whitelisted trait
  (`whitelistedTraitsSettings`; all traits when none is listed) — RudderStack's text, no space
  after the name included; keys and values are HTML-escaped, as `{{value}}` is.
* track → the template of the first `eventTemplateSettings` row whose `eventName` is the
  event's name (or, with `eventRegex`, a regular expression found in it), else
  `{{name}} did {{event}}`, rendered over `name`, `event`, the properties by name (a property
  named `name` or `event` replaces them: RudderStack's order), then `properties`,
  `propertiesList` (as `key: value ` text), `traits` and `traitsList`, which win over
  properties of their names. A track without an event name is refused; one named in
  `denyListOfEvents` is filtered (`engine.destinations.filters`), counted and not sent.
* Where it goes: with `incomingWebhooksType: modern` the first matching `eventChannelSettings`
  row with an `eventChannelWebhook` gives the URL (a modern webhook posts to one channel);
  with `legacy` (the default) the first matching row with an `eventChannel` sets the payload's
  `channel`, and the URL stays `webhookUrl`. identify always goes to `webhookUrl`.
* `name` is the traits' `name`, else `firstName lastName`, else `username`, else the
  properties' `email`, else the traits' `email`, else `User <userId>`, else
  `Anonymous user <anonymousId>`.
* Templates are read when the settings are saved: one that cannot be read refuses the
  settings, naming its row. One that cannot be rendered (past its work budget, see
  `engine.destinations.handlebars`) refuses the event, naming the template; so does one that
  renders no text (Slack refuses an empty message). Text past Slack's 40,000 characters is
  cut. page, screen, group and alias are not taken (filtered).

No batching: Slack's webhooks take one message per request. No dedup id: a webhook has none.

Answers: 2xx is delivered (Slack says `ok`); 429 (with `Retry-After`) and 5xx are retried;
any other answer is refused, with Slack's error word and what it means (`invalid_payload`,
`no_text`, `invalid_token`, `no_service`, `channel_not_found`, `channel_is_archived`, …).
"""

import re
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import msgspec
import regex

from engine.destinations import handlebars, segment
from engine.destinations.base import (
    DestinationType,
    Judgement,
    Request,
    Unsendable,
    Verdict,
    base_url,
    check_endpoint,
    classify_status,
    for_call,
)

MAX_TEXT = 40_000  # characters: Slack cuts a message's text there
_FORM = {"Content-Type": "application/x-www-form-urlencoded"}
_TRACK_TEMPLATE = "{{name}} did {{event}}"
_SHOWN_TEMPLATE = 120  # characters of a template quoted in an error
_PATTERN_SECONDS = 0.1  # for one event name against one eventRegex pattern
_SLACK_ERROR = re.compile(r"^[a-z0-9_]{1,64}$")
_MEANINGS = {
    "invalid_payload": "the request's payload is not valid JSON Slack understands",
    "no_text": "the message has no text",
    "too_many_attachments": "the message has too many attachments",
    "invalid_token": "the webhook URL is wrong or was revoked",
    "no_service": "the webhook is disabled, removed or invalid",
    "no_service_id": "the webhook URL is incomplete",
    "no_team": "the webhook's Slack workspace does not exist",
    "team_disabled": "the webhook's Slack workspace is disabled",
    "action_prohibited": "an admin has restricted posting to this channel",
    "posting_to_general_channel_denied": "only admins may post to this channel",
    "channel_not_found": "the channel does not exist, or the webhook may not post there",
    "channel_is_archived": "the channel is archived",
    "user_not_found": "the user the message is addressed to does not exist",
    "rate_limited": "past Slack's rate limit for the webhook, about a message a second",
}


class ChannelRow(msgspec.Struct):
    """Where events of a name (or matching a regular expression) go."""

    eventName: str = ""
    eventRegex: bool = False
    eventChannel: str = ""  # legacy webhooks: the channel to post in
    eventChannelWebhook: str = ""  # modern webhooks: the webhook of the channel


class TemplateRow(msgspec.Struct):
    eventName: str = ""
    eventRegex: bool = False
    eventTemplate: str = ""


class TraitRow(msgspec.Struct):
    trait: str = ""


class EventRow(msgspec.Struct):
    eventName: str = ""


class SlackSettings(msgspec.Struct):
    webhookUrl: str
    incomingWebhooksType: Literal["legacy", "modern"] | None = "legacy"
    eventChannelSettings: list[ChannelRow] = []
    eventTemplateSettings: list[TemplateRow] = []
    identifyTemplate: str = ""
    whitelistedTraitsSettings: list[TraitRow] = []
    denyListOfEvents: list[EventRow] = []
    endpoint: str | None = None

    def __post_init__(self) -> None:
        if not self.webhookUrl.strip():
            raise ValueError("webhookUrl (the Slack incoming webhook's URL) is required")
        self.webhookUrl = self.webhookUrl.strip()
        _check_webhook(self.webhookUrl, "webhookUrl")
        self.incomingWebhooksType = self.incomingWebhooksType or "legacy"
        for n, row in enumerate(self.eventChannelSettings, 1):
            row.eventChannelWebhook = row.eventChannelWebhook.strip()
            if row.eventChannelWebhook:
                _check_webhook(row.eventChannelWebhook, f"eventChannelSettings row {n}")
            _check_pattern(row.eventName, row.eventRegex, f"eventChannelSettings row {n}")
        for n, template in enumerate(self.eventTemplateSettings, 1):
            _check_pattern(
                template.eventName, template.eventRegex, f"eventTemplateSettings row {n}"
            )
            _check_template(template.eventTemplate, f"eventTemplateSettings row {n}")
        _check_template(self.identifyTemplate, "identifyTemplate")
        check_endpoint(self.endpoint)

    @property
    def modern(self) -> bool:
        return self.incomingWebhooksType == "modern"


HELP = {
    "webhookUrl": "The incoming webhook's URL from Slack (https://hooks.slack.com/services/…): "
    "messages go there unless a channel row sends them elsewhere. A secret.",
    "incomingWebhooksType": "legacy: one webhook, a channel row sets the channel to post in; "
    "modern: a webhook per channel, a channel row gives the webhook URL.",
    "eventChannelSettings": "Rows {eventName, eventRegex, eventChannel, eventChannelWebhook}: "
    "where track events of that name (or matching the regular expression) are posted.",
    "eventTemplateSettings": "Rows {eventName, eventRegex, eventTemplate}: the Handlebars "
    "template of a track event's message; default {{name}} did {{event}}.",
    "identifyTemplate": "Handlebars template of an identify's message (traits by name, "
    "{{name}}, {{traits}}); default: Identified <name> and the whitelisted traits.",
    "whitelistedTraitsSettings": "Rows {trait}: the traits shown in identify messages and "
    "{{traits}} (all of them when none is listed).",
    "denyListOfEvents": "Rows {eventName}: track events never posted (filtered, counted).",
    "endpoint": "Replaces the webhook URLs' scheme and host (their path is kept): for a proxy "
    "or a test server.",
}


def _check_webhook(url: str, where: str) -> None:
    """A webhook URL must be an https URL with a path (its path is a credential: it never
    travels in clear; a proxy or test server is reached with `endpoint`); never quoted back."""
    try:
        parts = urlsplit(url)
    except ValueError:
        parts = None
    if parts is None or parts.scheme != "https" or not parts.hostname:
        raise ValueError(
            f"{where}: the webhook URL is not an https URL (Slack's look like "
            "https://hooks.slack.com/services/…; a proxy goes in endpoint)"
        )
    if any(c.isspace() or ord(c) < 32 for c in url) or parts.path.strip("/") == "":
        raise ValueError(
            f"{where}: the webhook URL must be Slack's, like https://hooks.slack.com/services/…"
        )


def _check_template(template: str, where: str) -> None:
    """A template is read when the settings are saved, so a mistake shows there rather than
    as every event it would render failing."""
    if not template.strip():
        return
    try:
        handlebars.parse(template)
    except handlebars.TemplateError as exc:
        raise ValueError(f"{where}: {exc}") from None


def _check_pattern(name: str, is_regex: bool, where: str) -> None:
    if is_regex and name.strip():
        try:
            regex.compile(name)
        except regex.error as exc:
            raise ValueError(
                f"{where}: eventName {name[:100]!r} is not a valid regular expression ({exc})"
            ) from None


# ---------------------------------------------------------------------------------------------
# Mapping


def _url(settings: SlackSettings, webhook: str) -> str:
    if not settings.endpoint:
        return webhook
    parts = urlsplit(webhook)
    path = urlunsplit(("", "", parts.path, parts.query, ""))
    origin = f"{parts.scheme}://{parts.netloc}"
    return base_url(settings.endpoint, origin) + path


def _request(settings: SlackSettings, webhook: str, text: str, channel: str | None) -> Request:
    if not text.strip():
        raise Unsendable("the message's text is empty (Slack refuses a message without text)")
    payload: dict[str, Any] = {"text": text[:MAX_TEXT]}
    if channel:
        payload["channel"] = channel
    body = {"payload": segment.json_text(payload)}
    return Request("POST", _url(settings, webhook), dict(_FORM), body=body, body_format="form")


def _name(event: dict[str, Any], traits: dict[str, Any]) -> str:
    """Who the message is about (RudderStack's order)."""
    first, last = segment.text(traits.get("firstName")), segment.text(traits.get("lastName"))
    full = " ".join(part for part in (first, last) if part) or None
    found = (
        segment.text(traits.get("name"))
        or full
        or segment.text(traits.get("username"))
        or segment.text(segment.properties(event).get("email"))
        or segment.text(traits.get("email"))
    )
    if found:
        return found
    if user := segment.user_id(event):
        return f"User {user}"
    anonymous = segment.anonymous_id(event)
    return f"Anonymous user {anonymous}" if anonymous else "Anonymous user"


def _whitelist(settings: SlackSettings) -> list[str]:
    return [row.trait.strip() for row in settings.whitelistedTraitsSettings if row.trait.strip()]


def _listed(values: dict[str, Any], only: Sequence[str] = ()) -> str:
    """`key: value ` for each value (of those named in `only`, when any are)."""
    return "".join(
        f"{key}: {handlebars.js_text(value)} "
        for key, value in values.items()
        if not only or key in only
    )


def _render(template: str, data: dict[str, Any], what: str) -> str:
    try:
        return handlebars.render(template, data, limit=MAX_TEXT)
    except handlebars.TemplateError as exc:
        shown = template if len(template) <= _SHOWN_TEMPLATE else template[:_SHOWN_TEMPLATE] + "…"
        raise Unsendable(f"the {what} {shown!r} cannot be rendered: {exc}") from None


def _identify(event: dict[str, Any], settings: SlackSettings) -> Request:
    traits = segment.traits(event)
    whitelist = _whitelist(settings)
    # RudderStack's template input: a trait named `name` replaces the user's name.
    data = {"name": _name(event, traits), **traits, "traits": _listed(traits, whitelist),
            "traitsList": traits}  # fmt: skip
    if not settings.identifyTemplate.strip():
        # RudderStack's default template, `Identified {{name}}` then `<key>: {{"<key>"}} ` per
        # trait, written out directly: the keys come from the event too, so they are escaped
        # like the values (a key can ping `<!channel>` or add a link as well as a value can).
        keys = whitelist or list(traits)
        text = "Identified " + handlebars.escape(handlebars.shown(data["name"]))
        text += "".join(
            f"{handlebars.escape(key)}: {handlebars.escape(handlebars.shown(data.get(key)))} "
            for key in keys
        )
        return _request(settings, settings.webhookUrl, text, None)
    text = _render(settings.identifyTemplate, data, "identify template (identifyTemplate)")
    return _request(settings, settings.webhookUrl, text, None)


def _matches(name: str, pattern: str, is_regex: bool) -> bool:
    """Whether the event's name matches a row's `eventName`. A pattern is an editor's, the name
    any sender's: the search is cut short rather than let a pattern that backtracks without end
    hold the worker."""
    if not pattern.strip():
        return False
    if not is_regex:
        return pattern.strip() == name
    try:
        return regex.search(pattern, name, timeout=_PATTERN_SECONDS) is not None
    except TimeoutError:
        raise Unsendable(
            f"eventName pattern {pattern[:100]!r} took longer than {_PATTERN_SECONDS} s on event "
            f"{name[:100]!r}: simplify the pattern"
        ) from None


def _track(event: dict[str, Any], settings: SlackSettings) -> Request:
    name = event.get("event")
    if not isinstance(name, str) or not name:
        raise Unsendable("a track call needs an event name")
    template = next(
        (
            row.eventTemplate
            for row in settings.eventTemplateSettings
            if row.eventTemplate.strip() and _matches(name, row.eventName, row.eventRegex)
        ),
        _TRACK_TEMPLATE,
    )
    traits = segment.traits(event)
    properties = segment.properties(event)
    # RudderStack's template input: properties named `name` or `event` replace the user's
    # name and the event's (contract §8); the lists after them win over properties.
    data = {
        "name": _name(event, traits),
        "event": name,
        **properties,
        "properties": properties,
        "propertiesList": _listed(properties),
        "traits": _listed(traits, _whitelist(settings)),
        "traitsList": traits,
    }
    text = _render(template, data, "event template (eventTemplateSettings)")
    rows = [r for r in settings.eventChannelSettings if _matches(name, r.eventName, r.eventRegex)]
    if settings.modern:
        webhook = next((row.eventChannelWebhook for row in rows if row.eventChannelWebhook), None)
        return _request(settings, webhook or settings.webhookUrl, text, None)
    channel = next((row.eventChannel.strip() for row in rows if row.eventChannel.strip()), None)
    return _request(settings, settings.webhookUrl, text, channel)


_CALLS: dict[str, Callable[[dict[str, Any], SlackSettings], Request]] = {
    "identify": _identify,
    "track": _track,
}


def map_event(event: dict[str, Any], settings: SlackSettings, now: datetime) -> list[Request]:
    call = for_call(event, _CALLS)
    return [call(event, settings)]


# ---------------------------------------------------------------------------------------------
# Answers and secrets


def classify(status: int, body: bytes, count: int) -> Verdict | Sequence[Judgement]:
    """The generic rule, with Slack's error word (and what it means) as the reason."""
    verdict = classify_status(status, body, count)
    if verdict is Verdict.DELIVERED:
        return verdict
    word = body.decode("utf-8", "replace").strip()
    if not _SLACK_ERROR.match(word):
        return verdict
    meaning = _MEANINGS.get(word)
    return [Judgement(verdict, f"{word} ({meaning})" if meaning else word)] * count


def _secrets(config: dict[str, Any]) -> list[str]:
    """Every webhook URL, and its path (the credential), which is all that is left of it in a
    request sent through the `endpoint` host."""
    urls = [config.get("webhookUrl")]
    rows = config.get("eventChannelSettings")
    for row in rows if isinstance(rows, list) else []:
        if isinstance(row, dict):
            urls.append(row.get("eventChannelWebhook"))
    found = []
    for url in urls:
        if not isinstance(url, str) or not url.strip():
            continue
        found.append(url.strip())
        try:
            parts = urlsplit(url.strip())
        except ValueError:
            continue
        found.append(urlunsplit(("", "", parts.path, parts.query, "")))
    return found


SLACK = DestinationType(
    name="slack",
    title="Slack",
    category="Messaging",
    description="Post chosen events to Slack channels, from templates.",
    settings=SlackSettings,
    map=map_event,
    supported_types=frozenset({"identify", "track"}),
    secret_keys=("webhookUrl",),
    more_secrets=_secrets,
    help=HELP,
    classify=classify,
)
