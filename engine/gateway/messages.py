"""Validation and normalisation of Segment-spec messages, from request body to ingest row.

Most messages take the quick way: only the fields the gateway checks or sets are decoded (an
`_Envelope`), and the stored JSON is the message's own bytes with the stamped fields appended —
the rest of the message is never turned into Python objects. A message that needs more than
appending (an identify whose traits must be mirrored, a `writeKey` to remove, a U+0000 to drop,
batch-level context to merge, a field of an unusual type) takes the full way: decoded into a
dict, normalised, encoded again. Both ways store the same JSON.

A body whose only fault is a lone surrogate (`"\\ud83d"` without its pair: an SDK cut a string
in the middle of an emoji) is read with U+FFFD in its place, as RudderStack's Go server reads it.
"""

from collections.abc import Iterator
from typing import Any, NamedTuple
from uuid import uuid4

import msgspec
from msgspec import UNSET, Raw, UnsetType

from engine import partitions
from engine.codec import encode, mended, number_text
from engine.errors import InvalidRequest, TooLarge
from engine.partitions import identity, partition_of
from engine.store.ingest_log import Row

CALL_TYPES = frozenset({"track", "identify", "page", "screen", "group", "alias"})
_TYPES_TEXT = ", ".join(sorted(CALL_TYPES))
_NUL = b"\\u0000"


class RequestFacts(NamedTuple):
    """What the gateway knows about the request that carried the messages."""

    source_id: str
    received_at: str  # ISO 8601, UTC, milliseconds
    ip: str
    max_message_bytes: int
    stamp: bytes  # the JSON members every stored message gets, ready to append

    @classmethod
    def of(
        cls, source_id: str, received_at: str, ip: str, max_message_bytes: int
    ) -> "RequestFacts":
        stamp = b"".join((b'"receivedAt":', encode(received_at), b',"request_ip":', encode(ip)))
        return cls(source_id, received_at, ip, max_message_bytes, stamp)


class _Envelope(msgspec.Struct):
    type: Any = UNSET
    userId: Any = UNSET
    anonymousId: Any = UNSET
    messageId: Any = UNSET
    sentAt: Any = UNSET
    context: Raw | UnsetType = UNSET
    writeKey: Any = UNSET
    receivedAt: Any = UNSET
    request_ip: Any = UNSET


class _Batch(msgspec.Struct):
    batch: list[Raw]
    sentAt: Any = UNSET
    context: Any = UNSET
    integrations: Any = UNSET
    writeKey: Any = UNSET


class Refusal(NamedTuple):
    """A message left out of its request, and why (a sentence that names it)."""

    reason: str
    message: bytes  # as the SDK sent it
    size: int  # as counted against the limit: with what its batch shares with it


class Accepted(NamedTuple):
    """A request's messages as ingest rows, and those refused one by one (too large): the rest
    of the batch is stored all the same."""

    rows: list[Row]
    refused: list[Refusal]


class Body(NamedTuple):
    """A decoded request body: its messages still raw, and what applies to all of them."""

    messages: list[tuple[bytes, _Envelope]]
    write_key: str | None
    shared: dict[str, Any]  # batch-level sentAt, context, integrations
    call_type: str | None  # set by the path of a single-message request
    sent_at: bytes = b""  # the batch-level sentAt as JSON, for messages without their own
    shared_bytes: int = 0  # the batch-level context and integrations, as JSON: each may take them


_envelope = msgspec.json.Decoder(_Envelope, float_hook=number_text)
_batch = msgspec.json.Decoder(_Batch, float_hook=number_text)
_any = msgspec.json.Decoder(float_hook=number_text)


def parse_single(body: bytes, call_type: str) -> Body:
    """A `/v1/<type>` request: the body is the message and the path decides its type."""
    body, envelope = _decode_mending(_envelope, body)
    return Body([(body, envelope)], _text(envelope.writeKey), {}, call_type)


