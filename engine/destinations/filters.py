"""Which events a destination receives: its call types and RudderStack's event filters.

`eventFilteringOption` is `disable`, `whitelistedEvents` (only the listed track events pass) or
`blacklistedEvents` (the listed track events are held back); the lists hold `{eventName}` rows.
Only track events are filtered by name, as in RudderStack; an allow list with no names lets no
track event through. Slack's own deny list, `denyListOfEvents`, holds track events back too:
they are filtered (counted), not failed.
"""

from dataclasses import dataclass
from typing import Any


def _names(rows: Any) -> frozenset[str]:
    if not isinstance(rows, list):
        return frozenset()
    names = (row.get("eventName") for row in rows if isinstance(row, dict))
    return frozenset(n.strip() for n in names if isinstance(n, str) and n.strip())


@dataclass(frozen=True)
class EventFilter:
    types: frozenset[str]
    allowed: frozenset[str] | None = None
    blocked: frozenset[str] = frozenset()

    @classmethod
    def of(cls, config: dict[str, Any], types: frozenset[str]) -> "EventFilter":
        option = config.get("eventFilteringOption")
        denied = _names(config.get("denyListOfEvents"))
        if option == "whitelistedEvents":
            return cls(types, allowed=_names(config.get("whitelistedEvents")) - denied)
        if option == "blacklistedEvents":
            return cls(types, blocked=_names(config.get("blacklistedEvents")) | denied)
        return cls(types, blocked=denied)

    def admits(self, event: dict[str, Any]) -> bool:
        kind = event.get("type")
        if kind not in self.types:
            return False
        if kind != "track":
            return True
        name = event.get("event")
        name = name.strip() if isinstance(name, str) else ""
        if self.allowed is not None:
            return name in self.allowed
        return name not in self.blocked
