"""JSON for event payloads: numbers travel as the text they were sent as.

Numbers with a fraction or exponent are kept as their JSON text (a `msgspec.Raw`), never as
floats: nothing is rounded, 1e999 is kept as sent, and an id like 1.50 reads the same both
ways. Integers of any size decode to Python ints, which keep every digit too.

JSON may escape a lone surrogate (`"\\ud83d"`: a string cut in the middle of an emoji), which
is no Unicode text: such JSON is `mended`, each one read as U+FFFD, as Go's decoder (and so
RudderStack) reads it.
"""

import re
from typing import Any

import msgspec
from msgspec import Raw


def number_text(text: str) -> Raw:
    return Raw(text.encode())


encode = msgspec.json.Encoder(decimal_format="number").encode
_decoder = msgspec.json.Decoder(float_hook=number_text)


# A lone surrogate's escape: a high one without a low one after it, a low one without a high
# one before it. (Escaped backslashes are set aside first: `\\\\ud800` is text, not an escape.)
_LONE = re.compile(
    rb"\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F][0-9a-fA-F]{2})"
    rb"|(?<!\\u[dD][89abAB][0-9a-fA-F]{2})\\u[dD][c-fC-F][0-9a-fA-F]{2}"
)
_BACKSLASHES = b"\\\\"


def decode(data: bytes | str) -> Any:
    return _decoder.decode(data)


def mended(data: bytes) -> bytes | None:
    """`data` (JSON) with `\\ufffd` for each lone surrogate's escape, or None when it has
    none. Bytes in, bytes out, at the speed of a regular expression: a body is never walked."""
    if b"\x00" in data:  # (not JSON: a raw NUL, which also stands in below, is never in it)
        return None
    hidden = data.replace(_BACKSLASHES, b"\x00")
    fixed = _LONE.sub(rb"\\ufffd", hidden)
    return None if fixed == hidden else fixed.replace(b"\x00", _BACKSLASHES)