def parse_batch(body: bytes) -> Body:
    """A `/v1/batch` (or import, or beacon) request."""
    _, batch = _decode_mending(_batch, body)
    if not batch.batch:
        raise InvalidRequest("the batch is empty")
    shared = {
        key: value
        for key in ("sentAt", "context", "integrations")
        if (value := getattr(batch, key)) is not UNSET
    }
    messages = []
    for i, raw in enumerate(batch.batch):
        data = bytes(raw)
        try:
            envelope = _envelope.decode(data)
        except (msgspec.DecodeError, RecursionError, UnicodeDecodeError):
            envelope = _decode(_envelope, data, f"message {i} of the batch")  # (raises, saying why)
        messages.append((data, envelope))
    sent_at = encode(shared["sentAt"]) if "sentAt" in shared else b""
    shared_bytes = sum(len(encode(shared[k])) for k in ("context", "integrations") if k in shared)
    return Body(messages, _text(batch.writeKey), shared, None, sent_at, shared_bytes)


def rows(body: Body, facts: RequestFacts) -> Accepted:
    """Every message normalised, but those over the size limit, which are refused alone; any
    other bad message rejects the whole request (InvalidRequest)."""
    result, refused = [], []
    for i, (raw, envelope) in enumerate(body.messages):
        # As the SDK sent it (what it counts against the limit), with what the batch shares.
        size = len(raw) + body.shared_bytes
        if size > facts.max_message_bytes:
            refused.append(Refusal(_too_large(_label(body, i), size, facts), raw, size))
            continue
        row = _quick(raw, envelope, body, facts, i)
        if row is None:
            label = _label(body, i)
            msg = _decode(_any, raw, label)
            if body.shared:
                _inherit(msg, body.shared)
            if body.call_type is not None:
                msg["type"] = body.call_type
            try:
                row = normalise(msg, facts, label)
            except RecursionError:
                raise InvalidRequest(f"{label} is nested too deeply") from None
        result.append(row)
    return Accepted(result, refused)


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
    size = len(encode(msg))
    if size > facts.max_message_bytes:
        raise TooLarge(_too_large("the pixel request", size, facts))
    return normalise(msg, facts, label="the pixel request")


def _quick(raw: bytes, env: _Envelope, body: Body, facts: RequestFacts, i: int) -> Row | None:
    """The stored row by appending to the message's own JSON, or None to take the full way."""
    user_key = _quick_user(raw, env, body)
    if user_key is None:
        return None
    message_id = env.messageId
    extra = [facts.stamp]
    if env.type is UNSET:
        extra += [b',"type":"', str(body.call_type).encode(), b'"']
    if message_id is UNSET:
        message_id = str(uuid4())
        extra += [b',"messageId":"', message_id.encode(), b'"']
    if env.sentAt is UNSET and body.sent_at:
        extra += [b',"sentAt":', body.sent_at]
    if env.context is UNSET:
        extra.append(b',"context":{}')
    end = raw.rindex(b"}")
    payload = b"".join((raw[:end], b",", *extra, b"}"))
    if not payload.isascii():  # msgspec does not check the UTF-8 of fields it skipped
        try:
            payload.decode()
        except UnicodeDecodeError:
            raise InvalidRequest(f"{_label(body, i)} is not valid UTF-8") from None
    return Row(facts.source_id, partition_of(user_key), facts.received_at, message_id, payload)


def _quick_user(raw: bytes, env: _Envelope, body: Body) -> str | None:
    """The user key when appending stamps is all the message needs, else None.

    Anything to remove, merge, mirror or replace — or a doubtful value the full way would
    reject with a precise message — sends the message the full way.
    """
    if body.call_type is not None and env.type not in (UNSET, body.call_type):
        return None
    call_type = body.call_type or env.type
    if not _is_call_type(call_type) or call_type == "identify":
        return None
    if env.writeKey is not UNSET or env.receivedAt is not UNSET or env.request_ip is not UNSET:
        return None
    if "context" in body.shared or "integrations" in body.shared or _NUL in raw:
        return None
    message_id, context = env.messageId, env.context
    if message_id is not UNSET and not (isinstance(message_id, str) and message_id):
        return None
    if env.sentAt is None:  # the full way gives it the batch's sentAt
        return None
    if env.sentAt is UNSET and _NUL in body.sent_at:
        return None
    if isinstance(context, Raw) and not bytes(context).lstrip().startswith(b"{"):
        return None
    return identity(env.userId) or identity(env.anonymousId)


