"""BigQuery as a warehouse (RudderStack's `BQ`): events loaded into tables in the customer's
project, one dataset per source (see `engine.destinations.warehouse` and
`engine.warehouses.bigquery`)."""

import json
from typing import Any

from engine.destinations.base import DestinationType
from engine.destinations.warehouse import FILES, mappings
from engine.warehouses.bigquery import BigQueryWarehouse
from engine.warehouses.settings import BigQuerySettings
from engine.warehouses.warehouse import WarehouseKind

_map, _map_from = mappings("BQ")


def _key_parts(config: dict[str, Any]) -> list[str]:
    """The service account key's secret parts, as they are and as JSON text writes them (a
    message may quote one without the rest of the key)."""
    try:
        key = json.loads(config.get("credentials") or "")
    except (TypeError, ValueError):
        return []
    if not isinstance(key, dict):
        return []
    parts = [value for name in ("private_key", "private_key_id")
             if isinstance(value := key.get(name), str) and value.strip()]  # fmt: skip
    return parts + [json.dumps(part)[1:-1] for part in parts]


BIGQUERY = DestinationType(
    name="bigquery",
    title="Google BigQuery (warehouse)",
    category="Warehouses",
    description="Load every event into BigQuery tables, RudderStack's schema.",
    settings=BigQuerySettings,
    map=_map,
    map_from=_map_from,
    secret_keys=("credentials",),
    more_secrets=_key_parts,
    files=FILES,
    warehouse=WarehouseKind("BQ", BigQueryWarehouse, sessions=2),
)
