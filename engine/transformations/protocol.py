"""What the worker and a transformation's sandbox process say to each other over a pipe.

Each message is a MessagePack frame with a 4-byte big-endian length in front. The worker opens
the sandbox with the code and its limits, then sends chunks of events, one at a time; the
sandbox answers each with the driver's JSON text, or with why the call failed.
"""

import struct
from typing import Literal

import msgspec

_LENGTH = struct.Struct(">I")

# Why a call failed inside the sandbox: over the time limit, over the memory limit, or the
# runtime itself broken by the user's code (after "memory" and "broken" the sandbox is not
# used again).
Failure = Literal["time", "memory", "broken"]


class Ready(msgspec.Struct, tag=True):
    pass


class Open(msgspec.Struct, tag=True):
    code: str
    time_limit: float
    memory_limit: int


class Opened(msgspec.Struct, tag=True):
    error: str | None = None  # why the code was refused (compile error, no transform function)


class Run(msgspec.Struct, tag=True):
    items: bytes  # JSON: [{"event": …, "metadata": …}, …]


class Ran(msgspec.Struct, tag=True):
    text: str = ""  # the driver's JSON answer, one report per event
    failure: Failure | None = None
    detail: str = ""
    spoiled: bool = False  # code went on running after the call: do not use the sandbox again


Message = Ready | Open | Opened | Run | Ran

_encoder = msgspec.msgpack.Encoder()
_decoder: msgspec.msgpack.Decoder[Message] = msgspec.msgpack.Decoder(Message)


def frame(message: Message) -> bytes:
    body = _encoder.encode(message)
    return _LENGTH.pack(len(body)) + body


def length(header: bytes) -> int:
    """The body length a frame's 4-byte header announces."""
    (size,) = _LENGTH.unpack(header)
    return int(size)


HEADER = _LENGTH.size


def decode(body: bytes) -> Message:
    return _decoder.decode(body)
