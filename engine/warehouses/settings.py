"""A warehouse destination's settings, with RudderStack's keys (so a RudderStack workspace
config imports as it is): where the warehouse is, how often it is loaded, and the schema
options its transformer reads (see `rows.py`).

`syncFrequency` is in minutes, as RudderStack's UI writes it (a string such as "30"); loads
happen that often, and at once on `sluice warehouse sync` or the UI's "Sync now".
"""

from typing import Any, Literal

import msgspec

DEFAULT_SYNC_MINUTES = 30


class WarehouseSettings(msgspec.Struct, kw_only=True):
    """What every warehouse has: its schema name, its schedule, the transformer's options."""

    namespace: str = ""  # the schema to load into; empty: one per source, named after it
    syncFrequency: str | int = str(DEFAULT_SYNC_MINUTES)
    jsonPaths: str = ""
    skipTracksTable: bool = False
    skipUsersTable: bool = False
    storeFullEvent: bool = False
    underscoreDivideNumbers: bool = False
    allowUsersContextTraits: bool = False
    preferAppend: bool = False  # load without removing rows of the same id (faster, duplicates)

    def __post_init__(self) -> None:
        if self.sync_minutes <= 0:
            raise ValueError(
                f"syncFrequency {self.syncFrequency!r} is not a number of minutes above zero"
            )

    @property
    def sync_minutes(self) -> float:
        try:
            return float(self.syncFrequency or DEFAULT_SYNC_MINUTES)
        except ValueError:
            return -1.0

    def transformer_config(self) -> dict[str, Any]:
        """The settings RudderStack's transformer reads, under its names."""
        return {
            "jsonPaths": self.jsonPaths,
            "skipTracksTable": self.skipTracksTable,
            "skipUsersTable": self.skipUsersTable,
            "storeFullEvent": self.storeFullEvent,
            "underscoreDivideNumbers": self.underscoreDivideNumbers,
            "allowUsersContextTraits": self.allowUsersContextTraits,
        }


class PostgresSettings(WarehouseSettings, kw_only=True):
    host: str
    database: str
    user: str
    password: str = ""
    port: str | int = "5432"
    sslMode: Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] = (
        "disable"
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if not str(self.port).isdigit() or not 0 < int(self.port) < 65536:
            raise ValueError(f"port {self.port!r} is not a TCP port number")
        for key in ("host", "database", "user"):
            if not getattr(self, key).strip():
                raise ValueError(f"{key} is empty")
