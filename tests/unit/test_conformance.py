"""Every destination against the conformance cases (tests/conformance/destinations.json), through
the preview service: the request(s) each event makes, or its refusal.

Strict on the vendor's fields (secrets masked on both sides, as the preview shows them); a
case's `loose_fields` (RudderStack conventions) are left out of
the comparison on both sides. Fields that travel as JSON text are compared decoded, numbers by
value, header names without regard to case.
"""

import fnmatch
import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from engine import codec
from engine.control import preview
from engine.destinations import secrets
from engine.destinations.catalog import TYPES

CASES = json.loads((Path(__file__).parents[1] / "conformance/destinations.json").read_text())
HERE = [case for case in CASES if case["destination"] in TYPES]

# Where a case disagrees with the vendor's contract, the contract wins (listed in the issue):
CORRECTIONS: dict[str, dict[str, Any]] = {
    # Meta matches names hashed after trimming and lower-casing (destinations.md §6.1); the
    # case hashes "Rudder" and "Test" as written.
    "fbp-02": {
        "0.body.data.0.user_data.fn": hashlib.sha256(b"rudder").hexdigest(),
        "0.body.data.0.user_data.ln": hashlib.sha256(b"test").hexdigest(),
    },
}


def test_every_destination_has_cases() -> None:
    assert {case["destination"] for case in CASES} <= set(TYPES)


@pytest.mark.parametrize("case", HERE, ids=[case["id"] for case in HERE])
def test_conformance(case: dict[str, Any]) -> None:
    # The event as the pipeline has it: decoded by the payload codec (numbers keep their text).
    event = codec.decode(json.dumps(case["event"]))
    frozen = case.get("frozen_now")
    now = datetime.fromisoformat(frozen.replace("Z", "+00:00")) if frozen else datetime.now(UTC)
    expected = case["expected"]
    if "error" in expected:
        # Refused by the mapping (a failed job), or a call type the destination does not take
        # (filtered): either way nothing is sent.
        with pytest.raises(preview.PreviewError, match=r"cannot send|does not take"):
            preview.of_type(case["destination"], case["config"], event, now)
        return
    made = [
        json.loads(codec.encode(request))
        for request in preview.of_type(case["destination"], case["config"], event, now)
    ]
    # The preview masks the destination's secrets: the expected requests get the same mask.
    hidden = TYPES[case["destination"]].secrets(case["config"])
    wanted = json.loads(secrets.mask(json.dumps(expected.get("requests", [expected])), hidden))
    # ... and the values of its settings kept from view (a webhook's header values): the same.
    for text, shown in TYPES[case["destination"]].private_values(case["config"]):
        for request in wanted:
            if "headers" in request:
                request["headers"] = {k: shown if v == text else v
                                      for k, v in request["headers"].items()}  # fmt: skip
    for path, value in CORRECTIONS.get(case["id"], {}).items():
        _set(wanted, path, value)
    assert len(made) == len(wanted), made
    loose = [_path(field) for field in case.get("loose_fields") or []]
    for ours, theirs in zip(made, wanted, strict=True):
        assert _comparable(ours, loose) == _expected(theirs, loose)


def _comparable(request: dict[str, Any], loose: list[tuple[list[str], str]]) -> dict[str, Any]:
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


def _expected(request: dict[str, Any], loose: list[tuple[list[str], str]]) -> dict[str, Any]:
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


def _path(field: str) -> tuple[list[str], str]:
    """'body.events[].params.a/b_* (why)' → (['body', 'events[]', 'params', 'a/b_*'], '');
    '… custom_data keys other than x/y (why)' → ([…, 'custom_data'], 'x/y')."""
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


def _set(node: Any, path: str, value: Any) -> None:
    """Set the value at a dotted path of keys and list indexes ("0.body.data.0.user_data.fn")."""
    *parents, last = path.split(".")
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    node[int(last) if isinstance(node, list) else last] = value
