"""Real processes the tests drive: PostgreSQL servers, Sluice gateways and workers."""

import contextlib
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def server_dir() -> Iterator[Path]:
    """A fresh directory under /tmp that the PostgreSQL server user can enter.

    When the tests run as root, the embedded server runs as the `sluice` user, which cannot
    enter pytest's private temporary tree; only this one directory is opened to it.
    """
    path = Path(tempfile.mkdtemp(prefix="sluice-test-"))
    path.chmod(0o711)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@dataclass
class SluiceProcess:
    """A Sluice role running as a child process, its output going to `log`."""

    proc: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@dataclass
class ServingProcess(SluiceProcess):
    """A role that answers HTTP at `url` (its /health included)."""

    url: str


class GatewayProcess(ServingProcess):
    def metric(self, name: str) -> float:
        """An unlabelled metric's value, as /metrics says now."""
        lines = httpx.get(f"{self.url}/metrics").text.splitlines()
        return float(next(line for line in lines if line.startswith(f"{name} ")).split()[-1])


class WebProcess(ServingProcess):
    pass


def start_gateway(
    database_url: str,
    workdir: Path,
    settings: Mapping[str, str] | None = None,
    *,
    healthy: bool = True,
    trusting: Path | None = None,
) -> GatewayProcess:
    """A `sluice gateway` process; waits until /health says 200 (or, unless `healthy`, answers
    at all). With `trusting` (the CA file of the certificate its settings name) it serves HTTPS
    only."""
    port = free_port()
    ports = {"gateway_port": str(port)}
    if trusting:
        ports = {"gateway_port": "0", "gateway_tls_port": str(port)}
    env = _role_env(
        database_url, workdir, settings, gateway_host="127.0.0.1", gateway_workers="1", **ports
    )
    proc, log = _spawn("gateway", port, env, workdir)
    gateway = GatewayProcess(proc, log, f"{'https' if trusting else 'http'}://127.0.0.1:{port}")
    _wait_answering(gateway, healthy, _trust(trusting))
    return gateway


def _spawn(
    role: str, port: int, env: dict[str, str], workdir: Path
) -> tuple[subprocess.Popen[bytes], Path]:
    """`sluice <role>`, its output going to <role>-<port>.log in `workdir`."""
    log = workdir / f"{role}-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "appliance", role], env=env, stdout=out, stderr=out
        )
    return proc, log


def _role_env(
    database_url: str, workdir: Path, settings: Mapping[str, str] | None, **defaults: str
) -> dict[str, str]:
    """The environment of a role process: `defaults`, then the test's own `settings`."""
    return {
        **os.environ,
        "SLUICE_DATABASE_URL": database_url,
        "SLUICE_DATA_DIR": str(workdir),
        "SLUICE_CONFIG": str(_empty_config(workdir)),
        **{f"SLUICE_{k.upper()}": v for k, v in {**defaults, **(settings or {})}.items()},
    }


def _empty_config(workdir: Path) -> Path:
    path = workdir / "sluice.toml"
    path.touch()
    return path


def start_web(
    database_url: str,
    workdir: Path,
    settings: Mapping[str, str] | None = None,
    *,
    trusting: Path | None = None,
) -> WebProcess:
    """A `sluice web` process (the control plane); waits until /health says 200. With
    `trusting` (the CA file of its certificate) it is reached over HTTPS."""
    port = free_port()
    env = _role_env(database_url, workdir, settings, web_host="127.0.0.1", web_port=str(port))
    proc, log = _spawn("web", port, env, workdir)
    scheme = "https" if trusting else "http"
    web = WebProcess(proc, log, f"{scheme}://127.0.0.1:{port}")
    _wait_answering(web, True, _trust(trusting))
    return web


def _trust(ca: Path | None) -> ssl.SSLContext | bool:
    return ssl.create_default_context(cafile=str(ca)) if ca else True


def _wait_answering(
    server: ServingProcess, healthy: bool, verify: ssl.SSLContext | bool = True
) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"{server.url} exited:\n{server.output()}")
        with contextlib.suppress(httpx.HTTPError):
            answer = httpx.get(f"{server.url}/health", timeout=2, verify=verify)
            if answer.status_code == 200 or not healthy:
                return
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"{server.url} did not become ready:\n{server.output()}")


@contextlib.contextmanager
def running_gateway(database_url: str, workdir: Path, **settings: str) -> Iterator[GatewayProcess]:
    gateway = start_gateway(database_url, workdir, settings)
    try:
        yield gateway
    finally:
        gateway.stop()


@dataclass
class WorkerProcess(SluiceProcess):
    metrics_url: str

    def kill(self) -> None:
        """`kill -9` of every worker process (both stages): no goodbye, no flush."""
        with contextlib.suppress(ProcessLookupError):  # all gone already
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()


def start_worker(
    database_url: str, workdir: Path, settings: Mapping[str, str] | None = None
) -> WorkerProcess:
    """A `sluice worker` process (which needs no readiness wait: it reads the log on start)."""
    port = free_port()
    # (Short leases and grace: a worker killed in a test hands its partitions over in 3 s, and
    # the one taking them over waits 3 s, not 15 and 10.)
    env = _role_env(database_url, workdir, settings, worker_metrics_port=str(port),
                    worker_lease_seconds="3", worker_grace_seconds="3")  # fmt: skip
    log = workdir / f"worker-{port}.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "appliance", "worker"],
            env=env, stdout=out, stderr=out, start_new_session=True,
        )  # fmt: skip
    return WorkerProcess(proc, log, f"http://127.0.0.1:{port}/metrics")


@contextlib.contextmanager
def running_worker(database_url: str, workdir: Path, **settings: str) -> Iterator[WorkerProcess]:
    worker = start_worker(database_url, workdir, settings)
    try:
        yield worker
    finally:
        worker.stop()
