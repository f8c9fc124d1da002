"""From settings to what each role is told: the one place that turns `Settings` into the
gateway's, the worker's and the web UI's options, and that says where the database is."""

from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from appliance.embedded import EmbeddedPostgres
from appliance.settings import Settings
from engine.gateway.options import GatewayOptions
from engine.tls import BadCertificate, Served

if TYPE_CHECKING:
    from engine.gateway.redirect import Redirects
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
    return settings.public_url or gateway_local_url(settings)


def gateway_local_url(settings: Settings) -> str:
    """The gateway as reached from this host: over HTTPS when it serves it."""
    host = local(settings.gateway_host)
    if settings.gateway_tls_port:
        return f"https://{host}:{settings.gateway_tls_port}"
    return f"http://{host}:{settings.gateway_port}"


def web_local_url(settings: Settings) -> str:
    scheme = "https" if settings.tls_cert else "http"
    return f"{scheme}://{local(settings.web_host)}:{settings.web_port}"


def tls_files(settings: Settings) -> tuple[Path, Path] | None:
    """The HTTPS certificate and key, checked: they make a pair that can be served. None when
    HTTPS is off; SystemExit, saying what to change, when the settings do not fit."""
    if settings.tls_cert is None and settings.tls_key is None:
        if settings.gateway_tls_port:
            raise SystemExit("sluice: gateway_tls_port needs tls_cert and tls_key (HTTPS)")
        return None
    if settings.tls_cert is None or settings.tls_key is None:
        raise SystemExit("sluice: set both tls_cert and tls_key (HTTPS), or neither")
    try:
        Served(settings.tls_cert, settings.tls_key)
    except BadCertificate as exc:
        raise SystemExit(f"sluice: HTTPS: {exc}") from exc
    return settings.tls_cert, settings.tls_key


def gateway_ports(settings: Settings) -> list[tuple[str, int]]:
    """The gateway's listening ports: ("http", "https" or "redirect", port); SystemExit, saying
    what to change, when they do not fit together."""
    named = {"gateway_port": settings.gateway_port, "gateway_tls_port": settings.gateway_tls_port,
             "http_port": settings.http_port}  # fmt: skip
    if not settings.gateway_port and not settings.gateway_tls_port:
        raise SystemExit("sluice: the gateway has no port: set gateway_port or gateway_tls_port")
    if settings.http_port and not settings.gateway_tls_port:
        raise SystemExit("sluice: http_port redirects to HTTPS: it needs gateway_tls_port")
    used = [(name, port) for name, port in named.items() if port]
    for name, port in used:
        same = [other for other, taken in used if taken == port and other != name]
        if same:
            raise SystemExit(f"sluice: {name} and {same[0]} are both {port}: give each its own")
    kinds = {"gateway_port": "http", "gateway_tls_port": "https", "http_port": "redirect"}
    return [(kinds[name], port) for name, port in used]


def acme_webroot(settings: Settings) -> Path:
    """Where an ACME client (certbot --webroot) writes the challenges the http_port answers."""
    return settings.acme_dir or settings.data_dir / "acme"


def redirects(settings: Settings) -> "Redirects":
    from engine.gateway import redirect  # (the gateway's HTTP stack: not for every command)

    return redirect.Redirects(
        webroot=acme_webroot(settings),
        gateway_port=settings.gateway_tls_port or 443,
        web_port=settings.web_port if settings.tls_cert else None,
    )


def gateway(settings: Settings) -> GatewayOptions:
    tls = tls_files(settings)
    return GatewayOptions(
        database_url=database_url(settings, "gateway"),
        public_url=settings.public_url,
        max_message_bytes=settings.max_message_bytes,
        max_request_bytes=settings.max_request_bytes,
        commit_window=settings.commit_window_ms / 1000,
        max_pacing=settings.gateway_max_pacing_ms / 1000,
        processes=settings.gateway_workers,
        trusted_proxies=tuple(settings.trusted_proxies),
        spool_dir=spool_dir(settings),
        sdk_dir=sdk_dir(settings),
        spool_max_bytes=settings.spool_max_mb * 1024 * 1024,
        tls_cert=tls[0] if tls else None,
        tls_key=tls[1] if tls else None,
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

    tls = tls_files(settings)
    return WebOptions(
        database_url=database_url(settings, "web UI"),
        gateway_url=gateway_url(settings),
        # (served over HTTPS here, or a proxy's HTTPS in front)
        secure_cookies=settings.web_secure_cookies or tls is not None,
        tls_cert=tls[0] if tls else None,
        test_private_hosts=settings.web_test_private_hosts,
        trusted_proxies=tuple(settings.trusted_proxies),
        transform_max_events=settings.transform_max_events,
        initial_password_file=initial_password_file(settings),
    )
