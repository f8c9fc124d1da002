"""Reading a request body: size limits first, then Content-Encoding undone."""

import asyncio
import zlib

from engine.errors import InvalidRequest, TooLarge
from engine.gateway.http import Request

# Real clients send one member; concatenated streams are allowed, a flood of members is not.
_MAX_MEMBERS = 64
_STEP = 64 * 1024


async def read(request: Request, limit: int) -> bytes:
    """The body as the SDK meant it, refused with 413 past `limit` bytes, before or after gzip.

    A declared length over the limit is refused before any of the body is read; a chunked body
    is held only up to the connection's bound (`engine.gateway.http`).
    """
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"the request is over the limit of {limit} bytes")
    raw = await request.body()
    if len(raw) > limit:
        raise TooLarge(f"the request is over the limit of {limit} bytes")
    return await _decode(raw, request.headers.get("content-encoding"), limit)


async def _decode(raw: bytes, encoding: str | None, limit: int) -> bytes:
    """Undo Content-Encoding, whatever Content-Type claims."""
    encoding = (encoding or "identity").strip().lower()
    if encoding == "identity":
        return raw
    if encoding not in ("gzip", "x-gzip", "deflate"):
        raise InvalidRequest(f"unsupported Content-Encoding {encoding!r}; use gzip or none")
    return await _inflate(raw, encoding, limit)


async def _inflate(raw: bytes, encoding: str, limit: int) -> bytes:
    """Every member of a gzip (or zlib) stream, refused if truncated, larger than `limit` or
    made of more than `_MAX_MEMBERS` members.

    The input is fed `_STEP` bytes at a time, letting the event loop run in between, and what
    a member leaves over is at most one step: a body of thousands of tiny members once cost
    time growing with the square of its size, each member copying the rest of the body.
    """
    out: list[bytes] = []
    size = members = 0
    pending = memoryview(raw)  # not yet fed to any member
    carry = b""  # fed to a member that ended before it
    inflater = None
    while pending or carry:
        if inflater is None:
            members += 1
            if members > _MAX_MEMBERS:
                raise InvalidRequest(f"the {encoding} body has over {_MAX_MEMBERS} members")
            inflater = zlib.decompressobj(zlib.MAX_WBITS | 32)  # gzip or zlib, from the header
        step: bytes | memoryview
        if carry:
            step, carry = carry, b""
        else:
            step, pending = pending[:_STEP], pending[_STEP:]
        try:
            part = inflater.decompress(step, limit + 1 - size)
        except zlib.error as exc:
            raise InvalidRequest(f"the body is not valid {encoding}: {exc}") from None
        size += len(part)
        if size > limit or inflater.unconsumed_tail:
            raise TooLarge(f"the decompressed request is over the limit of {limit} bytes")
        out.append(part)
        if inflater.eof:
            carry, inflater = inflater.unused_data, None
        if pending:
            await asyncio.sleep(0)
    if inflater is not None:
        raise InvalidRequest(f"the {encoding} body is truncated")
    return b"".join(out)
