"""A double of Slack's incoming webhooks, as a `tests.sink.Sink` behaviour.

A webhook is a secret path (`/services/T…/B…/<secret>`) the double knows, with the channel it
posts to. It takes `POST` only, with the message as a form field `payload` holding JSON text
(`application/x-www-form-urlencoded`) or as a JSON body, and answers as Slack does, in plain
text: 200 `ok`; 400 `invalid_payload` (no payload, not JSON, not an object) or `no_text`
(no `text`, `blocks` or `attachments`); 403 `invalid_token` (a revoked webhook); 404
`no_service` (a path that is no webhook) or `channel_not_found` (a legacy webhook steered to a
channel that does not exist); 410 `channel_is_archived`; 429 `rate_limited` with
`Retry-After` past the rate limit. A legacy webhook posts to the `channel` a message names,
a modern one always to its own channel (Slack ignores the field there).
"""

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from tests.sink import Answer, Arrival
from tests.vendors import VendorDouble


@dataclass(frozen=True)
class Hook:
    channel: str
    legacy: bool = True  # a legacy webhook may be steered to another channel


def _text(status: int, word: str, **headers: str) -> Answer:
    return Answer(status, {"Content-Type": "text/plain; charset=utf-8", **headers}, body=word)


@dataclass
class SlackDouble(VendorDouble):
    """`messages` holds every message posted: its channel, the webhook's path, the payload."""

    hooks: dict[str, Hook]
    channels: frozenset[str] = frozenset()  # channels a legacy webhook may be steered to
    archived: frozenset[str] = frozenset()
    revoked: frozenset[str] = frozenset()  # paths of webhooks revoked in Slack
    messages: list[dict[str, Any]] = field(default_factory=list)

    def posted(self, channel: str) -> list[str]:
        with self._lock:
            return [m["text"] for m in self.messages if m["channel"] == channel]

    def __call__(self, arrival: Arrival) -> Answer:
        if arrival.method != "POST":
            return _text(405, "invalid_method")
        hook = self.hooks.get(arrival.path)
        if arrival.path in self.revoked:
            return _text(403, "invalid_token")
        if hook is None:
            return _text(404, "no_service")
        if self.throttled():
            return _text(429, "rate_limited", **{"Retry-After": "1"})
        message = _message(arrival)
        if message is None:
            return _text(400, "invalid_payload")
        if not any(message.get(k) for k in ("text", "blocks", "attachments")):
            return _text(400, "no_text")
        channel = hook.channel
        if hook.legacy and isinstance(message.get("channel"), str):
            channel = message["channel"]
            if channel not in self.channels | {hook.channel}:
                return _text(404, "channel_not_found")
        if channel in self.archived:
            return _text(410, "channel_is_archived")
        with self._lock:
            self.messages.append({**message, "channel": channel, "hook": arrival.path})
        return _text(200, "ok")


def _message(arrival: Arrival) -> dict[str, Any] | None:
    kind = arrival.header("content-type").split(";")[0].strip().lower()
    try:
        if kind == "application/json":
            found = json.loads(arrival.body)
        elif kind == "application/x-www-form-urlencoded":
            fields = parse_qs(arrival.body.decode(), strict_parsing=True)
            [payload] = fields.get("payload", [None])
            found = json.loads(payload) if payload is not None else None
        else:
            return None
    except ValueError:  # (json's, parse_qs's, and a payload given twice)
        return None
    return found if isinstance(found, dict) else None
