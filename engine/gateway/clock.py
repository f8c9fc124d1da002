"""The `receivedAt` stamp, formatted once per millisecond rather than once per request."""

import time
from datetime import UTC, datetime


class Clock:
    def __init__(self) -> None:
        self._ms = -1
        self._text = ""

    def now(self) -> str:
        """The current time as ISO 8601 in UTC with milliseconds, e.g. 2026-11-27T10:00:00.123Z"""
        ms = time.time_ns() // 1_000_000
        if ms != self._ms:
            moment = datetime.fromtimestamp(ms / 1000, UTC)
            self._text = moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
            self._ms = ms
        return self._text
