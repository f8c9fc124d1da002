"""Per-user partitions: the unit of ordering and, later, of work division between hosts."""

import zlib

# Fixed for the life of a database: changing it would move users between partitions.
PARTITIONS = 64


def partition_of(user_key: str) -> int:
    """The partition of a user id (anonymousId when there is none); stable across processes."""
    return zlib.crc32(user_key.encode()) % PARTITIONS
