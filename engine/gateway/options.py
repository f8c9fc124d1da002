"""What the gateway is told at start: database, limits, group-commit tuning."""

from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path


@dataclass(frozen=True)
class GatewayOptions:
    database_url: str
    public_url: str | None = None
    max_message_bytes: int = 32 * 1024
    max_request_bytes: int = 4 * 1024 * 1024
    commit_window: float = 0.002
    commit_max_rows: int = 2000
    # Commits one process has in flight: with two, a process waited on PostgreSQL a third of
    # the time under load (its WAL flushes); four gave ~15% more single-event requests/s.
    commit_inflight: int = 4
    # (the commits', and one for the rest: notifications, key look-ups, the spool's drainer,
    # rejections, heartbeats, health checks)
    pool_size: int = 5
    # gateway processes sharing the port: each enforces its share of a source's rate limit
    processes: int = 1
    # proxies whose X-Forwarded-For is believed; from anyone else it could be made up
    trusted_proxies: tuple[IPv4Network | IPv6Network, ...] = ()
    # where accepted events wait while the database is away (engine/gateway/spool.py); a bound
    # of 0 bytes: answer 503 instead
    spool_dir: Path | None = None
    spool_max_bytes: int = 0
    # browser SDK files served under /sdk/ (engine/gateway/sdk.py)
    sdk_dir: Path | None = None
    # the longest pause an answer gets while the pipeline on this host is starved of CPU
    # (engine/gateway/pacing.py); 0: never paced
    max_pacing: float = 0.2
    # HTTPS (engine/tls.py): the certificate chain and key, put in service again when they change
    tls_cert: Path | None = None
    tls_key: Path | None = None
