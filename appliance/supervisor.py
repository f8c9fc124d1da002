"""`sluice run`: every role on one host, plus an embedded PostgreSQL when none is configured.

Each role runs in its own child process, restarted if it dies, so a crash in one never takes
the others down; the embedded database stops last, after every role has drained.
"""

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from appliance import firstrun, options, system_users
from appliance.embedded import EmbeddedPostgres, EmbeddedPostgresError
from appliance.settings import Settings
from engine import children

log = logging.getLogger(__name__)

ROLES = ("gateway", "worker", "web")
_RESTART_DELAY = 2.0


@dataclass
class _Child:
    role: str
    proc: subprocess.Popen[bytes]
    started: float = field(default_factory=time.monotonic)


def run_all(settings: Settings) -> None:
    if os.geteuid() == 0:  # (transformation sandboxes then become this user)
        system_users.ensure(children.UNPRIVILEGED[0], "to run transformations as")
    servers: list[EmbeddedPostgres] = []
    url = settings.database_url
    local = None
    try:
        if not url:
            embedded = EmbeddedPostgres(settings.data_dir, settings.embedded_db_port)
            servers.append(embedded)
            url = embedded.start()
            log.info("embedded PostgreSQL listening on 127.0.0.1:%d", settings.embedded_db_port)
            local = _local_warehouse(settings, embedded, servers)
        kept_in = options.initial_password_file(settings)
        first = asyncio.run(firstrun.prepare(url, "sluice run", kept_in, local))
        env = {**os.environ, "SLUICE_DATABASE_URL": url}
        _supervise(env, _ready(settings), lambda: _announce(settings, first))
    finally:
        for server in reversed(servers):
            server.stop()


def _local_warehouse(
    settings: Settings, embedded: EmbeddedPostgres, servers: list[EmbeddedPostgres]
) -> firstrun.LocalWarehouse | None:
    """The local warehouse: on a server of its own (started, and added to `servers`), or where
    an earlier Sluice made it, in the embedded server's `warehouse` database. A server that
    does not start (its port taken, say) is said, and Sluice runs without it."""
    if embedded.has_local_warehouse():
        return firstrun.LocalWarehouse(embedded.warehouse_settings(), embedded.psql(), False)
    warehouse = EmbeddedPostgres.local_warehouse(settings.data_dir,
                                                 settings.embedded_warehouse_port)  # fmt: skip
    servers.append(warehouse)
    try:
        warehouse.start()
    except EmbeddedPostgresError as exc:
        log.warning("the local warehouse's PostgreSQL did not start, Sluice runs without it "
                    "(a free port: SLUICE_EMBEDDED_WAREHOUSE_PORT): %s", exc)  # fmt: skip
        return None
    log.info("local warehouse's PostgreSQL listening on 127.0.0.1:%d",
             settings.embedded_warehouse_port)  # fmt: skip
    return firstrun.LocalWarehouse(warehouse.warehouse_settings(), warehouse.psql(),
                                   warehouse.created)  # fmt: skip


def _ready(settings: Settings) -> Callable[[], bool]:
    """Whether the gateway and the web UI both answer their health checks."""

    checks = (
        f"{options.gateway_local_url(settings)}/health",
        f"{options.web_local_url(settings)}/health",
    )

    def ready() -> bool:
        # (this host's own servers, by address: a certificate names the host's public name)
        with contextlib.suppress(httpx.HTTPError):
            return all(
                httpx.get(url, timeout=0.5, verify=False).status_code == 200 for url in checks
            )
        return False

    return ready


def _announce(settings: Settings, first: firstrun.FirstRun) -> None:
    """Where everything listens and how to start; the one-time password (if one was made) on
    standard error, framed, after the roles' start-up lines, where it cannot be missed."""
    print(
        f"Sluice is running.\n  gateway: {options.gateway_url(settings)} (listening on "
        f"{settings.gateway_host}:{settings.gateway_tls_port or settings.gateway_port})\n"
        f"  web UI:  {options.web_local_url(settings)}\n"
        f"{firstrun.instructions(settings, first)}",
        flush=True,
    )
    if notice := firstrun.password_notice(first):
        print(notice, file=sys.stderr, flush=True)
    print("Stop with Ctrl-C.", flush=True)


def _supervise(
    env: dict[str, str], ready: Callable[[], bool], announce: Callable[[], None]
) -> None:
    """Keep every role running until SIGINT or SIGTERM; `announce` once the gateway and the UI
    are ready, so that what it prints works when the user pastes it."""
    stopping = False

    def request_stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    children = {role: _spawn(role, env) for role in ROLES}
    announced = False
    while not stopping:
        time.sleep(0.2)
        if not announced and ready():
            announce()
            announced = True
        for role, child in list(children.items()):
            code = child.proc.poll()
            if code is None or stopping:
                continue
            log.error("%s exited with status %s; restarting it", role, code)
            if time.monotonic() - child.started < _RESTART_DELAY:
                time.sleep(_RESTART_DELAY)
            children[role] = _spawn(role, env)
    for child in children.values():
        if child.proc.poll() is None:
            child.proc.send_signal(signal.SIGTERM)
    for child in children.values():
        try:
            child.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            log.error("%s did not stop within 30 s; killing it", child.role)
            child.proc.kill()
            child.proc.wait()


def _spawn(role: str, env: dict[str, str]) -> _Child:
    # Children ignore the terminal's Ctrl-C: the supervisor stops them, then the database.
    proc = subprocess.Popen(
        [sys.executable, "-m", "appliance", role], env=env, start_new_session=True
    )
    return _Child(role, proc)
