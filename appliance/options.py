"""From settings to what each role is told: the one place that turns `Settings` into the
gateway's, the worker's and the web UI's options, and that says where the database is."""

from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from appliance.embedded import EmbeddedPostgres
from appliance.settings import Settings
from engine.gateway.options import GatewayOptions

if TYPE_CHECKING:
    from engine.pipeline.worker import WorkerOptions
    from ui.app import WebOptions


def database_url(settings: Settings, role: str | None = None) -> str:
    """The configured database. A role (`gateway`, `worker`, `web`) needs one configured (`sluice
    run` passes its embedded one on); a command run by hand (`sluice config …`) falls back to
    the embedded database of a `sluice run` on this host. SystemExit, saying so, when none."""
    if settings.database_url:
        return settings.database_url
    if role is not None:
        raise SystemExit(
            f"SLUICE_DATABASE_URL is not set: the {role} needs a database "
            "(or use `sluice run`, which starts one)"
        )
    embedded = EmbeddedPostgres(settings.data_dir, settings.embedded_db_port)
    if embedded.initialised:
        return embedded.url
    raise SystemExit(
        "sluice: SLUICE_DATABASE_URL is not set and `sluice run` has no embedded database"
    )


def local(host: str) -> str:
    """An address to reach a server listening on `host` from this host."""
    return "127.0.0.1" if host in ("0.0.0.0", "::") else host


def gateway_url(settings: Settings) -> str:
    """Where SDKs send events: the public URL, else the gateway as reached from this host."""
    return settings.public_url or f"http://{local(settings.gateway_host)}:{settings.gateway_port}"


def gateway(settings: Settings) -> GatewayOptions:
    return GatewayOptions(
        database_url=database_url(settings, "gateway"),
        public_url=settings.public_url,
        max_message_bytes=settings.max_message_bytes,
        max_request_bytes=settings.max_request_bytes,
        commit_window=settings.commit_window_ms / 1000,
        processes=settings.gateway_workers,
        trusted_proxies=tuple(settings.trusted_proxies),
        spool_dir=spool_dir(settings),
        sdk_dir=sdk_dir(settings),
        spool_max_bytes=settings.spool_max_mb * 1024 * 1024,
    )


def spool_dir(settings: Settings) -> Path:
    """Where this host's gateway keeps events while the database is away."""
    return settings.data_dir / "spool"


def initial_password_file(settings: Settings) -> Path:
    """Where the first admin's one-time password is kept until it is changed."""
    return settings.data_dir / "initial-admin-password"


def sdk_dir(settings: Settings) -> Path:
    """The browser SDK files this host's gateway serves."""
    return settings.sdk_dir or settings.data_dir / "sdk"


def worker(settings: Settings, stage: str | None = None) -> "WorkerOptions":
    """The worker's options: both stages, or only `stage`. (Imported here: prometheus_client
    must not be loaded before the gateway configures it.)"""
    from engine.control import alerts
    from engine.pipeline.worker import STAGES, Periodic, WorkerOptions

    return WorkerOptions(
        database_url=database_url(settings, "worker"),
        dedup_window=timedelta(hours=settings.dedup_window_hours),
        retention=timedelta(days=settings.retention_days),
        grace=settings.worker_grace_seconds,
        stages=frozenset(s for s in STAGES if stage in (None, s)),
        archive=settings.archive(),
        node=settings.node_name,
        lease_seconds=settings.worker_lease_seconds,
        periodic=(Periodic("alert rules", alerts.EVERY, alerts.check),),
        data_dir=settings.data_dir,
        transform_max_events=settings.transform_max_events,
    )


def web(settings: Settings) -> "WebOptions":
    from ui.app import WebOptions

    return WebOptions(
        database_url=database_url(settings, "web UI"),
        gateway_url=gateway_url(settings),
        secure_cookies=settings.web_secure_cookies,
        test_private_hosts=settings.web_test_private_hosts,
        trusted_proxies=tuple(settings.trusted_proxies),
        transform_max_events=settings.transform_max_events,
        initial_password_file=initial_password_file(settings),
    )
