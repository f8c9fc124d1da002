"""Reading Segment-spec events the way every destination mapping needs to.

Events come decoded by `engine.codec`: a number with a fraction or an exponent is a
`msgspec.Raw` holding its JSON text (integers are ints). `number` reads any of them as a
value; passing a Raw on into a request body sends the number exactly as it was received.
Anything in an event may be missing or of the wrong type (it is what a client sent), so every
reader here answers None or an empty dict rather than raising.
"""

import contextlib
import math
from datetime import UTC, datetime
from typing import Any

from msgspec import Raw

from engine import codec


def mapping(value: Any) -> dict[str, Any]:
    """`value` if it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}


def dig(node: Any, path: str) -> Any:
    """The value at a dotted path of objects (`context.device.token`), or None."""
    for key in path.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node


def context(event: dict[str, Any]) -> dict[str, Any]:
    return mapping(event.get("context"))


def properties(event: dict[str, Any]) -> dict[str, Any]:
    return mapping(event.get("properties"))


def traits(event: dict[str, Any]) -> dict[str, Any]:
    """User (or group) traits: `traits`, else `context.traits` (mobile SDKs and other calls)."""
    return mapping(event.get("traits")) or mapping(context(event).get("traits"))


def text(value: Any) -> str | None:
    """A value as text for a vendor field that takes strings: numbers keep their written form;
    objects, arrays, null and empty strings give None."""
    if isinstance(value, str):
        return value or None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Raw):
        return bytes(value).decode()
    if isinstance(value, float) and math.isfinite(value):
        return repr(value)
    return None


def number(value: Any) -> int | float | None:
    """A numeric value (a number, a Raw number or numeric text) as int or float, else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Raw):
        value = bytes(value).decode()
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            return int(value)
        try:
            parsed = float(value)
        except ValueError:
            return None
        return parsed if math.isfinite(parsed) else None
    return None


def user_id(event: dict[str, Any]) -> str | None:
    """`userId`, stringified (vendors take ids as strings; some clients send numbers)."""
    return text(event.get("userId"))


def anonymous_id(event: dict[str, Any]) -> str | None:
    return text(event.get("anonymousId"))


def event_time(event: dict[str, Any]) -> datetime | None:
    """When the event happened: `timestamp`, else `originalTimestamp` (UTC), else None."""
    for key in ("timestamp", "originalTimestamp"):
        value = event.get(key)
        if isinstance(value, str) and value:
            try:
                parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                continue
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def ip(event: dict[str, Any]) -> str | None:
    """The client's IP: `context.ip`, else the `request_ip` the gateway recorded."""
    return text(context(event).get("ip")) or text(event.get("request_ip"))


def external_id(event: dict[str, Any], kind: str) -> str | None:
    """The id of type `kind` in `context.externalId[]` ({type, id} entries)."""
    entries = context(event).get("externalId")
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, dict) and entry.get("type") == kind:
            return text(entry.get("id"))
    return None


def integration(event: dict[str, Any], *names: str) -> dict[str, Any]:
    """The event's options for a destination: `integrations.<name>`, any of `names`, any case."""
    wanted = {name.lower() for name in names}
    for key, options in mapping(event.get("integrations")).items():
        if key.lower() in wanted and isinstance(options, dict):
            return options
    return {}


def json_text(value: Any) -> str:
    """JSON text of a value (for vendor fields that carry JSON inside a string or a form)."""
    return codec.encode(value).decode()


def occurred(event: dict[str, Any], now: datetime) -> datetime:
    """When the event happened: timestamp, originalTimestamp, the gateway's receivedAt, or now."""
    return event_time(event) or event_time({"timestamp": event.get("receivedAt")}) or now
