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
            senders = [Sender(one.url, prefix="x", users=250, user_prefix="x"),
                       Sender(two.url, prefix="y", users=250, user_prefix="y")]  # fmt: skip
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
    assert spans == {"0-21", "22-42", "43-63"}  # three hosts, a fair share each
    assert len(shares) == 3 and all(shares), shares  # the dead one's partitions went around
    duplicates = {m: first for m, (first, count) in seen.items() if count > 1}
    late = [m for m, first in duplicates.items() if not killed - 3 <= first <= killed + 1]
    assert late == [], f"{len(late)} duplicates not around the kill"
    assert len(duplicates) < 1000, len(duplicates)
