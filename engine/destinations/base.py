"""The shape every destination plug-in has: settings, mapping, batching, response rules.

A destination module (one file per vendor in this package) defines a `Destination`: the
settings it reads (a msgspec Struct with RudderStack's keys, also the schema the UI renders),
which call types it takes, how an event becomes request(s), how requests combine into a batch,
and what the vendor's answers mean.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Literal

import msgspec

from engine.errors import SluiceError

ALL_TYPES = frozenset({"track", "identify", "page", "screen", "group", "alias"})


class Request(msgspec.Struct, omit_defaults=True):
    """One HTTP request to a vendor, stored with the job and shown by `sluice preview`."""

    method: str
    url: str
    headers: dict[str, str] = {}
    params: dict[str, str] = {}
    body: Any = None
    body_format: Literal["json", "form"] = "json"


class Verdict(Enum):
    DELIVERED = "delivered"
    RETRY = "retry"
    ABORT = "aborted"


class Unsendable(SluiceError):
    """The event cannot become a valid request for this destination; sending it would fail."""


class BadSettings(SluiceError):
    """The destination's settings are incomplete or of the wrong type."""


def classify_status(status: int, body: bytes) -> Verdict:
    """The generic rule: 2xx delivered, 429 and 5xx retried, any other answer aborted."""
    if 200 <= status < 300:
        return Verdict.DELIVERED
    if status == 429 or 500 <= status < 600:
        return Verdict.RETRY
    return Verdict.ABORT


@dataclass(frozen=True)
class Destination:
    name: str  # the type name in the workspace config, e.g. "webhook"
    title: str
    settings: type[msgspec.Struct]
    map: Callable[[dict[str, Any], Any], list[Request]]
    supported_types: frozenset[str] = ALL_TYPES
    # More than 1: up to this many jobs (of different users) travel in one request.
    batch_size: int = 1
    combine: Callable[[Sequence[Request]], Request] | None = None
    classify: Callable[[int, bytes], Verdict] = field(default=classify_status)

    def parse_settings(self, config: dict[str, Any]) -> Any:
        try:
            return msgspec.convert(config, self.settings)
        except msgspec.ValidationError as exc:
            raise BadSettings(f"{self.title} settings: {exc}") from None
