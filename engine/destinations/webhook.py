"""Webhook: each event as JSON to a URL of the user's choosing (RudderStack's webhook keys).

POST, PUT and PATCH carry the event itself as the body; GET and DELETE carry no body and send
the event's properties (traits for identify) as query parameters, flattened with dots. An event
may steer its own request: `header` adds headers, `fullPath` replaces the URL and `appendPath`
extends it (also accepted under `integrations.webhook`); these routing keys are not sent on.
"""

import re
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import msgspec

from engine import codec
from engine.destinations import secrets
from engine.destinations.base import DestinationType, Request, Unsendable

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_METHODS = _BODY_METHODS | {"GET", "DELETE"}
_ROUTING_KEYS = ("header", "appendPath", "fullPath")
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_BAD_VALUE = re.compile(r"[\r\n\x00]")
_RESERVED = frozenset({"host", "content-length", "transfer-encoding", "connection", "expect"})


class Header(msgspec.Struct):
    from_: str = msgspec.field(name="from", default="")
    to: str = ""


class WebhookSettings(msgspec.Struct):
    webhookUrl: str
    webhookMethod: str = "POST"
    headers: list[Header] = []

    def __post_init__(self) -> None:
        if self.webhookMethod.upper() not in _METHODS:
            raise ValueError(f"webhookMethod must be one of {', '.join(sorted(_METHODS))}")
        _check_url(self.webhookUrl, ValueError)
        for header in self.headers:
            if header.from_ and not _TOKEN.match(header.from_):
                raise ValueError(f"header name {header.from_!r} is not a valid HTTP header name")


def map_event(event: dict[str, Any], settings: WebhookSettings, now: datetime) -> list[Request]:
    method = settings.webhookMethod.upper()
    headers = {"content-type": "application/json"} if method in _BODY_METHODS else {}
    configured = {h.from_.lower(): h.to for h in settings.headers if h.from_ and h.to}
    headers.update(configured)
    for name, value in _event_headers(event).items():
        # An event (anyone with the write key) may add headers, never replace a configured
        # one (an API key) or one that frames the request.
        if name.lower() not in configured and name.lower() not in _RESERVED:
            headers[name] = value
    url = _url(event, settings.webhookUrl)
    if method in _BODY_METHODS:
        return [Request(method, url, headers=headers, body=_body(event))]
    fields = event.get("traits") if event.get("type") == "identify" else event.get("properties")
    params = dict(_flatten(fields)) if isinstance(fields, dict) else {}
    return [Request(method, url, headers=headers, params=params)]


def _routing(event: dict[str, Any], key: str) -> Any:
    if key in event:
        return event[key]
    integrations = event.get("integrations")
    if isinstance(integrations, dict):
        for name, options in integrations.items():
            if name.lower() == "webhook" and isinstance(options, dict) and key in options:
                return options[key]
    return None


def _url(event: dict[str, Any], configured: str) -> str:
    full = _routing(event, "fullPath")
    url = full if isinstance(full, str) and full else configured
    extra = _routing(event, "appendPath")
    if isinstance(extra, str) and extra:
        # Only a path or a query: text like "@other.host/" would change the host.
        if extra[0] not in "/?":
            raise Unsendable(f"appendPath {extra[:100]!r} must start with '/' or '?'")
        url += extra
    _check_url(url, Unsendable)
    return url


def _check_url(url: str, error: type[Exception]) -> None:
    try:
        parts = urlsplit(url)
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise error(f"{url!r} is not an http(s) URL")
    if _BAD_VALUE.search(url) or " " in url:
        raise error(f"{url!r} contains spaces or control characters")


def _event_headers(event: dict[str, Any]) -> dict[str, str]:
    extra = event.get("header")
    if not isinstance(extra, dict):
        return {}
    headers = {}
    for name, value in extra.items():
        text = value if isinstance(value, str) else codec.encode(value).decode()
        if not _TOKEN.match(name) or _BAD_VALUE.search(text):
            raise Unsendable(f"event header {name!r} is not a valid HTTP header")
        headers[name] = text
    return headers


def _body(event: dict[str, Any]) -> dict[str, Any]:
    body = {k: v for k, v in event.items() if v is not None and k not in _ROUTING_KEYS}
    ip = event.get("request_ip")
    context = body.get("context")
    if ip and (not isinstance(context, dict) or "ip" not in context):
        body["context"] = {**(context if isinstance(context, dict) else {}), "ip": ip}
    return body


def _flatten(value: Any, prefix: str = "") -> list[tuple[str, str]]:
    if isinstance(value, dict | list):
        items = value.items() if isinstance(value, dict) else enumerate(value)
        return [pair for key, item in items for pair in _flatten(item, f"{prefix}{key}.")]
    if value is None:
        return []
    text = value if isinstance(value, str) else codec.encode(value).decode()
    return [(prefix[:-1], text)]


def _headers(config: dict[str, Any]) -> list[dict[str, Any]]:
    rows = config.get("headers")
    return [row for row in (rows if isinstance(rows, list) else []) if isinstance(row, dict)]


def _secrets(config: dict[str, Any]) -> list[str]:
    """Configured header values that look like credentials (Authorization, X-Api-Key, …), and
    the URL's (its password, a `?token=`)."""
    url = config.get("webhookUrl")
    return [
        row["to"] for row in _headers(config)
        if isinstance(row.get("to"), str) and secrets.CREDENTIAL.search(str(row.get("from", "")))
    ] + (secrets.url_secrets(url) if isinstance(url, str) else [])  # fmt: skip


def _private(config: dict[str, Any]) -> dict[str, Any]:
    """The settings as a viewer sees them: no header's value, no credential or query value of
    the URL."""
    shown = dict(config)
    if isinstance(url := config.get("webhookUrl"), str):
        shown["webhookUrl"] = secrets.private_url(url)
    if isinstance(rows := config.get("headers"), list):  # (each row in its place)
        shown["headers"] = [{**row, "to": secrets.MASK} if isinstance(row, dict) and row.get("to")
                            else row for row in rows]  # fmt: skip
    return shown


WEBHOOK = DestinationType(
    name="webhook", title="Webhook", settings=WebhookSettings, map=map_event,
    category="Custom",
    description="Every event as JSON to your own HTTP endpoint, with your headers.",
    more_secrets=_secrets, private=_private,
)  # fmt: skip
