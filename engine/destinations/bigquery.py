"""BigQuery as a warehouse (RudderStack's `BQ`): events loaded into tables in the customer's
project, one dataset per source (see `engine.destinations.warehouse` and
`engine.warehouses.bigquery`)."""

from engine.destinations.base import DestinationType
from engine.destinations.warehouse import FILES, mappings
from engine.warehouses.bigquery import BigQueryWarehouse
from engine.warehouses.settings import BigQuerySettings
from engine.warehouses.warehouse import WarehouseKind

_map, _map_from = mappings("BQ")

BIGQUERY = DestinationType(
    name="bigquery",
    title="Google BigQuery (warehouse)",
    settings=BigQuerySettings,
    map=_map,
    map_from=_map_from,
    secret_keys=("credentials",),
    files=FILES,
    warehouse=WarehouseKind("BQ", BigQueryWarehouse, sessions=2),
)
