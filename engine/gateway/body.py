"""Reading a request body: size limits first, then Content-Encoding undone."""

import zlib

from granian.rsgi import HTTPProtocol, Scope  # type: ignore[attr-defined]

from engine.errors import InvalidRequest, TooLarge


async def read(scope: Scope, proto: HTTPProtocol, limit: int) -> bytes:
    """The body as the SDK meant it, refused with 413 past `limit` bytes, before or after gzip.

    A chunked body (no Content-Length) is read piece by piece and refused as soon as it passes
    the limit, so a client cannot make the gateway hold more than that in memory.
    """
    declared = scope.headers.get("content-length")
    if declared is not None and declared.isdigit():
        if int(declared) > limit:
            raise TooLarge(f"the request is over the limit of {limit} bytes")
        raw = await proto()
    else:
        parts, size = [], 0
        async for chunk in proto:
            size += len(chunk)
            if size > limit:
                raise TooLarge(f"the request is over the limit of {limit} bytes")
            parts.append(chunk)
        raw = b"".join(parts)
    return _decode(raw, scope.headers.get("content-encoding"), limit)


def _decode(raw: bytes, encoding: str | None, limit: int) -> bytes:
    """Undo Content-Encoding, whatever Content-Type claims."""
    encoding = (encoding or "identity").strip().lower()
    if encoding == "identity":
        return raw
    if encoding not in ("gzip", "x-gzip", "deflate"):
        raise InvalidRequest(f"unsupported Content-Encoding {encoding!r}; use gzip or none")
    return _inflate(raw, encoding, limit)


def _inflate(raw: bytes, encoding: str, limit: int) -> bytes:
    """Every member of a gzip (or zlib) stream, refused if truncated or larger than `limit`."""
    out: list[bytes] = []
    size = 0
    rest = raw
    while rest:
        inflater = zlib.decompressobj(zlib.MAX_WBITS | 32)  # gzip or zlib, from the header
        try:
            part = inflater.decompress(rest, limit + 1 - size)
        except zlib.error as exc:
            raise InvalidRequest(f"the body is not valid {encoding}: {exc}") from None
        size += len(part)
        if size > limit or inflater.unconsumed_tail:
            raise TooLarge(f"the decompressed request is over the limit of {limit} bytes")
        if not inflater.eof:
            raise InvalidRequest(f"the {encoding} body is truncated")
        out.append(part)
        rest = inflater.unused_data
    return b"".join(out)
