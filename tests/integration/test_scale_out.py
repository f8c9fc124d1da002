"""Past one host: three workers (each its own "host": a process with its own node name) and two
gateways on one PostgreSQL. 50,000 events from 500 users; a worker is killed mid-flow and a new
one joins later. Every acknowledged event arrives, each user's in order, and the only
duplicates are those the dead worker had in flight."""

import time
from pathlib import Path

from tests.delivery import assert_user_order, connect, first_arrivals, wait_delivered, working
from tests.servers import WorkerProcess, running_gateway, start_worker
from tests.sink import Sink
from tests.traffic import Sender

EVENTS = 50_000


def _host(database_url: str, workdir: Path, name: str) -> WorkerProcess:
    return start_worker(database_url, workdir, {"node_name": name, "worker_split": "false"})


def _partitions(spans: str | None) -> set[int]:
    """The partitions of a log line's "0-20, 43" (engine.partitions.spans)."""
    found: set[int] = set()
    for part in (spans or "").split(", "):
        low, _, high = part.partition("-")
        found |= set(range(int(low), int(high or low) + 1))
    return found


def _acked(senders: list[Sender]) -> int:
    return sum(len(s.acked) for s in senders)


def test_workers_on_three_hosts_share_the_work_and_survive_one_dying(
    workspace_config: str, tmp_path: Path
) -> None:
    with Sink() as sink:
        connect(workspace_config, hook=sink.url)
        workers = [_host(workspace_config, tmp_path, f"host-{n}") for n in "abc"]
        with running_gateway(workspace_config, tmp_path) as one, \
                running_gateway(workspace_config, tmp_path) as two:  # fmt: skip
            senders = [
                Sender(gateway.url, prefix=name, users=250, user_prefix=name, batch=25)
                for gateway, name in ((one, "x"), (two, "y"))
            ]
            for sender in senders:
                sender.start()
            try:
                while _acked(senders) < EVENTS * 0.3:
                    time.sleep(0.2)
                spans = {working(w, "deliver") for w in workers}
                workers[1].kill()
                killed = time.time()
                while _acked(senders) < EVENTS * 0.7:
                    time.sleep(0.2)
                workers.append(_host(workspace_config, tmp_path, "host-d"))
                while _acked(senders) < EVENTS:
                    time.sleep(0.2)
            finally:
                for sender in senders:
                    sender.stop.set()
                    sender.join()
            sent = {m for s in senders for m in s.acked}
            try:
                wait_delivered(sink, sent, timeout=240)
                time.sleep(1.0)
                shares = [working(w, "deliver") for w in workers if w.proc.poll() is None]
            finally:
                for worker in workers:
                    worker.kill()
        seen = first_arrivals(sink)
        assert_user_order(sink)
    assert len(sent) >= EVENTS
    shared = [_partitions(s) for s in spans]  # three hosts, a fair share each, all covered
    assert sorted(map(len, shared)) == [21, 21, 22] and set().union(*shared) == set(range(64))
    assert len(shares) == 3 and all(shares), shares  # the dead one's partitions went around
    duplicates = {m: first for m, (first, count) in seen.items() if count > 1}
    late = [m for m, first in duplicates.items() if not killed - 3 <= first <= killed + 1]
    assert late == [], f"{len(late)} duplicates not around the kill"
    assert len(duplicates) < 1000, len(duplicates)
