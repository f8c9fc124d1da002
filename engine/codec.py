"""JSON for event payloads: numbers travel as the text they were sent as.

Numbers with a fraction or exponent are kept as their JSON text (a `msgspec.Raw`), never as
floats: nothing is rounded, 1e999 is kept as sent, and an id like 1.50 reads the same both
ways. Integers of any size decode to Python ints, which keep every digit too.
"""

from typing import Any

import msgspec
from msgspec import Raw


def number_text(text: str) -> Raw:
    return Raw(text.encode())


encode = msgspec.json.Encoder(decimal_format="number").encode
_decoder = msgspec.json.Decoder(float_hook=number_text)


def decode(data: bytes | str) -> Any:
    return _decoder.decode(data)
