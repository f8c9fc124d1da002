"""Validation and normalisation of Segment-spec messages, from request body to ingest row."""

from collections.abc import Iterator
from typing import Any, NamedTuple
from uuid import uuid4

import msgspec

from engine.errors import Rejected
from engine.partitions import partition_of

CALL_TYPES = frozenset({"track", "identify", "page", "screen", "group", "alias"})
_NUL = b"\\u0000"


class RequestFacts(NamedTuple):
    """What the gateway knows about the request that carried the messages."""

    source_id: str
    received_at: str  # ISO 8601, UTC, milliseconds
    ip: str
    max_message_bytes: int


class Row(NamedTuple):
    """One ingest log row, in the column order of the COPY."""

    source_id: str
    partition: int
    received_at: str
    message_id: str
    payload: str


def from_single(body: dict[str, Any], call_type: str, facts: RequestFacts) -> list[Row]:
    """A `/v1/<type>` request: the body is the message and the path decides its type."""
    body["type"] = call_type
    return [normalise(body, facts, label="the message")]


def from_batch(body: dict[str, Any], facts: RequestFacts) -> list[Row]:
    """A `/v1/batch` (or import, or beacon) request; any bad message rejects the whole request."""
    batch = body.get("batch")
    if not isinstance(batch, list):
        raise Rejected(400, "the body needs a 'batch' array of messages")
    if not batch:
        raise Rejected(400, "the batch is empty")
    shared = _batch_defaults(body)
    rows = []
    for i, msg in enumerate(batch):
        if isinstance(msg, dict) and shared:
            _inherit(msg, shared)
        rows.append(normalise(msg, facts, label=f"message {i} of the batch"))
    return rows


def from_pixel(params: Iterator[tuple[str, str]], call_type: str, facts: RequestFacts) -> Row:
    """A `/pixel/v1/<type>` GET: query parameters, dotted names giving nested fields."""
    msg: dict[str, Any] = {}
    for name, value in params:
        if name == "writeKey":
            continue
        *parents, leaf = name.split(".")
        node = msg
        for part in parents:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[leaf] = value
    msg["type"] = call_type
    return normalise(msg, facts, label="the pixel request")


def _batch_defaults(body: dict[str, Any]) -> dict[str, Any]:
    return {k: body[k] for k in ("sentAt", "context", "integrations") if k in body}


def _inherit(msg: dict[str, Any], shared: dict[str, Any]) -> None:
    """Batch-level sentAt, context and integrations apply to messages that lack their own."""
    for key, value in shared.items():
        own = msg.get(key)
        if own is None:
            msg[key] = value
        elif isinstance(own, dict) and isinstance(value, dict):
            msg[key] = {**value, **own}


def normalise(msg: Any, facts: RequestFacts, label: str) -> Row:
    if not isinstance(msg, dict):
        raise Rejected(400, f"{label} must be a JSON object")
    call_type = msg.get("type")
    if call_type not in CALL_TYPES:
        raise Rejected(400, f"{label} needs a 'type', one of {', '.join(sorted(CALL_TYPES))}")
    user_key = _identity(msg.get("userId")) or _identity(msg.get("anonymousId"))
    if user_key is None:
        raise Rejected(400, f"{label} needs a non-empty 'userId' or 'anonymousId'")
    context = msg.get("context")
    if context is None:
        context = msg["context"] = {}
    elif not isinstance(context, dict):
        raise Rejected(400, f"{label}: 'context' must be an object")
    message_id = _identity(msg.get("messageId"))
    if message_id is None:
        message_id = str(uuid4())
    msg["messageId"] = message_id
    msg.pop("writeKey", None)
    msg["receivedAt"] = facts.received_at
    msg["request_ip"] = facts.ip
    context.setdefault("ip", facts.ip)
    if call_type == "identify":
        _unify_traits(msg, context)
    payload = msgspec.json.encode(msg)
    if _NUL in payload:
        payload = msgspec.json.encode(_without_nul(msg))
        message_id = message_id.replace("\x00", "")
    if len(payload) > facts.max_message_bytes:
        raise Rejected(
            413,
            f"{label} is {len(payload)} bytes; the limit is {facts.max_message_bytes} bytes",
        )
    return Row(
        facts.source_id, partition_of(user_key), facts.received_at, message_id, payload.decode()
    )


def _identity(value: Any) -> str | None:
    if isinstance(value, str):
        return value or None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def _unify_traits(msg: dict[str, Any], context: dict[str, Any]) -> None:
    """Segment SDKs send identify traits at the top level, RudderStack's in context.traits."""
    top, nested = msg.get("traits"), context.get("traits")
    if not isinstance(top, dict) and isinstance(nested, dict):
        msg["traits"] = nested
    elif isinstance(top, dict) and not isinstance(nested, dict):
        context["traits"] = top


def _without_nul(value: Any) -> Any:
    """PostgreSQL cannot store U+0000 in text or jsonb; like RudderStack, drop the character."""
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, dict):
        return {_without_nul(k): _without_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_nul(v) for v in value]
    return value
