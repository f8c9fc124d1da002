"""End to end beside the peer (issue 25): wrk → gateway → pipeline → a local sink, one run.

Measures one system, Sluice or the peer (rudder-server v0.1.3 with its processor, router and
Node transformer), under the shared kit's load: `wrk -t2 -cN` with `batch10_e2e.lua` (10-event
batches from 100 users, each connection pausing --delay-ms between requests) against
127.0.0.1:8080/v1/batch for --duration seconds, delivering to the kit's `sink.js` on 8181.
Each run gets a fresh database on the PostgreSQL server of --database-url (dropped afterwards).

    python -m bench.e2e {sluice|peer} N [--duration 30] [--delay-ms 20] [--peer-dir DIR]
                        [--database-url URL] [--env NAME=VALUE ...] [--out FILE]

It reports accepted events/s (wrk's 2xx requests x 10 / s), delivered events/s (the sink's
count, over the run and over its second half), the backlog (accepted in the database -
delivered) half-way and at the end and its growth per second in between, how long the backlog
took to drain and whether every accepted event arrived exactly once, how steady delivery was
(the events delivered in each second of the load: their 10th, 50th and 90th percentiles, and
the rate over the first five seconds), and the CPU cores each process group used while wrk
ran (from /proc), the machine's busy cores and the load that was not ours. A rate is
*sustained* when delivered ≈ accepted and the backlog does not grow over the second half of the
run (here: delivered within 5 % of accepted over the second half, and the backlog growing by
less than 5 % of the accepted rate). --out appends the figures as one JSON line.

The peer's set-up (its build, transformer, config and the GA destination sent to the sink) is
described in /work/shared/perf/e2e/README.md; --peer-dir is where it was built.
"""

import argparse
import contextlib
import itertools
import json
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

PER_REQUEST = 10  # events in each of batch10_e2e.lua's requests
WRITE_KEY = "bench-write-key"  # the one the kit's wrk scripts send
GATEWAY = "http://127.0.0.1:8080"
SINK_PORT = 8181
PORTS = (8080, SINK_PORT, 9090, 5001)  # gateway, sink, the peer's transformer and config stub
TICK = os.sysconf("SC_CLK_TCK")

Groups = dict[str, list[int]]


@dataclass
class System:
    groups: Callable[[], Groups]
    accepted: Callable[[], int]  # events accepted so far, as the database holds them


@dataclass
class Run:
    system: str
    concurrency: int
    seconds: float
    accepted_eps: float
    delivered_eps: float
    delivered_second_half_eps: float
    backlog_mid: int
    backlog_end: int
    backlog_growth_per_s: float
    drain_seconds: float
    accepted_rows: int
    delivered: int
    exactly_once: bool
    cpu_cores: dict[str, float]
    machine_busy_cores: float
    other_cores: float
    load_average: float
    delivered_each_second: list[int]  # what the sink got in each whole second of the load

    @property
    def sustained(self) -> bool:
        # "≈": within 5 %, the backlog growing by less than 5 % of the accepted rate
        keeps_up = self.delivered_second_half_eps >= 0.95 * self.accepted_eps
        return keeps_up and self.backlog_growth_per_s <= 0.05 * self.accepted_eps

    def summary(self) -> str:
        cores = ", ".join(f"{name} {value:.2f}" for name, value in self.cpu_cores.items())
        return "\n".join([
            f"{self.system} c={self.concurrency}, {self.seconds:.1f} s: "
            f"{'sustained' if self.sustained else 'NOT sustained'}",
            f"  accepted {self.accepted_eps:,.0f}/s, delivered {self.delivered_eps:,.0f}/s "
            f"({self.delivered_second_half_eps:,.0f}/s over the second half)",
            f"  delivered each second: {_spread(self.delivered_each_second)}",
            f"  backlog {self.backlog_mid:,} half-way, {self.backlog_end:,} at the end "
            f"({self.backlog_growth_per_s:+,.0f}/s); drained in {self.drain_seconds:.1f} s",
            f"  {self.delivered:,} delivered of {self.accepted_rows:,} accepted: "
            f"{'exactly once' if self.exactly_once else 'NOT exactly once'}",
            f"  CPU cores: {cores}",
            f"  machine {self.machine_busy_cores:.2f} cores busy, not ours {self.other_cores:.2f}; "
            f"load average {self.load_average:.2f}",
        ])  # fmt: skip


