"""The process roles: gateway, worker and web, each runnable on its own."""

import asyncio
import functools
import gc
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

import uvloop
from granian.constants import Interfaces, Loops, SSLProtocols
from granian.server import Server

from appliance import options, prefork
from appliance.settings import Settings
from engine import tls
from engine.children import die_with_parent

if TYPE_CHECKING:
    from litestar import Litestar

    from engine.gateway.app import Gateway
    from engine.gateway.options import GatewayOptions
    from engine.gateway.redirect import Redirects
    from engine.pipeline.worker import Worker

log = logging.getLogger(__name__)
Listeners = list[tuple[str, socket.socket]]  # ("http", "https" or "redirect", its socket)
_CHILD_GRACE = 30.0
_STAGE_NAMES = {"process": "processing", "load": "warehouse load"}
_BACKLOG = 2048
LOAD_NICE = 10  # the warehouse load stage's niceness: below the delivering stages'


def serve_gateway(settings: Settings) -> None:
    gateway_options = options.gateway(settings)  # fail here, once, rather than in every process
    if settings.gateway_workers > 1:
        # The processes share their metrics through files that /metrics adds up.
        metrics_dir = settings.data_dir / "run" / "gateway-metrics"
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    listeners = []
    for kind, port in options.gateway_ports(settings):
        try:
            sock = prefork.listening_socket(settings.gateway_host, port, _BACKLOG)
        except OSError as exc:
            raise SystemExit(
                f"sluice: the gateway cannot listen on {settings.gateway_host}:{port}: "
                f"{exc.strerror}"
            ) from exc
        listeners.append((kind, sock))
    redirects = options.redirects(settings)
    run = functools.partial(_gateway_process, gateway_options, listeners, redirects)
    sys.exit(prefork.serve("gateway", settings.gateway_workers, run))


def collect_cycles_rarely() -> None:
    """Call once a process has started up. Reference counting frees almost everything the
    gateway and the worker's stages allocate, yet Python's collector looks for cycles every 700
    net allocations and goes through every object now and then: each request and delivery
    allocates a few short-lived containers, and a router holds thousands of jobs. Measured in
    bench.e2e, the delivery stage spent a tenth of its time collecting, in full collections of
    ~140 ms during which no answer was taken in (the processing stage ~5%). Cycles are now
    looked for after 50,000 net allocations, and the objects that exist by then (the modules',
    and the gateway's own) are left out."""
    gc.freeze()
    gc.set_threshold(50_000, 20, 50)


def _gateway_process(
    gateway_options: "GatewayOptions", listeners: "Listeners", redirects: "Redirects"
) -> None:
    # Imported here, in the process, after serve_gateway has set PROMETHEUS_MULTIPROC_DIR:
    # prometheus_client picks its (multi-process or not) storage when first imported.
    from engine.gateway.app import Gateway

    gateway = Gateway(gateway_options)
    collect_cycles_rarely()
    uvloop.run(_run_gateway(gateway, listeners, redirects, gateway_options.max_request_bytes))


async def _run_gateway(
    gateway: "Gateway", listeners: "Listeners", redirects: "Redirects", max_body: int
) -> None:
    from engine.gateway import http

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await gateway.startup()
    served = []
    for kind, sock in listeners:
        handler = redirects.handle if kind == "redirect" else gateway.handle
        tls = gateway.tls.context if kind == "https" and gateway.tls is not None else None
        serving = http.serve(
            handler, sock, max_body=max_body, backlog=_BACKLOG, until=stop, tls=tls
        )
        served.append(asyncio.create_task(serving, name=f"serve-{kind}"))
    try:
        # Each listener serves until told to stop; one that fails stops the others (they
        # finish their requests) before the process exits and is replaced.
        done, _ = await asyncio.wait(served, return_when=asyncio.FIRST_EXCEPTION)
    finally:
        stop.set()
        await asyncio.gather(*served, return_exceptions=True)
        await gateway.shutdown()
    for task in done:
        task.result()


def web_app() -> "Litestar":
    """The factory granian calls in the web process."""
    from ui.app import create_app

    return create_app(options.web(Settings()))


def serve_web(settings: Settings) -> None:
    options.web(settings)  # fail here, with the reason, rather than inside granian
    tls_files = options.tls_files(settings)
    https: dict[str, Any] = {}
    if tls_files is not None:
        https = {"ssl_cert": tls_files[0], "ssl_key": tls_files[1],
                 "ssl_protocol_min": SSLProtocols.tls12}  # fmt: skip
    server = Server(
        "appliance.roles:web_app",
        factory=True,
        address=settings.web_host,
        port=settings.web_port,
        interface=Interfaces.ASGI,
        workers=1,
        loop=Loops.uvloop,
        log_level=settings.log_level.lower(),  # type: ignore[arg-type]
        log_access=False,
        websockets=False,
        **https,
    )
    if tls_files is not None:
        # Granian resolves the files' paths once: asked again before each new process, a
        # renewal through a symbolic link (certbot's live/ directory) is followed too.
        server.on_reload(functools.partial(
            server.build_ssl_context, *tls_files, None, SSLProtocols.tls12, None, [], False
        ))  # fmt: skip
        signal.signal(signal.SIGHUP, signal.SIG_IGN)  # (until granian's handler is in place)
        served = tls.Served(*tls_files)
        threading.Thread(target=_reload_when_renewed, args=(served,), daemon=True).start()
    server.serve()


