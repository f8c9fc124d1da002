"""Doubles of the cloud vendors' APIs, each a `tests.sink.Sink` behaviour."""

import threading
from dataclasses import dataclass, field


@dataclass
class VendorDouble:
    """What every double has: a lock over what it records (the sink answers from its own
    thread while the test reads), and the switch that makes it answer the next requests as
    rate-limited, each double in its vendor's words."""

    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _throttled: int = field(default=0, init=False, repr=False)

    def throttle_next(self, count: int) -> None:
        """Answer the next `count` requests as the vendor does past its rate limit."""
        with self._lock:
            self._throttled = count

    def throttled(self) -> bool:
        """Whether this request is one of those to answer as rate-limited (it is counted)."""
        with self._lock:
            if self._throttled <= 0:
                return False
            self._throttled -= 1
            return True
