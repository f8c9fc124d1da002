"""PostgreSQL as a warehouse (RudderStack's `POSTGRES`): events loaded into tables in the
customer's own database, one schema per source (see `engine.destinations.warehouse` and
`engine.warehouses.postgres`)."""

from engine.destinations.base import DestinationType
from engine.destinations.warehouse import FILES, mappings
from engine.warehouses.postgres import PostgresWarehouse
from engine.warehouses.settings import PostgresSettings
from engine.warehouses.warehouse import WarehouseKind

_map, _map_from = mappings("POSTGRES")

POSTGRES = DestinationType(
    name="postgres",
    title="PostgreSQL (warehouse)",
    category="Warehouses",
    description="Load every event into PostgreSQL tables, RudderStack's schema.",
    settings=PostgresSettings,
    map=_map,
    map_from=_map_from,
    secret_keys=("password",),
    files=FILES,
    warehouse=WarehouseKind("POSTGRES", PostgresWarehouse, sessions=2),
)