def _reload_when_renewed(served: "tls.Served") -> None:
    """Granian's web process reads the certificate when it starts: on a renewal a new one is
    started (SIGHUP), which takes the new connections, before the old one finishes its own."""
    while True:
        time.sleep(tls.CHECK_EVERY)
        try:
            if served.refresh():
                log.info("HTTPS certificate renewed, the web UI's process is replaced: %s",
                         served.certificate.said())  # fmt: skip
                os.kill(os.getpid(), signal.SIGHUP)
        except tls.BadCertificate as exc:
            log.error("the web UI keeps its HTTPS certificate: %s", exc)
        except Exception:  # (the thread must outlive any surprise: renewals depend on it)
            log.exception("looking for a renewed HTTPS certificate failed")


def serve_worker(settings: Settings, stage: str | None = None) -> None:
    """The worker; by default each of its stages runs in a process of its own (this one
    delivers; processing and warehouse loads are its children)."""
    options.database_url(settings, "worker")  # fail here, before starting the other stages
    if stage == "load":
        _lower_priority()
    children: list[subprocess.Popen[bytes]] = []
    if stage is None and settings.worker_split:
        # The processes count into files that this one's /metrics adds up; set before
        # prometheus_client is first imported, as it picks its storage then.
        metrics_dir = settings.data_dir / "run" / f"worker-metrics-{os.getpid()}"
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
        children = [_spawn_stage("process"), _spawn_stage("load")]
        stage = "deliver"
    try:
        _run_worker(settings, stage, children)
    finally:
        for child in children:
            if child.poll() is None:
                child.terminate()
        for child in children:
            child.wait()
        if children:
            shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)


def _lower_priority() -> None:
    """Loads are batch work: on a busy machine, deliveries get the cores first."""
    try:
        os.setpriority(os.PRIO_PROCESS, 0, LOAD_NICE)
    except OSError as exc:  # (a service's system call filter may forbid it)
        log.info("the warehouse load stage keeps its CPU priority: %s", exc)


def _spawn_stage(stage: str) -> subprocess.Popen[bytes]:
    # A `kill -9` of the worker must not leave its other stage running on its own. This
    # process serves /metrics for both (preexec_fn is safe: no threads run yet).
    return subprocess.Popen(
        [sys.executable, "-m", "appliance", "worker", "--stage", stage],
        env={**os.environ, "SLUICE_WORKER_METRICS_PORT": "0"},
        preexec_fn=functools.partial(die_with_parent, signal.SIGTERM),
    )


def _run_worker(
    settings: Settings, stage: str | None, children: list[subprocess.Popen[bytes]]
) -> None:
    # Imported here: prometheus_client must not be loaded before the gateway configures it.
    from prometheus_client import CollectorRegistry, start_http_server
    from prometheus_client.multiprocess import MultiProcessCollector

    from engine.pipeline.metrics import WorkerMetrics
    from engine.pipeline.worker import Worker

    told = options.worker(settings, stage)
    metrics = WorkerMetrics()
    if settings.worker_metrics_port:
        registry = metrics.registry
        if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
            registry = CollectorRegistry()
            MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        try:
            start_http_server(settings.worker_metrics_port, settings.worker_metrics_host, registry)
        except OSError as exc:  # metrics are worth a warning, never a stopped pipeline
            log.error(
                "worker metrics not served on %s:%d: %s",
                settings.worker_metrics_host, settings.worker_metrics_port, exc,
            )  # fmt: skip
    worker = Worker(told, metrics)
    collect_cycles_rarely()
    if not uvloop.run(_until_stopped(worker, children)) or worker.failed:
        raise SystemExit(1)  # systemd or `sluice run` starts the worker again


async def _until_stopped(worker: "Worker", children: list[subprocess.Popen[bytes]]) -> bool:
    """Run until SIGTERM/SIGINT; False when another stage's process ended on its own."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    healthy = True

    async def watch(child: subprocess.Popen[bytes]) -> None:
        nonlocal healthy
        code = await asyncio.to_thread(child.wait)
        if not stop.is_set():
            stage = _STAGE_NAMES.get(str(child.args[-1]), "other")  # type: ignore[index]
            log.critical("the worker's %s stage exited (status %s); stopping", stage, code)
            healthy = False
            stop.set()

    watchers = [asyncio.create_task(watch(child)) for child in children]
    try:
        await worker.run(stop)
    finally:
        # Before this loop closes: it waits for the threads that wait for the children.
        for child in children:
            if child.poll() is None:
                child.terminate()  # each finishes what it has in hand and exits
        if watchers:
            _, late = await asyncio.wait(watchers, timeout=_CHILD_GRACE)
            if late:
                log.error("a stage of the worker did not stop; killing it")
                for child in children:
                    if child.poll() is None:
                        child.kill()
                await asyncio.wait(late)
    return healthy
