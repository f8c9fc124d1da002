"""What a loader asks of a warehouse (one module per warehouse implements it): its tables as
they are, a table made ready for a load, and a table's rows loaded."""

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal, Protocol, Self

from engine.errors import SluiceError
from engine.warehouses.names import Provider
from engine.warehouses.schema import Change, Columns


class WarehouseError(SluiceError):
    """The warehouse failed or refused, in its own words (and what Sluice was doing)."""


Mode = Literal["merge", "users", "new", "append"]
# What a column of a type can hold, where a warehouse holds less than the type says (a
# ClickHouse `DateTime` holds 1970 to 2105): type → whether a value (converted) fits.
Limits = Mapping[str, Callable[[Any], bool]]


@dataclass(frozen=True)
class Load:
    """One table's rows in one load. `mode`: `merge` (one row per id, the latest, replacing
    rows the table had), `users` (per user the latest non-null value of each column), `new`
    (rows without an id: those the table does not have yet, compared on `key`) or `append`."""

    namespace: str
    table: str
    columns: list[str]  # the order of each row's values
    types: list[str]  # each column's type
    mode: Mode
    key: tuple[str, ...] = ()
    stamps: tuple[str, ...] = ()  # columns that hold the load's time (`uuid_ts`), not in rows
    now: str = ""  # the load's time (UTC ISO)
    # The load's staged files, as one name: the same files make the same name (a warehouse
    # may use it to load them once, however often the load is tried).
    batch: str = ""


class Warehouse(Protocol):
    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...

    async def tables(self, namespace: str) -> dict[str, Columns]: ...

    async def create_namespace(self, namespace: str) -> None: ...

    async def prepare(self, namespace: str, table: str, change: Change, mode: Mode) -> Columns:
        """Make the table what the load needs: created (for loads of `mode`), or given its
        new columns; the columns it has now, by type (a warehouse may make a column of a type
        of its own: ClickHouse's `id` is always text)."""

    async def load(self, load: Load, rows: Iterable[Sequence[Any]]) -> None: ...


@dataclass(frozen=True)
class WarehouseKind:
    """A warehouse destination type's loading side: its RudderStack code and how to open a
    session with one (given its settings)."""

    provider: Provider
    open: Callable[[Any], Warehouse]
    sessions: int = 1  # tables loaded at once, each on its own session
    limits: Limits = field(default_factory=dict)
