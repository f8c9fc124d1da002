"""Snowflake as a warehouse (RudderStack's `SNOWFLAKE`): events loaded into tables in the
customer's account, one schema per source (see `engine.destinations.warehouse` and
`engine.warehouses.snowflake`)."""

from engine.destinations.base import DestinationType
from engine.destinations.warehouse import FILES, mappings
from engine.warehouses.settings import SnowflakeSettings
from engine.warehouses.snowflake import SnowflakeWarehouse
from engine.warehouses.warehouse import WarehouseKind

_map, _map_from = mappings("SNOWFLAKE")

SNOWFLAKE = DestinationType(
    name="snowflake",
    title="Snowflake (warehouse)",
    category="Warehouses",
    description="Load every event into Snowflake tables, RudderStack's schema.",
    settings=SnowflakeSettings,
    map=_map,
    map_from=_map_from,
    secret_keys=("password", "privateKey", "privateKeyPassphrase"),
    files=FILES,
    warehouse=WarehouseKind("SNOWFLAKE", SnowflakeWarehouse, sessions=2),
)
