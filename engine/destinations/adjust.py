"""Adjust: track events to the server-to-server event API (RudderStack's `adj` keys).

One event is one `POST https://s2s.adjust.com/event` with every field in the query string and
no body, as RudderStack sends it (Adjust takes GET or POST, parameters in the URL or a form).
Adjust has no batch API and no regional host.

* Only track events are taken. The event's name is looked up, exactly, in `customMappings`
  (`from` name → `to` Adjust event token); an unmapped name cannot be sent, since Adjust only
  records events whose token was created in its dashboard.
* Adjust needs a device id. `context.device.type` says which: Android sends `device.id` as
  `android_id` and `advertisingId` as `gps_adid`; the Apple family (iOS, iPadOS, tvOS,
  watchOS) sends them as `idfv` and `idfa`. Another or no type, or no id, cannot be sent. An
  all-zero advertising id (a user who refused tracking) identifies nobody and is left out.
* `environment` (a boolean in RudderStack's config) picks `production` or `sandbox`.
* Revenue (`properties.revenue`: a number, or numeric text with an optional leading `$`) is
  rounded to cents and sent with `properties.currency`, USD when absent; revenue that is not a
  number, or beyond Adjust's limit, cannot be sent. No revenue, no currency either.
* `callback_params` carries every other property, flattened (`a.b`, `list[0].k`) with every
  value as text (null as `null`), as a JSON object in one query parameter; `partner_params`
  the properties chosen in `partnerParamsKeys` (`from` property → `to` name), the same way.
* `ip_address` comes from `context.ip`, else the gateway's `request_ip`, as received. Adjust
  reads only IPv4 there; an IPv6 address is still sent, as RudderStack does.
* The event time is not sent (RudderStack does not); Adjust stamps events on arrival.
* With S2S Security on, `s2sToken` is sent as `Authorization: Bearer …` (a secret; the app
  token is an identifier and shown as it is).

Answers: 200 is delivered; 429 and 5xx are retried; Adjust's 4xx answers (invalid or unknown
tokens, device not found or opted out, app inactive) do not improve on retry and are final.
"""

import re
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

import msgspec
from msgspec import Raw

from engine.destinations import segment
from engine.destinations.base import (
    DestinationType,
    Request,
    Unsendable,
    base_url,
    check_endpoint,
    classify_status,
)

DEFAULT_URL = "https://s2s.adjust.com"
_ANDROID = frozenset({"android"})
_APPLE = frozenset({"ios", "ipados", "tvos", "watchos"})
_ZERO_ID = re.compile(r"^[0-]+$")
_TOKEN = re.compile(r"^[A-Za-z0-9_.~+/=-]+$")  # a token travels in a URL or a header
_REVENUE_LIMIT = Decimal(100_000_000_000)
_CENTS = Decimal("0.01")
_NOT_CALLBACK = ("revenue", "currency")  # sent as parameters of their own


class Pair(msgspec.Struct):
    """A `{from, to}` row of RudderStack's mapping tables."""

    from_: str = msgspec.field(name="from", default="")
    to: str = ""


class AdjustSettings(msgspec.Struct):
    appToken: str
    customMappings: list[Pair] = []
    partnerParamsKeys: list[Pair] = []
    environment: bool = False  # True: production, False: sandbox
    s2sToken: str = ""
    endpoint: str | None = None

    def __post_init__(self) -> None:
        if not _TOKEN.match(self.appToken):
            raise ValueError("appToken must be the app token from the Adjust dashboard")
        if self.s2sToken and not _TOKEN.match(self.s2sToken):
            raise ValueError("s2sToken must be the S2S Security token, without spaces")
        _check_mappings(self.customMappings)
        for pair in self.partnerParamsKeys:
            if bool(pair.from_) != bool(pair.to):
                raise ValueError("partnerParamsKeys rows need both a property and a name")
        check_endpoint(self.endpoint)


def _check_mappings(pairs: list[Pair]) -> None:
    tokens: dict[str, str] = {}
    for pair in pairs:
        if not pair.from_ and not pair.to:
            continue  # an empty row left in the form
        if not pair.from_:
            raise ValueError(f"customMappings: event token {pair.to!r} has no event name")
        if not _TOKEN.match(pair.to):
            raise ValueError(f"customMappings: event {pair.from_!r} needs an Adjust event token")
        if tokens.setdefault(pair.from_, pair.to) != pair.to:
            raise ValueError(f"customMappings: event {pair.from_!r} is mapped to two tokens")
    if not tokens:
        raise ValueError("customMappings must map at least one event name to an event token")


def map_event(event: dict[str, Any], settings: AdjustSettings, now: datetime) -> list[Request]:
    kind = event.get("type")
    if kind != "track":
        raise Unsendable(f"Adjust takes track events only, not {_shown(kind)}")
    name = event.get("event")
    if not isinstance(name, str) or not name:
        raise Unsendable("the track event has no event name")
    token = next((p.to for p in settings.customMappings if p.from_ == name and p.to), None)
    if token is None:
        raise Unsendable(f"no Adjust event token is mapped to event {_shown(name)}")
    params = {
        "s2s": "1",
        "app_token": settings.appToken,
        "event_token": token,
        "environment": "production" if settings.environment else "sandbox",
    }
    params.update(_device(event))
    if ip := segment.ip(event):
        params["ip_address"] = ip
    params.update(_money_and_params(segment.properties(event), settings.partnerParamsKeys))
    headers = {"Accept": "*/*"}
    if settings.s2sToken:
        headers["Authorization"] = f"Bearer {settings.s2sToken}"
    url = base_url(settings.endpoint, DEFAULT_URL) + "/event"
    return [Request("POST", url, headers=headers, params=params)]


