"""Pipeline benchmark: sustained events/s from gateway to destination, and accept→delivery latency.

Starts a private PostgreSQL (unless --database-url is given), a `sluice gateway`, a `sluice
worker` and a local sink (bench/sink.py) that a webhook destination points at — everything on
this machine. For each offered rate it sends 100-event batches on a fixed timetable for
--duration seconds, then reports the events delivered per second while offering, the backlog
left when offering stopped, how long it took to drain, and the latency from the gateway's
`receivedAt` to arrival at the sink (p50/p99). A rate is *sustained* when the backlog left is
under two seconds' worth. Finally it runs at half the highest sustained rate, for latency.
Before any load it measures the worker's CPU use while idle.

    python -m bench.pipeline [--rates 2500,5000,7500,10000] [--duration 20]
                             [--workers N] [--one-process-each] [--destination amplitude]

`--destination amplitude` delivers to Amplitude's HTTP V2 API (the sink playing it, through
the destination's `endpoint`), whose requests carry many events each: the processing stage,
not the requests, should then be the limit.

`--workers 2 --one-process-each` against `--workers 1 --one-process-each` shows whether the work
divides between worker processes (they share the partitions through leases).
"""

import argparse
import asyncio
import base64
import contextlib
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import aiohttp

from bench.harness import WRITE_KEY, database, free_port, gateway, prepare
from engine.specs import DeliveryPolicy, DestinationSpec

PER_REQUEST = 100
IDLE_SECONDS = 10.0
IN_FLIGHT = 32
_EVENT = (
    '{"type":"track","event":"Product Viewed","userId":"user-%d","messageId":"%s-%d",'
    '"timestamp":"%s",'
    '"properties":{"product_id":"sku-100","price":89.0,"currency":"USD"},'
    '"context":{"library":{"name":"analytics-python","version":"2.4.0"},"locale":"en-US"}}'
)


@dataclass
class Step:
    rate: int
    acked: int
    delivered_while_offering: int
    backlog: int
    drain_seconds: float
    p50: float
    p99: float
    duration: float

    @property
    def sustained(self) -> bool:
        return self.backlog < 2 * self.rate

    def line(self) -> str:
        return (
            f"offered {self.rate:>6,}/s  acked {self.acked / self.duration:>8,.0f}/s  "
            f"delivered {self.delivered_while_offering / self.duration:>8,.0f}/s  "
            f"backlog at stop {self.backlog:>7,}  drained in {self.drain_seconds:5.1f} s  "
            f"latency p50 {self.p50 * 1000:6.0f} ms  p99 {self.p99 * 1000:6.0f} ms  "
            f"{'sustained' if self.sustained else 'NOT sustained'}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per rate")
    parser.add_argument("--rates", default="2500,5000,7500,10000")
    parser.add_argument("--gateway-workers", type=int, default=2)
    parser.add_argument("--workers", type=int, default=1, help="`sluice worker` processes")
    parser.add_argument(
        "--one-process-each", action="store_true",
        help="each worker runs both stages in one process (SLUICE_WORKER_SPLIT=false)",
    )  # fmt: skip
    parser.add_argument("--destination", choices=("webhook", "amplitude"), default="webhook")
    args = parser.parse_args()
    rates = [int(r) for r in args.rates.split(",")]
    sink_port, gateway_port = free_port(), free_port()
    sink_url = f"http://127.0.0.1:{sink_port}"
    config = {
        "webhook": {"webhookUrl": f"{sink_url}/in"},
        "amplitude": {"apiKey": "bench-amplitude-key", "endpoint": sink_url},
    }[args.destination]
    hook = DestinationSpec(name="sink", type=args.destination, config=config,
                           delivery=DeliveryPolicy(concurrency=64))  # fmt: skip
    with database(args.database_url) as url, process("bench.sink", str(sink_port)):
        asyncio.run(prepare(url, [hook]))
        with gateway(url, gateway_port, args.gateway_workers), contextlib.ExitStack() as stack:
            pids = [stack.enter_context(worker_process(url, not args.one_process_each))
                    for _ in range(args.workers)]  # fmt: skip
            gateway_url = f"http://127.0.0.1:{gateway_port}"
            each = ", one process each" if args.one_process_each else ""
            print(f"{os.cpu_count()} cores; to a {args.destination} destination; "
                  f"gateway workers {args.gateway_workers}; "
                  f"{args.workers} worker(s){each}; {PER_REQUEST}-event batches; "
                  f"{args.duration:g} s per rate; "
                  "PostgreSQL, gateway, workers, sink and load on this machine")  # fmt: skip
            time.sleep(3.0 + 2 * args.workers)  # let it settle (and the workers share out)
            idle = sum(map(_cpu_seconds, pids))
            time.sleep(IDLE_SECONDS)
            idle = (sum(map(_cpu_seconds, pids)) - idle) / IDLE_SECONDS
            print(f"workers' CPU while idle: {idle:.2%} of one core over {IDLE_SECONDS:g} s")
            steps = []
            for rate in rates:
                steps.append(asyncio.run(_step(gateway_url, sink_url, rate, args.duration)))
                print(steps[-1].line(), flush=True)
            held = [s.rate for s in steps if s.sustained]
            if held:
                half = max(held) // 2
                print(f"at half the highest sustained rate ({half:,}/s):")
                print(asyncio.run(_step(gateway_url, sink_url, half, args.duration)).line())