class Processes:
    """What a run starts, each in its own session so that stopping it stops its children."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.started: list[subprocess.Popen[bytes]] = []

    def start(
        self, name: str, command: list[str], env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> subprocess.Popen[bytes]:  # fmt: skip
        with (self.logs / f"{name}.log").open("wb") as log:
            proc = subprocess.Popen(
                command, env={**os.environ, **(env or {})}, cwd=cwd, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        self.started.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes]) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=25)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def stop_all(self) -> None:
        for proc in reversed(self.started):
            self.stop(proc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("system", choices=["sluice", "peer"])
    parser.add_argument("concurrency", type=int, help="wrk connections")
    parser.add_argument("--duration", type=int, default=30, help="seconds of load")
    parser.add_argument(
        "--delay-ms", type=int, default=20, help="pause between a connection's requests"
    )
    parser.add_argument("--drain", type=float, default=60.0, help="seconds to wait for the backlog")
    parser.add_argument(
        "--kit", type=Path, default=Path("/work/shared/perf/e2e"), help="wrk scripts, sink"
    )
    parser.add_argument(
        "--peer-dir", type=Path, default=Path("/work/peer"), help="the peer's build"
    )
    parser.add_argument(
        "--database-url", default="postgresql://rudder:rudder@127.0.0.1:5432/postgres",
        help="any database on the server; each run creates its own there and drops it",
    )  # fmt: skip
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="extra environment for the system's processes")  # fmt: skip
    parser.add_argument("--out", type=Path, help="append the run's figures as a JSON line")
    args = parser.parse_args()
    busy = [port for port in PORTS if not _port_free(port)]
    if busy:
        sys.exit(f"port(s) {busy} in use: is another measurement running?")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # so that a kill cleans up too
    env = dict(pair.split("=", 1) for pair in args.env)
    logs = Path(tempfile.mkdtemp(prefix=f"e2e-{args.system}-"))
    processes = Processes(logs)
    try:
        run = _measure(args, processes, env, logs)
    finally:
        processes.stop_all()
        _drop(args.database_url, _database_name(args.system))
    print(run.summary())
    print(f"  logs in {logs}")
    if args.out:
        with args.out.open("a") as out:
            out.write(json.dumps({**asdict(run), "sustained": run.sustained}) + "\n")


def _measure(
    args: argparse.Namespace, processes: Processes, env: dict[str, str], logs: Path
) -> Run:
    sink = processes.start("sink", ["node", str(args.kit / "sink.js"), str(SINK_PORT)])
    _require_http(f"http://127.0.0.1:{SINK_PORT}/__count", sink, 10)
    url = _database_url(args.database_url, _database_name(args.system))
    if args.system == "sluice":
        system = _start_sluice(processes, url, env, logs)
    else:
        system = _start_peer(processes, url, env, args.kit, args.peer_dir)
    return Load(args, system, {**system.groups(), "sink": [sink.pid]}, url).measure()


@dataclass
class Point:
    """A moment of the run: events accepted so far (in the database) and delivered so far."""

    at: float
    accepted: int
    delivered: int

    @property
    def backlog(self) -> int:
        return self.accepted - self.delivered


class Load:
    """One wrk window, with the sink, the database and /proc read around it and half-way."""

    def __init__(self, args: argparse.Namespace, system: System, groups: Groups, url: str) -> None:
        self.args, self.system, self.groups, self.url = args, system, groups, url
        self.base = _sink_count()

    def measure(self) -> Run:
        ticks, postgres, machine = _ticks(self.groups), _postgres_ticks(self.url), _machine()
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.monotonic()
        output, mid, each_second = self._wrk()
        end = self._point()
        seconds = end.at - start
        cpu = _cpu_seconds(ticks, _ticks(self.groups))
        cpu["postgresql"] = (_postgres_ticks(self.url) - postgres) / TICK
        cpu["wrk"] = _rusage_delta(children)  # the only child of ours that ended meanwhile
        busy = (_machine() - machine) / TICK / seconds
        load = os.getloadavg()[0]
        final = self._drain()
        cores = {name: round(value / seconds, 3) for name, value in cpu.items()}
        half = end.at - mid.at
        return Run(
            system=self.args.system, concurrency=self.args.concurrency, seconds=round(seconds, 2),
            accepted_eps=round(_accepted_requests(output) * PER_REQUEST / seconds),
            delivered_eps=round(end.delivered / seconds),
            delivered_second_half_eps=round((end.delivered - mid.delivered) / half),
            backlog_mid=mid.backlog, backlog_end=end.backlog,
            backlog_growth_per_s=round((end.backlog - mid.backlog) / half),
            drain_seconds=round(final.at - end.at, 1),
            accepted_rows=final.accepted, delivered=final.delivered,
            exactly_once=final.delivered == final.accepted, cpu_cores=cores,
            machine_busy_cores=round(busy, 3), other_cores=round(busy - sum(cores.values()), 3),
            load_average=load, delivered_each_second=each_second,
        )  # fmt: skip

    def _wrk(self) -> tuple[str, Point, list[int]]:
        """wrk's output, the point half-way through its run, and what the sink got in each
        whole second of it."""
        args = self.args
        wrk = subprocess.Popen(
            ["wrk", "-t2", f"-c{args.concurrency}", f"-d{args.duration}s",
             "-s", str(args.kit / "batch10_e2e.lua"), f"{GATEWAY}/v1/batch"],
            env={**os.environ, "RUNID": f"{os.getpid()}-{time.time_ns()}",
                 "DELAY_MS": str(args.delay_ms)},
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        try:
            start, counts, mid = time.monotonic(), [_sink_count()], None
            for second in range(1, int(args.duration) + 1):
                with contextlib.suppress(subprocess.TimeoutExpired):
                    wrk.wait(max(0.0, start + second - time.monotonic()))
                if wrk.poll() is not None:  # (ended early: a part of a second is no figure)
                    break
                counts.append(_sink_count())
                if mid is None and second >= args.duration / 2:
                    mid = self._point()
            each = [later - earlier for earlier, later in itertools.pairwise(counts)]
            return wrk.communicate()[0], mid or self._point(), each
        finally:
            if wrk.poll() is None:  # interrupted
                wrk.kill()
                wrk.wait()

    def _point(self) -> Point:
        return Point(time.monotonic(), self.system.accepted(), _sink_count() - self.base)

    def _drain(self) -> Point:
        """Wait for what the database accepted to reach the sink; then a moment longer, for
        any duplicate to show."""
        deadline = time.monotonic() + self.args.drain
        while (point := self._point()).backlog > 0 and point.at < deadline:
            time.sleep(1.0)
        time.sleep(1.0)
        return Point(point.at, self.system.accepted(), _sink_count() - self.base)


def _start_sluice(processes: Processes, url: str, extra: dict[str, str], logs: Path) -> System:
    _recreate(url)
    env = {
        "SLUICE_DATABASE_URL": url,
        "SLUICE_DATA_DIR": str(logs / "data"),
        "SLUICE_LOG_LEVEL": "warning",
        "SLUICE_GATEWAY_HOST": "127.0.0.1",
        "SLUICE_GATEWAY_PORT": "8080",
        "SLUICE_WORKER_METRICS_PORT": "0",
        **extra,
    }
    spec = logs / "workspace.json"
    spec.write_text(json.dumps({
        "sources": [{"name": "bench", "write_key": WRITE_KEY}],
        "destinations": [{"name": "sink", "type": "webhook",
                          "config": {"webhookUrl": f"http://127.0.0.1:{SINK_PORT}/"}}],
        "connections": [{"source": "bench", "destination": "sink"}],
    }))  # fmt: skip
    sluice = [sys.executable, "-m", "appliance"]
    for command in (["setup"], ["config", "apply", str(spec)]):
        subprocess.run([*sluice, *command], env={**os.environ, **env}, check=True,
                       capture_output=True)  # fmt: skip
    gateway = processes.start("gateway", [*sluice, "gateway"], env)
    _require_http(f"{GATEWAY}/health", gateway, 30)
    worker = processes.start("worker", [*sluice, "worker"], env)
    deadline = time.monotonic() + 30
    while len(_children(worker.pid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(4.0)  # leases taken, routers open

    def groups() -> Groups:
        # The worker delivers in its own process and runs its other stages as children.
        found = {"gateway": _descendants(gateway.pid), "worker_deliver": [worker.pid]}
        for child in _children(worker.pid):
            stage = re.search(rb"--stage\0(\w+)", Path(f"/proc/{child}/cmdline").read_bytes())
            found[f"worker_{stage[1].decode() if stage else child}"] = _descendants(child)
        return found

    def accepted() -> int:
        return _count(url, sql.SQL("SELECT count(*) FROM ingested"))

    return System(groups, accepted)


def _start_peer(
    processes: Processes, url: str, extra: dict[str, str], kit: Path, peer: Path
) -> System:
    stub = processes.start("config-stub", [sys.executable, str(kit / "config_stub_ga.py"),
                                           "5001", WRITE_KEY])  # fmt: skip
    transformer = processes.start(
        "transformer", ["node", "destTransformer.js"], cwd=peer / "rudder-transformer"
    )
    _require_http("http://127.0.0.1:5001/workspace-config", stub, 10)
    server = _start_peer_server(processes, url, extra, peer)

    def groups() -> Groups:
        return {"peer_server": [server.pid], "transformer": _descendants(transformer.pid),
                "config_stub": [stub.pid]}  # fmt: skip

    def accepted() -> int:
        with psycopg.connect(url) as conn:
            tables = [row[0] for row in conn.execute(
                "SELECT tablename FROM pg_tables WHERE tablename ~ '^gw_jobs_[0-9]+$'"
            )]  # fmt: skip
        if not tables:
            return 0
        counts = [sql.SQL("(SELECT count(*) FROM {})").format(sql.Identifier(t)) for t in tables]
        query = sql.SQL("SELECT {}").format(sql.SQL(" + ").join(counts))
        return PER_REQUEST * _count(url, query)  # a gateway job is one request

    return System(groups, accepted)


def _start_peer_server(
    processes: Processes, url: str, extra: dict[str, str], peer: Path
) -> subprocess.Popen[bytes]:
    """rudder-server, started again while it panics at start (v0.1.3's source debugger races)."""
    db = conninfo_to_dict(url)
    env = {
        "CONFIG_PATH": str(peer / "e2e/peer_config.toml"),
        "JOBS_DB_HOST": str(db.get("host", "127.0.0.1")), "JOBS_DB_PORT": str(db.get("port", 5432)),
        "JOBS_DB_USER": str(db.get("user", "")), "JOBS_DB_PASSWORD": str(db.get("password", "")),
        "JOBS_DB_DB_NAME": str(db["dbname"]),
        "CONFIG_BACKEND_URL": "http://127.0.0.1:5001", "CONFIG_BACKEND_TOKEN": "x",
        "RUDDER_TMPDIR": str(peer / "peer-tmp"),  # (the config's recovery file is in there too)
        "DEST_TRANSFORM_URL": "http://127.0.0.1:9090",
        "TEST_SINK_URL": f"http://127.0.0.1:{SINK_PORT}/",
        **extra,
    }  # fmt: skip
    (peer / "peer-tmp").mkdir(exist_ok=True)
    for attempt in range(6):
        _recreate(url)
        (peer / "peer-tmp/recovery_data.json").unlink(missing_ok=True)
        server = processes.start(f"peer-server-{attempt}", [str(peer / "rudder-server-bin")], env)
        if _wait_http(f"{GATEWAY}/health", server, 20):
            time.sleep(4.0)
            if server.poll() is None:
                return server
        processes.stop(server)
        print(f"the peer did not start (attempt {attempt + 1}); again", file=sys.stderr)
    sys.exit("the peer did not start")


def _database_name(system: str) -> str:
    return f"bench_e2e_{system}"  # not run.py's names: its runs may share the server


def _database_url(server: str, name: str) -> str:
    return make_conninfo(server, dbname=name)


def _recreate(url: str) -> None:
    name = conninfo_to_dict(url)["dbname"]
    _drop(url, str(name))
    with psycopg.connect(make_conninfo(url, dbname="postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(str(name))))


def _drop(url: str, name: str) -> None:
    with psycopg.connect(make_conninfo(url, dbname="postgres"), autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def _count(url: str, query: sql.SQL | sql.Composed) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(query).fetchone()
    return int(row[0]) if row else 0


def _postgres_ticks(url: str) -> int:
    """The whole server's CPU so far: the postmaster's own, its ended children's (counted into
    its cutime/cstime when it reaped them) and its live children's. The server must be local."""
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT pg_backend_pid()").fetchone()
        assert row
        postmaster = int(_stat(int(row[0]))[1])  # our backend's parent (while it is there)
    fields = _stat(postmaster)
    own = sum(int(field) for field in fields[11:15])
    return own + sum(_ticks_of(child) or 0 for child in _children(postmaster))


def _stat(pid: int) -> list[str]:
    """/proc/PID/stat's fields after the command's name: [0] is the state, [11:15] the CPU."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def _ticks_of(pid: int) -> int | None:
    try:
        fields = _stat(pid)
    except (FileNotFoundError, ProcessLookupError):
        return None  # it ended
    return int(fields[11]) + int(fields[12])


def _ticks(groups: Groups) -> dict[str, dict[int, int]]:
    return {
        name: {pid: ticks for pid in pids if (ticks := _ticks_of(pid)) is not None}
        for name, pids in groups.items()
    }


def _cpu_seconds(
    before: dict[str, dict[int, int]], after: dict[str, dict[int, int]]
) -> dict[str, float]:
    return {
        name: sum(ticks - before[name].get(pid, 0) for pid, ticks in pids.items()) / TICK
        for name, pids in after.items()
    }


def _rusage_delta(before: resource.struct_rusage) -> float:
    now = resource.getrusage(resource.RUSAGE_CHILDREN)
    return now.ru_utime + now.ru_stime - before.ru_utime - before.ru_stime


def _machine() -> int:
    """The machine's busy ticks so far (all but idle and iowait), over all cores."""
    fields = [int(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return sum(fields) - fields[3] - fields[4]


def _children(pid: int) -> list[int]:
    """(A thread or process that ends meanwhile is no error: ESRCH, or no such file.)"""
    found: list[int] = []
    with contextlib.suppress(FileNotFoundError, ProcessLookupError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(FileNotFoundError, ProcessLookupError):
                found += [int(child) for child in (task / "children").read_text().split()]
    return found


def _spread(counts: list[int]) -> str:
    """Per-second counts as a line: their 10th, 50th and 90th percentiles, and the first 5 s."""
    if not counts:
        return "none"
    ranked = sorted(counts)
    p10, p50, p90 = (ranked[int(q * (len(ranked) - 1))] for q in (0.1, 0.5, 0.9))
    first = sum(counts[:5]) / min(5, len(counts))
    return f"p10 {p10:,}/s, median {p50:,}/s, p90 {p90:,}/s; {first:,.0f}/s over the first 5 s"


def _descendants(pid: int) -> list[int]:
    return [pid, *(d for child in _children(pid) for d in _descendants(child))]


def _accepted_requests(output: str) -> int:
    requests = re.search(r"(\d+) requests in", output)
    if not requests:
        sys.exit(f"wrk said:\n{output}")
    failed = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return int(requests[1]) - (int(failed[1]) if failed else 0)


def _sink_count() -> int:
    answer = httpx.get(f"http://127.0.0.1:{SINK_PORT}/__count", timeout=5)
    return int(answer.text.split()[0])


def _wait_http(url: str, proc: subprocess.Popen[bytes], seconds: float) -> bool:
    """Whether `url` answered 200 before `proc` ended or `seconds` passed."""
    deadline = time.monotonic() + seconds
    while proc.poll() is None and time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code == 200:
                return True
        time.sleep(0.2)
    return False


def _require_http(url: str, proc: subprocess.Popen[bytes], seconds: float) -> None:
    if not _wait_http(url, proc, seconds):
        sys.exit(f"{url} did not answer (its log is with the run's logs)")


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


if __name__ == "__main__":
    main()
