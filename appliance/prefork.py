"""Processes sharing one listening socket: forked, watched, restarted, stopped together.

The socket is bound once, here, and every process accepts from it: a connection waiting in its
queue is taken by whichever process is free, and stays there, not lost, while a process that
died is replaced. SIGTERM or SIGINT stops them all, each finishing the requests it has.
"""

import contextlib
import logging
import os
import signal
import socket
import time
from collections.abc import Callable

from engine.children import die_with_parent

log = logging.getLogger(__name__)

_QUICK_EXIT = 5.0  # a process that ends sooner than this after its start did not get going
_QUICK_EXITS = 5  # in a row: it will not get going (a bad setting, say); stop trying


def listening_socket(host: str, port: int, backlog: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(backlog)
    sock.setblocking(False)
    return sock


def serve(name: str, processes: int, run: Callable[[], None]) -> int:
    """Run `run` in `processes` forked processes until told to stop; the exit status to use."""
    children: dict[int, float] = {}  # pid: when it started
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for _ in range(processes):
        if not stopping:
            _fork(run, children)
    quick_exits = 0
    status = 0
    while children:
        pid, wait_status = os.wait()  # (a signal's handler runs, then waiting goes on)
        started = children.pop(pid, None)
        if started is None:
            continue
        if "PROMETHEUS_MULTIPROC_DIR" in os.environ:  # its gauges no longer count
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
        code = os.waitstatus_to_exitcode(wait_status)
        if stopping:  # (one told to stop before it could say how is stopped all the same)
            status = status or (0 if code in (0, -signal.SIGTERM) else 1)
            continue
        log.error("a %s process (pid %d) ended with status %d; starting another", name, pid, code)
        quick_exits = quick_exits + 1 if time.monotonic() - started < _QUICK_EXIT else 0
        if quick_exits >= _QUICK_EXITS:
            log.error("%s processes keep ending at start; stopping", name)
            stop(signal.SIGTERM, None)
            status = 1
            continue
        time.sleep(min(quick_exits, 1))
        if not stopping:
            _fork(run, children)
    return status


def _fork(run: Callable[[], None], children: dict[int, float]) -> None:
    """A process running `run`, recorded in `children`. Signals wait meanwhile: one arriving
    between the fork and the record would miss it, or run the parent's handler in the child."""
    parent = os.getpid()
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    pid = os.fork()
    if pid:
        children[pid] = time.monotonic()
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        return
    code = 1
    try:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        die_with_parent(signal.SIGTERM)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        if os.getppid() == parent:  # (else it died already, before it could be asked)
            run()
            code = 0
    except BaseException:
        log.exception("the process failed")
    finally:
        logging.shutdown()
        os._exit(code)
