"""Per-user partitions: the unit of ordering and, later, of work division between hosts."""

import zlib
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
