"""The conformance cases (tests/conformance/destinations*.json, from RudderStack's fixtures) and
how a request Sluice makes is compared with a case's expected one.

Strict on the vendor's fields (secrets masked on both sides, as the preview shows them); a
case's `loose_fields` (RudderStack conventions) are left out of the comparison on both sides.
Fields that travel as JSON text are compared decoded, numbers by value, header names without
regard to case.
"""

import fnmatch
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from engine import codec
from engine.destinations import secrets
from engine.destinations.catalog import TYPES

HERE = Path(__file__).parent / "conformance"


def load(name: str) -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = json.loads((HERE / name).read_text())
    return cases


def event(raw: Any) -> Any:
    """The event as the pipeline has it: decoded by the payload codec (numbers keep their text)."""
    return codec.decode(json.dumps(raw))


def now(case: dict[str, Any]) -> datetime:
    """The case's clock: its `frozen_now`, else the present."""
    frozen = case.get("frozen_now")
    return datetime.fromisoformat(frozen.replace("Z", "+00:00")) if frozen else datetime.now(UTC)


def shown(request: Any) -> dict[str, Any]:
    """A request of ours as plain JSON values."""
    found: dict[str, Any] = json.loads(codec.encode(request))
    return found


def masked(kind: str, config: dict[str, Any], requests: list[Any]) -> list[dict[str, Any]]:
    """Expected requests as the preview shows them: the destination's secrets masked, and the
    values of its settings kept from view (a webhook's header values) as viewers see them."""
    hidden = TYPES[kind].secrets(config)
    wanted: list[dict[str, Any]] = json.loads(secrets.mask(json.dumps(requests), hidden))
    for text, seen in TYPES[kind].private_values(config):
        for request in wanted:
            if "headers" in request:
                request["headers"] = {k: seen if v == text else v
                                      for k, v in request["headers"].items()}  # fmt: skip
    return wanted


def comparable(request: dict[str, Any], loose: list[tuple[list[str], str]]) -> dict[str, Any]:
    """Our request in the shape of an expected one; JSON text fields decoded."""
    url = urlsplit(request["url"])
    shape = {
        "method": request["method"],
        "endpoint": url._replace(query="").geturl(),
        "headers": {k.lower(): v for k, v in request.get("headers", {}).items()},
        "params": {**dict(parse_qsl(url.query)), **request.get("params", {})},
        "body_format": request.get("body_format", "json"),
        "body": request.get("body"),
    }
    for section in ("params", "body"):
        if isinstance(shape[section], dict):
            shape[section] = {k: _decoded(v) for k, v in shape[section].items()}
    return _relaxed(shape, loose)


def expected(request: dict[str, Any], loose: list[tuple[list[str], str]]) -> dict[str, Any]:
    # A query in the URL (a configured webhook URL; cases that write `…/events?access_token=…`
    # into the endpoint) holds parameters all the same: on both sides.
    url = urlsplit(request["endpoint"])
    params = {**dict(parse_qsl(url.query)), **request.get("params", {})}
    shape = {
        "method": request["method"],
        "endpoint": url._replace(query="").geturl(),
        "headers": {k.lower(): v for k, v in request.get("headers", {}).items()},
        "params": {k: _as_param(v) for k, v in params.items()},
        "body_format": request.get("body_format", "json"),
        "body": request.get("body"),
    }
    if shape["body_format"] == "form" and isinstance(shape["body"], dict):
        shape["body"] = {k: _as_param(v) for k, v in shape["body"].items()}
    return _relaxed(shape, loose)


def _as_param(value: Any) -> Any:
    """An expected query/form value as it travels: text (objects stay decoded: JSON fields)."""
    if isinstance(value, dict | list):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else json.dumps(value)


def _decoded(value: Any) -> Any:
    """A text value holding a JSON object or array, decoded; anything else as it is."""
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def loose_paths(field: str) -> list[tuple[list[str], str]]:
    """A case's loose field: one path, or several joined by " / ", then why."""
    return [_loose(part) for part in field.split(" (")[0].split(" / ")]


def _loose(field: str) -> tuple[list[str], str]:
    """'body.events[].params.a/b_*' → (['body', 'events[]', 'params', 'a/b_*'], '');
    '… custom_data keys other than x/y' → ([…, 'custom_data'], 'x/y')."""
    head, _, rest = field.partition(" ")
    keep = ""
    if rest.startswith("keys other than "):
        keep = rest.removeprefix("keys other than ").split(" ")[0]
    segments = head.replace("[].", "[] ").replace(".", " ").split()
    if segments and segments[0] == "headers" and len(segments) > 1:
        segments[1] = segments[1].lower()
    return segments, keep


def _relaxed(shape: dict[str, Any], loose: list[tuple[list[str], str]]) -> dict[str, Any]:
    for segments, keep in loose:
        _drop(shape, segments, keep)
    return shape


def _drop(node: Any, segments: list[str], keep: str) -> None:
    if not segments:
        if isinstance(node, dict) and keep:
            for key in [k for k in node if not _matches(k, keep)]:
                del node[key]
        return
    first, rest = segments[0], segments[1:]
    if first.endswith("[]"):
        child = node.get(first[:-2]) if isinstance(node, dict) else None
        for item in child if isinstance(child, list) else []:
            _drop(item, rest, keep)
        return
    if not isinstance(node, dict):
        return
    if rest or keep:
        _drop(node.get(first), rest, keep)
        return
    for key in [k for k in node if _matches(k, first)]:
        del node[key]


def _matches(key: str, patterns: str) -> bool:
    return any(fnmatch.fnmatchcase(key, pattern) for pattern in patterns.split("/"))


def set_at(node: Any, path: str, value: Any) -> None:
    """Set the value at a dotted path of keys and list indexes ("0.body.data.0.user_data.fn")."""
    *parents, last = path.split(".")
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    node[int(last) if isinstance(node, list) else last] = value