async def _step(gateway_url: str, sink_url: str, rate: int, duration: float) -> Step:
    async with aiohttp.ClientSession() as sink:
        await sink.post(f"{sink_url}/reset")
        start = time.monotonic()
        acked = await offer(gateway_url, rate, duration)
        elapsed = time.monotonic() - start
        delivered = int((await _stats(sink, sink_url))["count"])
        stopped = time.monotonic()
        while (stats := await _stats(sink, sink_url))["count"] < acked:
            if time.monotonic() - stopped > 120:
                sys.exit(f"only {stats['count']} of {acked} events delivered after 120 s")
            await asyncio.sleep(0.2)
        drain = time.monotonic() - stopped
    return Step(rate, acked, delivered, acked - delivered, drain, stats["p50"], stats["p99"],
                elapsed)  # fmt: skip


async def _stats(session: aiohttp.ClientSession, sink_url: str) -> dict[str, float]:
    async with session.get(f"{sink_url}/stats") as answer:
        return await answer.json()  # type: ignore[no-any-return]


async def offer(gateway_url: str, rate: int, duration: float) -> int:
    """Send batches on a fixed timetable; return how many events were acknowledged."""
    interval = PER_REQUEST / rate
    prefix = uuid.uuid4().hex[:8]
    slots = asyncio.Semaphore(IN_FLIGHT)
    acked = 0
    tasks = set()
    headers = {
        "Content-Type": "application/json",
        "Authorization": "Basic " + base64.b64encode(f"{WRITE_KEY}:".encode()).decode(),
    }
    connector = aiohttp.TCPConnector(limit=IN_FLIGHT)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def send(n: int) -> None:
            nonlocal acked
            now = datetime.now(UTC).isoformat()  # (what an Amplitude event's `time` says)
            events = ",".join(
                _EVENT % ((n * PER_REQUEST + i) % 1000, prefix, n * PER_REQUEST + i, now)
                for i in range(PER_REQUEST)
            )
            body = ('{"batch":[' + events + "]}").encode()
            try:
                async with session.post(f"{gateway_url}/v1/batch", data=body) as answer:
                    if answer.status == 200:
                        acked += PER_REQUEST
            finally:
                slots.release()

        loop = asyncio.get_running_loop()
        start, n = loop.time(), 0
        while loop.time() - start < duration:
            due = start + n * interval
            if due > loop.time():
                await asyncio.sleep(due - loop.time())
            await slots.acquire()
            task = asyncio.create_task(send(n))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            n += 1
        await asyncio.gather(*tasks)
    return acked


@contextlib.contextmanager
def process(module: str, *args: str) -> Iterator[None]:
    proc = subprocess.Popen([sys.executable, "-m", module, *args])
    try:
        time.sleep(1.0)
        yield
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time so far of a process and its children (all their threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return own + sum(_cpu_seconds(int(child)) for child in children)


@contextlib.contextmanager
def worker_process(url: str, split: bool = True, data_dir: Path | None = None) -> Iterator[int]:
    """A `sluice worker` on `url`, quiet; yields its pid."""
    env = {
        **os.environ,
        "SLUICE_DATABASE_URL": url,
        "SLUICE_LOG_LEVEL": "warning",
        "SLUICE_DATA_DIR": str(data_dir or tempfile.mkdtemp()),
        "SLUICE_WORKER_METRICS_PORT": "0",
        "SLUICE_WORKER_SPLIT": str(split).lower(),
    }
    proc = subprocess.Popen([sys.executable, "-m", "appliance", "worker"], env=env)
    try:
        yield proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=60)


if __name__ == "__main__":
    main()
