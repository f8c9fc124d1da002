"""ClickHouse as a warehouse (RudderStack's `CLICKHOUSE`): events loaded over ClickHouse's
HTTP interface into tables of one database (see `engine.destinations.warehouse` and
`engine.warehouses.clickhouse`)."""

from engine.destinations.base import DestinationType
from engine.destinations.warehouse import FILES, mappings
from engine.warehouses.clickhouse import LIMITS, ClickHouseWarehouse
from engine.warehouses.settings import ClickHouseSettings
from engine.warehouses.warehouse import WarehouseKind

_map, _map_from = mappings("CLICKHOUSE")

CLICKHOUSE = DestinationType(
    name="clickhouse",
    title="ClickHouse (warehouse)",
    category="Warehouses",
    description="Load every event into ClickHouse tables, RudderStack's schema.",
    settings=ClickHouseSettings,
    map=_map,
    map_from=_map_from,
    secret_keys=("password",),
    files=FILES,
    warehouse=WarehouseKind("CLICKHOUSE", ClickHouseWarehouse, sessions=2, limits=LIMITS),
)