def _device(event: dict[str, Any]) -> dict[str, str]:
    device = segment.mapping(segment.context(event).get("device"))
    kind = device.get("type")
    kind = kind.lower() if isinstance(kind, str) else None
    if kind in _ANDROID:
        names = ("android_id", "gps_adid")
    elif kind in _APPLE:
        names = ("idfv", "idfa")
    else:
        raise Unsendable(
            f"context.device.type {_shown(kind)} is neither android nor an Apple OS "
            "(ios, ipados, tvos, watchos): Adjust needs to know which device id it gets"
        )
    device_id = segment.text(device.get("id"))
    ad_id = segment.text(device.get("advertisingId"))
    if ad_id is not None and _ZERO_ID.match(ad_id):
        ad_id = None
    ids = {k: v for k, v in zip(names, (device_id, ad_id), strict=True) if v is not None}
    if not ids:
        raise Unsendable("no device id: context.device.id and advertisingId are both empty")
    att = device.get("attTrackingStatus")
    if isinstance(att, int) and not isinstance(att, bool):
        ids["att_status"] = str(att)
    enabled = device.get("adTrackingEnabled")
    if isinstance(enabled, bool):
        ids["tracking_enabled"] = "1" if enabled else "0"
    return ids


def _money_and_params(props: dict[str, Any], partner_keys: list[Pair]) -> dict[str, str]:
    params: dict[str, str] = {}
    revenue = _revenue(props.get("revenue"))
    if revenue is not None:
        params["revenue"] = revenue
        params["currency"] = segment.text(props.get("currency")) or "USD"
    callback = dict(_flatten({k: v for k, v in props.items() if k not in _NOT_CALLBACK}))
    if callback:
        params["callback_params"] = segment.json_text(callback)
    partner = {}
    for pair in partner_keys:
        value = _lookup(props, pair.from_) if pair.from_ and pair.to else None
        if value is not None:
            partner[pair.to] = _as_text(value)
    if partner:
        params["partner_params"] = segment.json_text(partner)
    return params


def _revenue(value: Any) -> str | None:
    """Revenue in currency units rounded to cents, as text; None when there is none."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        written = value.strip().removeprefix("$").strip()
    elif isinstance(value, int | float | Raw) and not isinstance(value, bool):
        written = segment.text(value) or ""
    else:
        written = ""
    try:
        amount = Decimal(written)
    except InvalidOperation:
        amount = Decimal("NaN")
    if not amount.is_finite():
        raise Unsendable(f"revenue {_shown(value)} is not a number")
    if amount.copy_abs() > _REVENUE_LIMIT:  # copy_abs: exact, whatever the exponent
        raise Unsendable(f"revenue {_shown(value)} is beyond Adjust's limit of 100,000,000,000")
    cents = format(amount.quantize(_CENTS, rounding=ROUND_HALF_UP), "f")
    return cents.rstrip("0").rstrip(".") if "." in cents else cents


def _flatten(props: dict[str, Any]) -> list[tuple[str, str]]:
    """Nested properties as (`a.b`, `list[0].k`) → text pairs, in order. A loop, not
    recursion: an event may nest as deep as the gateway lets it."""
    pairs: list[tuple[str, str]] = []
    stack: list[tuple[str, Any]] = [(str(k), v) for k, v in reversed(props.items())]
    while stack:
        name, value = stack.pop()
        if isinstance(value, dict) and value:
            stack += [(f"{name}.{k}", v) for k, v in reversed(value.items())]
        elif isinstance(value, list) and value:
            stack += [(f"{name}[{n}]", v) for n, v in reversed(list(enumerate(value)))]
        else:
            pairs.append((name, _as_text(value)))
    return pairs


def _as_text(value: Any) -> str:
    """Any property value as text: numbers as written, null as `null`, objects as JSON."""
    if isinstance(value, str):
        return value
    return segment.text(value) or segment.json_text(value)


def _lookup(props: dict[str, Any], path: str) -> Any:
    """`props[path]`, else the value at a dotted path (`address.city`)."""
    if path in props:
        return props[path]
    node: Any = props
    for part in path.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


def _shown(value: Any) -> str:
    """A client's value in an error message: quoted, and not too long."""
    text = value if isinstance(value, str) else segment.json_text(value)
    return repr(text[:100])


ADJUST = DestinationType(
    name="adjust", title="Adjust", settings=AdjustSettings, map=map_event,
    category="Advertising",
    description="Mobile attribution: track events as Adjust events, by event token.",
    supported_types=frozenset({"track"}), secret_keys=("s2sToken",), classify=classify_status,
)  # fmt: skip