def normalise(msg: Any, facts: RequestFacts, label: str, *, cleaned: bool = False) -> Row:
    """The full way: the message as a dict, checked, stamped and encoded again. (Its size was
    checked as received: the stamps and the mirrored identify traits do not count.)"""
    if not isinstance(msg, dict):
        raise InvalidRequest(f"{label} must be a JSON object")
    call_type = msg.get("type")
    if not _is_call_type(call_type):
        raise InvalidRequest(f"{label} needs a 'type', one of {_TYPES_TEXT}")
    user_key = partitions.user_key(msg)
    if user_key is None:
        raise InvalidRequest(f"{label} needs a non-empty 'userId' or 'anonymousId'")
    context = msg.get("context")
    if context is None:
        context = msg["context"] = {}
    elif not isinstance(context, dict):
        raise InvalidRequest(f"{label}: 'context' must be an object")
    message_id = identity(msg.get("messageId"))
    if message_id is None:
        message_id = str(uuid4())
    msg["messageId"] = message_id
    msg.pop("writeKey", None)
    msg["receivedAt"] = facts.received_at
    msg["request_ip"] = facts.ip
    if call_type == "identify":
        _unify_traits(msg, context)
    payload = encode(msg)
    if _NUL in payload and not cleaned:  # (or an escaped backslash before "u0000")
        # Checked again once cleaned: an id may have been nothing but NULs.
        return normalise(_without_nul(msg), facts, label, cleaned=True)
    return Row(facts.source_id, partition_of(user_key), facts.received_at, message_id, payload)


def _is_call_type(value: Any) -> bool:
    return isinstance(value, str) and value in CALL_TYPES


def _decode_mending(decoder: msgspec.json.Decoder[Any], body: bytes) -> tuple[bytes, Any]:
    """The body decoded, lone surrogates mended if that is all that is wrong with it; and the
    body as read."""
    try:
        return body, decoder.decode(body)
    except (msgspec.ValidationError, RecursionError):
        pass  # (well-formed JSON of the wrong shape, or too deep: nothing to mend)
    except msgspec.DecodeError:
        body = mended(body) or body
    return body, _decode(decoder, body, "the body")  # (raises, saying why, unless mended)


def _decode(decoder: msgspec.json.Decoder[Any], data: bytes, label: str) -> Any:
    try:
        return decoder.decode(data)
    except msgspec.ValidationError as exc:
        if "`$.batch" in str(exc) or "field `batch`" in str(exc):
            raise InvalidRequest("the body needs a 'batch' array of messages") from None
        if str(exc).startswith("Expected `object`"):
            raise InvalidRequest(f"{label} must be a JSON object") from None
        raise InvalidRequest(f"{label}: {exc}") from None
    except RecursionError:
        raise InvalidRequest(f"{label} is nested too deeply") from None
    except msgspec.DecodeError as exc:
        raise InvalidRequest(f"malformed JSON: {exc}") from None
    except UnicodeDecodeError:
        raise InvalidRequest(f"{label} is not valid UTF-8") from None


def _label(body: Body, i: int) -> str:
    """The message, as error messages name it."""
    return "the message" if body.call_type else f"message {i} of the batch"


def _too_large(label: str, size: int, facts: RequestFacts) -> str:
    return f"{label} is {size} bytes; the limit is {facts.max_message_bytes} bytes"


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _inherit(msg: Any, shared: dict[str, Any]) -> None:
    """Batch-level sentAt, context and integrations apply to messages that lack their own."""
    if not isinstance(msg, dict):
        return
    for key, value in shared.items():
        own = msg.get(key)
        if own is None:
            msg[key] = value
        elif key != "sentAt" and isinstance(own, dict) and isinstance(value, dict):
            msg[key] = {**value, **own}


def _unify_traits(msg: dict[str, Any], context: dict[str, Any]) -> None:
    """Segment SDKs send identify traits at the top level, RudderStack's in context.traits."""
    top, nested = msg.get("traits"), context.get("traits")
    if not isinstance(top, dict) and isinstance(nested, dict):
        msg["traits"] = nested
    elif isinstance(top, dict) and not isinstance(nested, dict):
        context["traits"] = top


def _without_nul(value: Any) -> Any:
    """PostgreSQL cannot store U+0000 in text or json; like RudderStack, drop the character."""
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, dict):
        return {_without_nul(k): _without_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_nul(v) for v in value]
    return value
