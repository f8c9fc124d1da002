"""A RudderStack `workspaceConfig.json` (what its control plane serves the data plane, or what
`rudder-server` reads in file mode) as a Sluice workspace: its sources with their write keys,
its destinations with their settings (the same keys), and the connections between them.

What cannot come along is listed rather than dropped silently: destination types Sluice does
not deliver to yet, and transformations (the file names their versions, not their code).
"""

from dataclasses import dataclass, field
from typing import Any

from engine.errors import ConfigError
from engine.specs import ConnectionSpec, DestinationSpec, SourceSpec, WorkspaceSpec

# RudderStack's destination definition names → Sluice's destination types.
DEFINITIONS = {
    "WEBHOOK": "webhook",
    "GA4": "ga4",
    "AM": "amplitude",
    "MP": "mixpanel",
    "ADJ": "adjust",
    "AF": "appsflyer",
    "FACEBOOK_PIXEL": "facebook_pixel",
    "FACEBOOK_CONVERSIONS": "facebook_conversions",
    "FB": "facebook_app_events",
    "S3": "s3",
    "POSTGRES": "postgres",
    "RS": "redshift",
    "SNOWFLAKE": "snowflake",
    "BQ": "bigquery",
    "CLICKHOUSE": "clickhouse",
}


@dataclass
class Imported:
    spec: WorkspaceSpec
    skipped: list[str] = field(default_factory=list)  # what did not come along, and why


def read(document: Any) -> Imported:
    """The workspace in a workspaceConfig document: `{"sources": [...]}`, or a multi-tenant
    one, `{"<workspace id>": {"sources": [...]}, ...}`."""
    if not isinstance(document, dict):
        raise ConfigError("workspaceConfig", "must be a JSON object with `sources`")
    workspaces = [document] if "sources" in document else list(document.values())
    if not workspaces or not all(isinstance(w, dict) and "sources" in w for w in workspaces):
        raise ConfigError("workspaceConfig", "has no `sources` (is this RudderStack's file?)")
    imported = Imported(WorkspaceSpec())
    destinations: dict[str, DestinationSpec] = {}
    for workspace in workspaces:
        for i, source in enumerate(_list(workspace.get("sources"), "sources")):
            _source(imported, destinations, i, source)
    imported.spec.destinations = list(destinations.values())
    return imported


def _list(value: Any, label: str) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise ConfigError(label, "must be a list of objects")
    return value


def _source(
    imported: Imported, destinations: dict[str, DestinationSpec], index: int, source: Any
) -> None:
    name, key = source.get("name"), source.get("writeKey")
    if not isinstance(name, str) or not isinstance(key, str):
        raise ConfigError(f"sources[{index}]", "needs a `name` and a `writeKey`")
    enabled = source.get("enabled", True) is not False
    imported.spec.sources.append(SourceSpec(name=name, write_key=key, enabled=enabled))
    for destination in _list(source.get("destinations", []), f"sources[{index}].destinations"):
        label = f"destination {destination.get('name')!r} of source {name!r}"
        definition = destination.get("destinationDefinition") or {}
        kind = DEFINITIONS.get(str(definition.get("name", "")).upper())
        if kind is None:
            shown = definition.get("displayName") or definition.get("name") or "unknown"
            imported.skipped.append(f"{label}: Sluice does not deliver to {shown} yet")
            continue
        dest_name = destination.get("name")
        if not isinstance(dest_name, str):
            raise ConfigError(label, "needs a `name`")
        config = {**(destination.get("config") or {}), **(destination.get("secretConfig") or {})}
        destinations.setdefault(
            str(destination.get("id", dest_name)),
            DestinationSpec(dest_name, kind, config, destination.get("enabled", True) is not False),
        )
        imported.spec.connections.append(ConnectionSpec(source=name, destination=dest_name))
        if destination.get("transformations"):
            imported.skipped.append(
                f"{label}: its transformation (the file holds no code: add it in Sluice)"
            )
