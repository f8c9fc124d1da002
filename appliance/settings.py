"""Settings: `SLUICE_*` environment variables over `/etc/sluice/sluice.toml` over defaults.

The TOML file uses the names without the prefix (`database_url = "postgresql://…"`); its path
can be changed with `SLUICE_CONFIG`.
"""

import os
import socket
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import Field, SecretStr
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from engine.transformations.runtime import MAX_EVENTS

if TYPE_CHECKING:
    from engine.pipeline.processing.archive import ArchiveOptions

DEFAULT_CONFIG = Path("/etc/sluice/sluice.toml")


def _default_data_dir() -> Path:
    if os.geteuid() == 0:
        return Path("/var/lib/sluice")
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "sluice"


class Settings(BaseSettings):
    # hide_input_in_errors: a database URL carries a password and must not reach error output
    model_config = SettingsConfigDict(
        env_prefix="SLUICE_", extra="forbid", hide_input_in_errors=True
    )

    database_url: str | None = Field(
        None, description="PostgreSQL URL; without it `sluice run` starts an embedded server"
    )
    data_dir: Path = Field(default_factory=_default_data_dir)
    public_url: str | None = Field(
        None, description="the gateway URL SDKs use, when it differs from what they request"
    )
    gateway_host: str = "0.0.0.0"
    gateway_port: int = Field(
        8080, ge=0, le=65535, description="the gateway's plain-HTTP port; 0: none (HTTPS only)"
    )
    gateway_tls_port: int | None = Field(
        None, ge=1, le=65535, description="the gateway's HTTPS port (443); needs tls_cert"
    )
    http_port: int | None = Field(
        None, ge=1, le=65535, description="a plain-HTTP port (80), served by the gateway: it "
        "answers ACME HTTP-01 challenges from acme_dir and redirects the rest to HTTPS",
    )  # fmt: skip
    acme_dir: Path | None = Field(
        None, description="the webroot an ACME client (certbot --webroot) writes HTTP-01 "
        "challenges to, for http_port to answer; default <data dir>/acme",
    )  # fmt: skip
    tls_cert: Path | None = Field(
        None, description="PEM certificate chain; with tls_key the web UI answers HTTPS, and "
        "the gateway on gateway_tls_port; renewed files are put in service without a restart",
    )  # fmt: skip
    tls_key: Path | None = Field(None, description="the certificate's private key (PEM)")
    trusted_proxies: list[IPv4Network | IPv6Network] = Field(
        default_factory=list,
        description="load balancers / proxies whose X-Forwarded-For gives the client address",
    )
    gateway_workers: int = Field(2, ge=1, le=64, description="gateway processes")
    web_host: str = "127.0.0.1"
    web_port: int = Field(8000, ge=1, le=65535)
    web_test_private_hosts: bool = Field(
        False, description="let the UI's \"send test event\" reach destinations on this host's "
        "own network (loopback, private addresses); it shows their answers",
    )  # fmt: skip
    web_secure_cookies: bool = Field(
        False, description="the UI is reached over HTTPS (directly or through a proxy): "
        "its cookies are then only ever sent over HTTPS",
    )  # fmt: skip
    embedded_db_port: int = Field(15432, ge=1, le=65535)
    embedded_warehouse_port: int = Field(
        15433, ge=1, le=65535, description="loopback port of the local warehouse's server"
    )
    max_message_bytes: int = Field(32 * 1024, ge=1024)
    max_request_bytes: int = Field(4 * 1024 * 1024, ge=1024)
    commit_window_ms: float = Field(2.0, ge=0, le=100)
    gateway_max_pacing_ms: float = Field(
        200, ge=0, le=2000, description="while the pipeline on this host falls further behind "
        "(docs/gateway.md, Pacing), the gateway pauses each answer after its commit, this long "
        "at most, so that clients send less; 0 never pauses",
    )  # fmt: skip
    spool_max_mb: int = Field(
        1024, ge=0, description="accepted events kept on the data dir while PostgreSQL is "
        "away, at most this much per host; 0 answers 503 instead",
    )  # fmt: skip
    sdk_dir: Path | None = Field(
        None, description="browser SDK files the gateway serves under /sdk/ (`sluice sdk "
        "install` fills it); default <data dir>/sdk",
    )  # fmt: skip
    transform_max_events: int = Field(
        MAX_EVENTS, ge=1, le=100_000,
        description="events a transformation may make of one event; over it, the event fails",
    )  # fmt: skip
    dedup_window_hours: float = Field(
        24.0, ge=0, description="drop events whose messageId was seen this recently; 0 is off"
    )
    retention_days: float = Field(
        7.0, gt=0, description="keep ingested events and delivery jobs this long"
    )
    worker_metrics_host: str = "127.0.0.1"
    worker_metrics_port: int = Field(
        9101, ge=0, le=65535, description="the worker's /metrics for Prometheus; 0 is off"
    )
    worker_split: bool = Field(
        True,
        description="run the worker's processor, routers and warehouse loads in "
        "processes of their own (use the cores; a load never holds up a delivery)",
    )
    worker_grace_seconds: float = Field(
        10.0, ge=0, description="on stop, how long requests in flight get to finish"
    )
    worker_lease_seconds: float = Field(
        15.0, ge=2, le=600, description="a worker's partitions go to the others this long "
        "after it was last heard from (it died, or lost the database)",
    )  # fmt: skip
    node_name: str = Field(
        default_factory=socket.gethostname,
        description="this host's name among the hosts sharing the database",
    )
    log_level: str = "info"
    archive_bucket: str | None = Field(
        None, description="archive every accepted event to this S3 bucket; unset is off"
    )
    archive_prefix: str = Field("", description="folder of the archive in the bucket")
    archive_region: str = ""
    archive_endpoint: str | None = Field(
        None, description="URL of an S3-compatible store (MinIO); unset is Amazon S3"
    )
    archive_access_key_id: str = Field(
        "", description="empty: the host's AWS credential chain (environment, files, role)"
    )
    archive_secret_access_key: SecretStr = SecretStr("")
    archive_batch_events: int = Field(10_000, ge=1, description="events per archive upload")
    archive_batch_seconds: float = Field(
        30.0, gt=0, description="upload at least this often when events are waiting"
    )

    def archive(self) -> "ArchiveOptions | None":
        """The raw-event archive's options, or None when it is off; BadSettings when the
        bucket settings are invalid."""
        if not self.archive_bucket:
            return None
        from engine.destinations.s3 import S3
        from engine.pipeline.processing.archive import ArchiveOptions

        config = {
            "bucketName": self.archive_bucket, "prefix": self.archive_prefix,
            "region": self.archive_region, "endpoint": self.archive_endpoint,
            "accessKeyID": self.archive_access_key_id,
            "accessKey": self.archive_secret_access_key.get_secret_value(),
        }  # fmt: skip
        return ArchiveOptions(
            S3.parse_settings(config), self.archive_batch_events, self.archive_batch_seconds
        )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls, config_file()))


def config_file() -> Path:
    """The TOML file in use; an explicitly named file that does not exist is an error."""
    named = os.environ.get("SLUICE_CONFIG")
    if named is None:
        return DEFAULT_CONFIG
    path = Path(named)
    if not path.exists():
        raise FileNotFoundError(f"SLUICE_CONFIG names {path}, which does not exist")
    return path
