"""A warehouse destination's settings, with RudderStack's keys (so a RudderStack workspace
config imports as it is): where the warehouse is, how often it is loaded, and the schema
options its transformer reads (see `rows.py`).

`syncFrequency` is in minutes, as RudderStack's UI writes it (a string such as "30"); loads
happen that often, and at once on `sluice warehouse sync` or the UI's "Sync now".
"""

import json
from typing import Any, Literal

import msgspec

from engine.warehouses import names
from engine.warehouses.names import Provider

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

    def schema(self, provider: Provider) -> str | None:
        """The schema every source's events go to, when the settings name one (`namespace`,
        as RudderStack names a schema)."""
        return names.namespace(self.namespace, provider) if self.namespace.strip() else None

    def schema_for(self, source: str, provider: Provider) -> str:
        """The schema a source's events go to: the settings' or one named after the source."""
        return self.schema(provider) or names.namespace(source, provider)

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
        _server(self, "host", "database", "user")


class RedshiftSettings(PostgresSettings, kw_only=True):
    """Redshift, and the S3 bucket its loads go through (RudderStack's keys): each load's
    rows are written there as gzipped CSV files, which Redshift's `COPY` reads with the same
    keys (or, with both empty, the host's AWS credentials)."""

    port: str | int = "5439"
    sslMode: Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] = (
        "require"
    )
    bucketName: str
    prefix: str = ""
    accessKeyID: str = ""
    accessKey: str = ""
    region: str = ""  # the bucket's region (empty: the host's AWS configuration)
    endpoint: str = ""  # an S3-compatible store instead of AWS S3 (Redshift must reach it)
    enableSSE: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        _server(self, "bucketName")
        if bool(self.accessKeyID) != bool(self.accessKey):
            raise ValueError("give both accessKeyID and accessKey, or neither (the host's "
                             "AWS credentials)")  # fmt: skip


class SnowflakeSettings(WarehouseSettings, kw_only=True):
    """Snowflake (RudderStack's keys): an account, a database the schemas go in, the virtual
    warehouse that runs the loads, and a user signing in with a password or a key pair."""

    account: str  # the account identifier: `orgname-account` or `locator.region`
    database: str
    warehouse: str
    user: str
    password: str = ""
    role: str = ""
    useKeyPairAuth: bool = False
    privateKey: str = ""  # PEM (PKCS#8), with useKeyPairAuth
    privateKeyPassphrase: str = ""
    endpoint: str = ""  # a Snowflake service at another address: http(s)://host:port

    def __post_init__(self) -> None:
        super().__post_init__()
        for key in ("account", "database", "warehouse", "user"):
            if not getattr(self, key).strip():
                raise ValueError(f"{key} is empty")
        if self.useKeyPairAuth and not self.privateKey.strip():
            raise ValueError("useKeyPairAuth is on but privateKey is empty: paste the PEM key")
        if not self.useKeyPairAuth and not self.password:
            raise ValueError("password is empty (or turn useKeyPairAuth on and give privateKey)")
        if self.endpoint and not self.endpoint.startswith(("http://", "https://")):
            raise ValueError(f"endpoint {self.endpoint!r} is not an http(s):// URL")


class BigQuerySettings(WarehouseSettings, kw_only=True):
    """BigQuery (RudderStack's keys): the project the datasets (one per source) are made in,
    their location, and a service account's JSON key. Loads go through the load jobs' own
    uploads: `bucketName` (RudderStack stages files in Cloud Storage) is not needed."""

    project: str
    credentials: str  # a service account's key: the JSON file Google Cloud gives
    location: str = ""  # where new datasets are made: `US`, `EU`, `europe-west1`… (empty: US)
    bucketName: str = ""
    prefix: str = ""
    skipViews: bool = False  # no `<table>_view` (one row per id) beside each table
    endpoint: str = ""  # a BigQuery API at another address: http(s)://host:port

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.project.strip():
            raise ValueError("project is empty")
        self.service_account()
        if self.endpoint and not self.endpoint.startswith(("http://", "https://")):
            raise ValueError(f"endpoint {self.endpoint!r} is not an http(s):// URL")

    def service_account(self) -> dict[str, Any]:
        """The key in `credentials`, checked for what signing in needs (and never quoted)."""
        try:
            key = json.loads(self.credentials)
        except ValueError:
            key = None
        if not isinstance(key, dict) or key.get("type") != "service_account":
            raise ValueError("credentials is not a service account's JSON key (in Google "
                             "Cloud: IAM → Service accounts → Keys → Add key → JSON)")  # fmt: skip
        for field in ("client_email", "private_key", "token_uri"):
            if not isinstance(key.get(field), str) or not key[field].strip():
                raise ValueError(f"credentials has no {field}: paste the whole JSON key file")
        return key


class ClickHouseSettings(WarehouseSettings, kw_only=True):
    """ClickHouse, reached over its HTTP interface (`port`: 8123; usually 8443 with `secure`). As
    in RudderStack, every source's events go to the one `database`."""

    host: str
    database: str = "rudder"
    user: str = "default"
    password: str = ""
    port: str | int = "8123"
    secure: bool = False  # HTTPS
    skipVerify: bool = False  # HTTPS without checking the server's certificate
    caCertificate: str = ""  # PEM: the authority that signed the server's certificate
    cluster: str = ""
    partitionType: Literal["", "day", "week", "month", "quarter"] = "day"

    def __post_init__(self) -> None:
        super().__post_init__()
        _server(self, "host", "database", "user")
        if self.cluster.strip():
            raise ValueError(
                "cluster is set: loading a ClickHouse cluster (ON CLUSTER, replicated tables) "
                "is not supported yet; name one server in host instead"
            )

    def schema(self, provider: Provider) -> str | None:
        return self.database  # as it is written: it names an existing database


def _server(settings: Any, *required: str) -> None:
    """A server's port is a TCP port number and none of `required` is empty."""
    if not str(settings.port).isdigit() or not 0 < int(settings.port) < 65536:
        raise ValueError(f"port {settings.port!r} is not a TCP port number")
    for key in required:
        if not getattr(settings, key).strip():
            raise ValueError(f"{key} is empty")
