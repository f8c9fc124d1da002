"""Real-time delivery while a warehouse loads: a webhook's latency, idle and during a big load.

Starts a private PostgreSQL (unless --database-url is given) that holds Sluice's database and
plays the warehouse, a local sink (bench/sink.py) behind a webhook destination, a `sluice
gateway` and a `sluice worker` (its processing, delivery and load stages), all on this machine.
Source `bench` feeds the webhook; source `backlog` feeds a PostgreSQL warehouse destination, for
which --events events are staged beforehand, out of the worker's sight. The warehouse is a
database of Sluice's own server, of a private server of its own (--warehouse-server, as
`sluice run`'s local warehouse has), or of --warehouse-url's.

Then, at --rate events/s of 100-event batches to the webhook: first --duration seconds with the
warehouse idle, then — the staged backlog handed to the worker and a sync asked for — for as
long as the load takes. For each window it reports the latency from the gateway's
`receivedAt` to arrival at the sink (p50, p99) and the ratio of the two p99s; the goal is
within twice.

--backlog DIR keeps the staged backlog and copies it in again on later runs with as many
--events (its rows still name the destination and source of the run that staged it, which
changes nothing in a load's work).

    python -m bench.warehouse_latency [--events 500000] [--rate 1000] [--duration 20]
                                      [--warehouse-server | --warehouse-url URL] [--backlog DIR]
"""

import argparse
import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from bench.harness import WRITE_KEY, database, free_port, gateway
from bench.pipeline import _stats, offer, process, worker_process
from bench.warehouse import stage
from engine import migrate, specs
from engine.control import workspace
from engine.db import connection
from engine.destinations.catalog import TYPES
from engine.destinations.warehouse import STAGING


async def prepare(
    url: str, sink_url: str, warehouse: dict[str, str]
) -> tuple[uuid.UUID, uuid.UUID]:
    """The two sources and destinations; the warehouse's and the backlog source's ids."""
    await migrate.apply(url)
    spec = specs.WorkspaceSpec(
        sources=[specs.SourceSpec(name="bench", write_key=WRITE_KEY),
                 specs.SourceSpec(name="backlog", write_key="bench-backlog-key-0123")],
        destinations=[
            specs.DestinationSpec(name="sink", type="webhook",
                                  config={"webhookUrl": f"{sink_url}/in"},
                                  delivery=specs.DeliveryPolicy(concurrency=64)),
            specs.DestinationSpec(name="wh", type="postgres", config=warehouse),
        ],
        connections=[specs.ConnectionSpec(source="bench", destination="sink"),
                     specs.ConnectionSpec(source="backlog", destination="wh")],
    )  # fmt: skip
    async with connection(url) as conn:
        await workspace.apply(conn, spec)
        destination = await workspace.id_of(conn, "destination", "wh")
        source = await workspace.id_of(conn, "source", "backlog")
    assert destination is not None and source is not None
    return destination, source


async def window(gateway_url: str, sink_url: str, rate: int, until: "asyncio.Future[Any]",
                 least: float) -> tuple[int, dict[str, float], float]:  # fmt: skip
    """Offer `rate` until `until` is done (and at least `least` seconds); what was acked, the
    sink's latencies once all of it arrived, and the seconds offered."""
    async with aiohttp.ClientSession() as sink:
        await sink.post(f"{sink_url}/reset")
        started, acked = time.monotonic(), 0
        while not until.done() or time.monotonic() - started < least:
            acked += await offer(gateway_url, rate, 2.0)
        offered = time.monotonic() - started
        while (stats := await _stats(sink, sink_url))["count"] < acked:
            await asyncio.sleep(0.2)
    return acked, stats, offered


