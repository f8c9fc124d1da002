"""Per-user partitions: the unit of ordering, and of work division between workers and hosts."""

import zlib
from collections.abc import Iterable
from typing import Any

from msgspec import Raw

# Fixed for the life of a database: changing it would move users between partitions.
PARTITIONS = 64


def partition_of(user_key: str) -> int:
    """The partition of a user id (anonymousId when there is none); stable across processes."""
    return zlib.crc32(user_key.encode()) % PARTITIONS


def identity(value: Any) -> str | None:
    """An id as text: strings as they are, numbers as written in the JSON."""
    if isinstance(value, str):
        return value or None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, Raw):
        return bytes(value).decode()
    return None


def user_key(message: dict[str, Any]) -> str | None:
    """Whose event this is, for ordering: the userId, else the anonymousId."""
    return identity(message.get("userId")) or identity(message.get("anonymousId"))


def spans(partitions: Iterable[int]) -> str:
    """0-3, 7, 9-12: partitions as ranges."""
    found: list[list[int]] = []
    for p in sorted(partitions):
        if found and p == found[-1][1] + 1:
            found[-1][1] = p
        else:
            found.append([p, p])
    return ", ".join(f"{a}-{b}" if a != b else str(a) for a, b in found)
