"""Which events a destination receives: its call types and RudderStack's event filters.

`eventFilteringOption` is `disable`, `whitelistedEvents` (only the listed track events pass) or
`blacklistedEvents` (the listed track events are held back); the lists hold `{eventName}` rows.
Only track events are filtered by name, as in RudderStack; an allow list with no names lets no
track event through. Slack's own deny list, `denyListOfEvents`, holds track events back too:
they are filtered (counted), not failed.

A plug-in may also decline an event it could take only with an optional setting left blank
(Amplitude's and Mixpanel's group calls without their group settings): such an event is
filtered, with the plug-in's reason naming the setting, rather than failed for good.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# (event, the destination's config) → why the destination cannot take it, or None
Declines = Callable[[dict[str, Any], dict[str, Any]], str | None]


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
    declines: Callable[[dict[str, Any]], str | None] | None = None

    @classmethod
    def of(
        cls, config: dict[str, Any], types: frozenset[str], declines: Declines | None = None
    ) -> "EventFilter":
        option = config.get("eventFilteringOption")
        denied = _names(config.get("denyListOfEvents"))
        asks = None if declines is None else (lambda event: declines(event, config))
        if option == "whitelistedEvents":
            allowed = _names(config.get("whitelistedEvents")) - denied
            return cls(types, allowed=allowed, declines=asks)
        if option == "blacklistedEvents":
            blocked = _names(config.get("blacklistedEvents")) | denied
            return cls(types, blocked=blocked, declines=asks)
        return cls(types, blocked=denied, declines=asks)

    def admits(self, event: dict[str, Any]) -> bool:
        return self.why(event) is None

    def why(self, event: dict[str, Any]) -> str | None:
        """Why the event is filtered, or None when it passes."""
        kind = event.get("type")
        if kind not in self.types:
            return f"the destination does not take {str(kind)[:40]} calls"
        if kind == "track":
            name = event.get("event")
            name = name.strip() if isinstance(name, str) else ""
            if self.allowed is not None and name not in self.allowed:
                return "the event is not on the destination's allow list"
            if self.allowed is None and name in self.blocked:
                return "the event is on the destination's block list"
        return None if self.declines is None else self.declines(event)