async def loaded(url: str, destination: uuid.UUID) -> float:
    """Wait for the warehouse's first load to finish; how long it took (seconds)."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        while True:
            cur = await conn.execute(
                "SELECT status, extract(epoch FROM finished_at - started_at), error "
                "FROM warehouse_uploads WHERE destination_id = %s", (destination,))  # fmt: skip
            found = await cur.fetchone()
            if found is not None and found[0] == "loaded":
                return float(found[1])
            if found is not None and found[0] == "failed":
                sys.exit(f"the load failed: {found[2]}")
            await asyncio.sleep(0.2)


async def measure(url: str, gateway_url: str, sink_url: str, args: argparse.Namespace,
                  destination: uuid.UUID, ready: Path, target: Path) -> None:  # fmt: skip
    idle: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    idle.set_result(None)
    acked, quiet, took = await window(gateway_url, sink_url, args.rate, idle, args.duration)
    print(
        f"warehouse idle:    {acked:>8,} events in {took:5.1f} s   "
        f"p50 {quiet['p50'] * 1000:6.0f} ms   p99 {quiet['p99'] * 1000:6.0f} ms",
        flush=True,
    )
    os.rename(ready, target)  # the backlog, in the worker's sight at once
    env = {**os.environ, "SLUICE_DATABASE_URL": url, "SLUICE_LOG_LEVEL": "warning"}
    sync = [sys.executable, "-m", "appliance", "warehouse", "sync", "--destination", "wh",
            "--wait", "0"]  # fmt: skip
    subprocess.run(sync, env=env, check=True, stdout=subprocess.DEVNULL)
    load = asyncio.create_task(loaded(url, destination))
    acked, busy, took = await window(gateway_url, sink_url, args.rate, load, 0.0)
    print(
        f"warehouse loading: {acked:>8,} events in {took:5.1f} s   "
        f"p50 {busy['p50'] * 1000:6.0f} ms   p99 {busy['p99'] * 1000:6.0f} ms   "
        f"(the load took {load.result():.1f} s)"
    )
    print(f"p99 while loading / p99 idle = {busy['p99'] / quiet['p99']:.2f} (goal: within 2)")


def backlog(args: argparse.Namespace, into: Path) -> None:
    """The staged backlog, in `into`: staged now, or copied from --backlog's earlier one."""
    kept = args.backlog / f"{args.events}-events" if args.backlog else None
    if kept is None or not kept.exists():
        kind = TYPES["postgres"].warehouse
        assert kind is not None
        made, took = stage(into.parents[1], args.events, kind, uuid.UUID(into.parent.name),
                           uuid.UUID(into.name))  # fmt: skip
        print(f"staged a backlog of {args.events:,} events ({made:,} rows) in {took:.0f} s")
        if kept is not None:  # (whole or not at all: an interrupted copy is not used)
            shutil.copytree(into, kept.with_name(kept.name + ".part"), dirs_exist_ok=True)
    else:
        shutil.copytree(kept, into)
        print(f"a backlog of {args.events:,} events, staged before, from {kept}")
    # Copies written back now, not in the kernel's burst 30 s later, in the middle of the load.
    os.sync()
    if kept is not None and not kept.exists():
        kept.with_name(kept.name + ".part").rename(kept)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url")
    parser.add_argument("--events", type=int, default=500_000, help="the warehouse's backlog")
    parser.add_argument("--rate", type=int, default=1000, help="webhook events/s offered")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of the idle window")
    parser.add_argument(
        "--warehouse-url", help="a PostgreSQL server to play the warehouse (default: Sluice's)"
    )
    parser.add_argument("--backlog", type=Path,
                        help="keep the staged backlog here and use it again in later runs "
                             "(staging 1,000,000 events takes minutes)")  # fmt: skip
    parser.add_argument("--warehouse-server", action="store_true",
                        help="a private PostgreSQL of its own plays the warehouse, as `sluice "
                             "run`'s local warehouse has")  # fmt: skip
    args = parser.parse_args()
    sink_port, gateway_port = free_port(), free_port()
    sink_url, gateway_url = f"http://127.0.0.1:{sink_port}", f"http://127.0.0.1:{gateway_port}"
    data_dir = Path(tempfile.mkdtemp(prefix="sluice-bench-worker-"))
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(database(args.database_url))
        stack.enter_context(process("bench.sink", str(sink_port)))
        own = (stack.enter_context(database(None, local_warehouse=True))
               if args.warehouse_server else None)  # fmt: skip
        name = f"bench_warehouse_{uuid.uuid4().hex[:8]}"
        server = args.warehouse_url or own or url
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        parts = conninfo_to_dict(make_conninfo(server, dbname=name))
        warehouse = {"host": str(parts["host"]), "port": str(parts.get("port", 5432)),
                     "database": name, "user": str(parts["user"]), "syncFrequency": "1440",
                     "password": str(parts.get("password", ""))}  # fmt: skip
        destination, source = asyncio.run(prepare(url, sink_url, warehouse))
        prepared = data_dir / "prepared"
        backlog(args, prepared / str(destination) / str(source))
        (data_dir / STAGING).mkdir()
        with gateway(url, gateway_port, 2), worker_process(url, data_dir=data_dir):
            time.sleep(5.0)  # let it settle
            print(f"{os.cpu_count()} cores; webhook load {args.rate:,} events/s in 100-event "
                  "batches; PostgreSQL, gateway, worker, sink, load on this machine")  # fmt: skip
            asyncio.run(measure(url, gateway_url, sink_url, args, destination,
                                prepared / str(destination),
                                data_dir / STAGING / str(destination)))  # fmt: skip
    shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
