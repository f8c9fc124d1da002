"""End to end: real gateway and worker processes, local HTTP servers playing destinations."""

import asyncio
import json
import random
import re
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from uuid import UUID

import httpx
import psycopg
import rudderstack.analytics as rudder

from engine.pipeline.delivery import backlog
from engine.pipeline.delivery.backlog import EVERY, Backlog
from engine.store import counters
from tests.conftest import WRITE_KEY, apply_config
from tests.delivery import (
    attempts,
    connect,
    failed_jobs,
    post,
    sluice,
    wait_for_failed,
)
from tests.servers import GatewayProcess, WorkerProcess, free_port, running_worker
from tests.sink import Answer, Arrival, Sink


def backlog_of(
    database_url: str, until: Callable[[dict[str, Backlog]], bool] = lambda b: True
) -> dict[str, Backlog]:
    """The backlog per destination name as the workers publish it, once `until` holds."""
    deadline = time.monotonic() + 3 * EVERY
    while True:
        with psycopg.connect(database_url) as conn:
            rows = conn.execute("SELECT id, name FROM destinations").fetchall()
        names: dict[UUID, str] = dict(rows)
        found = {names[d]: b for d, b in asyncio.run(_current(database_url)).items()}
        if until(found) or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


async def _current(database_url: str) -> dict[UUID, Backlog]:
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        return await backlog.current(conn)


def test_sdk_events_arrive_exactly_once(
    workspace_config: str, gateway: GatewayProcess, worker: WorkerProcess
) -> None:
    with Sink() as sink:
        connect(workspace_config, hook=sink.url)
        client = rudder.Client(WRITE_KEY, host=gateway.url, max_retries=0, upload_size=100)
        sent = []
        for n in range(600):
            kind = ("track", "identify", "page")[n % 3]
            message_id = f"sdk-{n}"
            user = f"user-{n % 7}"
            if kind == "track":
                client.track(user, "Clicked", {"n": n}, message_id=message_id)
            elif kind == "identify":
                client.identify(user, {"n": n}, message_id=message_id)
            else:
                client.page(user, "Docs", "Intro", {"n": n}, message_id=message_id)
            sent.append(message_id)
        client.flush()
        client.join()
        sink.wait_for(len(sent))
        time.sleep(0.5)  # anything extra would arrive now
        bodies = sink.bodies()

    assert sorted(b["messageId"] for b in bodies) == sorted(sent)
    assert {b["type"] for b in bodies} == {"track", "identify", "page"}
    assert all(a.path == "/in/hook" for a in sink.delivered)
    assert attempts(workspace_config, 600) == {"delivered": 600}
    metrics = httpx.get(worker.metrics_url).text
    assert 'sluice_router_events_total{destination="hook",outcome="delivered"} 600.0' in metrics
    # each delivery timed from the gateway's receipt, in the same commit as its attempt row
    with psycopg.connect(workspace_config) as conn:
        timed = conn.execute("SELECT bucket, events FROM latency_minute").fetchall()
    assert sum(n for _, n in timed) == 600
    assert all(counters.LATENCY_BUCKETS[b] <= 60 for b, _ in timed)  # on loopback: seconds at most


def test_duplicate_message_ids_are_delivered_once(
    workspace_config: str, gateway: GatewayProcess, worker: WorkerProcess
) -> None:
    with Sink() as sink:
        connect(workspace_config, hook=sink.url)
        event = {"type": "track", "userId": "u", "event": "Paid", "messageId": "same"}
        post(gateway, [event, event])
        post(gateway, [event, {**event, "messageId": "other"}])
        sink.wait_for(2)
        time.sleep(1.0)
        assert sorted(b["messageId"] for b in sink.bodies()) == ["other", "same"]
    with psycopg.connect(workspace_config) as conn:
        rows = conn.execute("SELECT outcome, sum(events)::int FROM stats_minute GROUP BY 1")
        counts: dict[str, int] = dict(rows.fetchall())
    assert counts == {"received": 4, "duplicate": 2, "delivered": 2}
    with psycopg.connect(workspace_config) as conn:  # the names of the events routed
        names = conn.execute("SELECT type, name, events FROM names_minute").fetchall()
    assert names == [("track", "Paid", 2)]


def test_per_user_order_holds_while_the_destination_fails_now_and_then(
    workspace_config: str, gateway: GatewayProcess, worker: WorkerProcess
) -> None:
    flaky_until = time.time() + 4
    rng = random.Random(7)
    lock = threading.Lock()

    def flaky(arrival: Arrival) -> Answer:
        with lock:
            roll = rng.random()
        if time.time() < flaky_until and roll < 0.3:
            return Answer(500) if roll < 0.15 else Answer(429, {"Retry-After": "0.2"})
        return Answer()

    users, per_user = 50, 20
    with Sink(flaky) as sink:
        connect(workspace_config, hook=sink.url)
        events = [
            {"type": "track", "userId": f"u{u}", "event": "Step", "properties": {"seq": s},
             "messageId": f"u{u}-{s}"}
            for s in range(per_user) for u in range(users)
        ]  # fmt: skip
        for start in range(0, len(events), 100):
            post(gateway, events[start : start + 100])
        sink.wait_for(users * per_user)
        bodies = sink.bodies()
        failures = len(sink.arrivals) - len(sink.delivered)

    seen: dict[str, list[int]] = defaultdict(list)
    for body in bodies:
        seen[body["userId"]].append(body["properties"]["seq"])
    assert failures > 0, "the sink never failed: the test proves nothing"
    assert {user: order for user, order in seen.items()} == {
        f"u{u}": list(range(per_user)) for u in range(users)
    }
    states = attempts(workspace_config, users * per_user)
    assert states["delivered"] == users * per_user and states["retry"] > 0


def test_a_refused_event_is_aborted_listed_and_replayed_after_the_fix(
    workspace_config: str, gateway: GatewayProcess, worker: WorkerProcess
) -> None:
    fixed = threading.Event()

    def picky(arrival: Arrival) -> Answer:
        if arrival.json().get("event") == "Bad" and not fixed.is_set():
            return Answer(400, body='{"error": "field <x> is not allowed"}')
        return Answer()

    with Sink(picky) as sink:
        connect(workspace_config, hook=sink.url)
        post(gateway, [
            {"type": "track", "userId": "u1", "event": "Bad", "messageId": "bad-1"},
            {"type": "track", "userId": "u1", "event": "Good", "messageId": "good-1"},
        ])  # fmt: skip
        sink.wait_for(1)
        listing = wait_for_failed(workspace_config, 1)
        [failed] = listing
        assert failed["message_id"] == "bad-1" and failed["status_code"] == 400
        assert failed["destination"] == "hook" and failed["attempts"] == 1
        assert "is not allowed" in failed["response"]
        assert failed["request"]["body"]["event"] == "Bad"
        table = sluice(workspace_config, "failed", "list", "--destination", "hook")
        assert "HTTP 400" in table and "Bad" in table

        fixed.set()
        out = sluice(workspace_config, "failed", "replay", "--destination", "hook")
        assert "replayed 1 failed job(s) as 1 new job(s)" in out
        sink.wait_for(2)
        assert [b["messageId"] for b in sink.bodies()] == ["good-1", "bad-1"]
    assert failed_jobs(workspace_config) == []
    assert sluice(workspace_config, "failed", "replay").startswith("replayed 0")


def test_an_event_the_mapping_refuses_fails_alone_and_visibly(
    workspace_config: str, gateway: GatewayProcess, worker: WorkerProcess
) -> None:
    with Sink() as sink:
        connect(workspace_config, hook=sink.url)
        post(gateway, [
            {"type": "track", "userId": "u1", "event": "A", "messageId": "ok-1"},
            {"type": "track", "userId": "u1", "event": "B", "messageId": "evil",
             "header": {"X-Inject": "a\r\nSet-Cookie: x=1"}},
            {"type": "track", "userId": "u1", "event": "C", "messageId": "ok-2"},
        ])  # fmt: skip
        sink.wait_for(2)
        [failed] = wait_for_failed(workspace_config, 1)
        time.sleep(0.5)
        assert [b["messageId"] for b in sink.bodies()] == ["ok-1", "ok-2"]
    assert failed["message_id"] == "evil"
    assert "not a valid HTTP header" in failed["error"]
    assert failed["request"] is None
    # Replaying it fails it again, once: the replay ends, and the new failure is listed.
    out = sluice(workspace_config, "failed", "replay")
    assert "replayed 1 failed job(s) as 1 new job(s)" in out
    [again] = failed_jobs(workspace_config)
    assert again["message_id"] == "evil" and again["job_id"] != failed["job_id"]


def test_a_slow_destination_does_not_slow_another(
    workspace_config: str, gateway: GatewayProcess, worker: WorkerProcess
) -> None:
    def slow_or_fast(arrival: Arrival) -> Answer:
        return Answer(delay=5.0) if arrival.path.endswith("/slow") else Answer()

    with Sink(slow_or_fast) as sink:
        connect(workspace_config, slow=sink.url, fast=sink.url)
        events = [
            {"type": "track", "userId": f"u{n}", "event": "E", "messageId": f"m{n}"}
            for n in range(300)
        ]
        post(gateway, events)
        deadline = time.monotonic() + 30
        while sum(a.path.endswith("/fast") for a in sink.delivered) < 300:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        slow_done = sum(a.path.endswith("/slow") for a in sink.delivered)
        # The worker says what waits: the slow destination's events, the fast one's none.
        waiting = backlog_of(workspace_config, lambda b: {"slow", "fast"} <= b.keys()
                             and b["fast"].waiting == 0 and b["slow"].events > 0)  # fmt: skip
    # The slow destination, 32 requests at a time and 5 s each, has finished at most a batch
    # or two while the fast one delivered everything.
    assert slow_done < 300 // 2, slow_done
    assert waiting["fast"].waiting == 0 and waiting["fast"].oldest_at is None
    assert 300 - 2 * 32 <= waiting["slow"].waiting <= 300 and waiting["slow"].unread == 0
    assert waiting["slow"].oldest_at is not None and waiting["slow"].retrying == 0


def test_an_unreachable_destination_is_retried_then_aborted_with_the_reason(
    workspace_config: str, gateway: GatewayProcess, worker: WorkerProcess
) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    budget = "{retry_hours: 0, min_attempts: 3, min_backoff_seconds: 0.1, max_backoff_seconds: 0.2}"
    connect(workspace_config, budget, nowhere=closed)
    post(gateway, [{"type": "track", "userId": "u", "event": "E", "messageId": "lost-1"}])
    [failed] = wait_for_failed(workspace_config, 1)
    assert failed["message_id"] == "lost-1" and failed["attempts"] == 3
    assert failed["status_code"] is None
    assert f"could not connect to {closed[7:]}: connection refused" in failed["error"]
    assert "gave up after 3 attempts" in failed["error"]
    assert attempts(workspace_config, 0)["retry"] == 2


def test_a_rate_limited_destination_is_paced(
    workspace_config: str, gateway: GatewayProcess, worker: WorkerProcess
) -> None:
    with Sink() as sink:
        connect(workspace_config, "{rate_limit: 20}", paced=sink.url)
        post(gateway, [
            {"type": "track", "userId": f"u{n}", "event": "E", "messageId": f"m{n}"}
            for n in range(60)
        ])  # fmt: skip
        arrivals = sink.wait_for(60)
    spread = arrivals[-1].at - arrivals[0].at
    assert spread >= 2.0, f"60 events at 20/s arrived within {spread:.2f} s"


def test_a_stopping_worker_lets_requests_in_flight_finish(
    workspace_config: str, gateway: GatewayProcess, tmp_path: Path
) -> None:
    with Sink(lambda arrival: Answer(delay=1.5)) as sink:
        connect(workspace_config, hook=sink.url)
        with running_worker(workspace_config, tmp_path) as worker:
            post(gateway, [
                {"type": "track", "userId": f"u{n}", "event": "E", "messageId": f"m{n}"}
                for n in range(10)
            ])  # fmt: skip
            deadline = time.monotonic() + 30
            while len(sink.arrivals) < 10:
                assert time.monotonic() < deadline
                time.sleep(0.05)
            assert backlog_of(workspace_config, lambda b: "hook" in b)
            worker.stop()  # SIGTERM while all ten wait for their answer
            assert worker.proc.returncode == 0, worker.output()
            assert backlog_of(workspace_config) == {}  # it took its share with it
        assert attempts(workspace_config, 10)["delivered"] == 10
        with running_worker(workspace_config, tmp_path):
            time.sleep(2.0)
        assert len(sink.arrivals) == 10  # nothing was sent twice


def test_preview_prints_the_request_without_sending_it(
    workspace_config: str, tmp_path: Path
) -> None:
    with Sink() as sink:
        connect(workspace_config, hook=sink.url)
        event = tmp_path / "event.json"
        event.write_text('{"type":"track","event":"Try","userId":"u","properties":{"p":1.50}}')
        [request] = json.loads(
            sluice(workspace_config, "preview", "--destination", "hook", "--event", str(event))
        )
        assert sink.arrivals == []
    assert request["method"] == "POST" and request["url"] == f"{sink.url}/in/hook"
    assert request["body"]["event"] == "Try"
    assert request["headers"]["content-type"] == "application/json"

    config = tmp_path / "config.yaml"
    config.write_text("webhookUrl: https://example.com/x\nwebhookMethod: GET\n")
    [get] = json.loads(
        sluice("", "preview", "--type", "webhook", "--config", str(config), "--event", str(event))
    )
    assert get == {"method": "GET", "url": "https://example.com/x", "params": {"p": "1.50"}}

    event.write_text("{not json")
    refused = subprocess.run(
        [sys.executable, "-m", "appliance", "preview", "--type", "webhook",
         "--config", str(config), "--event", str(event)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert refused.returncode != 0 and "is not valid JSON" in refused.stderr


def test_preview_of_a_list_prints_the_batches_the_router_would_send(tmp_path: Path) -> None:
    old = "2020-01-01T00:00:00Z"  # more than Mixpanel's 5 years ago, but not at --now
    events = [
        {"type": "track", "event": "A", "userId": "a", "messageId": "m0", "timestamp": old},
        {"type": "track", "event": "B", "userId": "b", "messageId": "m1", "timestamp": old},
        {"type": "track", "event": "C", "userId": "a", "messageId": "m2", "timestamp": old},
        {"type": "identify", "userId": "b", "messageId": "m3", "traits": {"plan": "pro"}},
        {"type": "track", "event": "D", "messageId": "m4", "timestamp": old},  # no user
        {"type": "track", "event": "E", "userId": "a", "messageId": "m5", "timestamp": old},
    ]
    event, config = tmp_path / "events.json", tmp_path / "mixpanel.json"
    event.write_text(json.dumps(events))
    config.write_text('{"token": "tok-5e0c1d"}')
    args = ["preview", "--type", "mixpanel", "--config", str(config), "--event", str(event)]
    shown = json.loads(sluice("", *args, "--now", "2020-06-01T00:00:00Z"))["batches"]
    by_events = {tuple(batch["event_indices"]): batch for batch in shown}
    assert set(by_events) == {(0, 1, 2, 5), (3,), (4,)}
    [imported] = by_events[0, 1, 2, 5]["requests"]  # a's three events went with b's first
    assert [e["event"] for e in imported["body"]] == ["A", "B", "C", "E"]
    assert {e["properties"]["token"] for e in imported["body"]} == {"****"}
    [engage] = by_events[3,]["requests"]
    assert engage["url"].endswith("/engage/")
    assert by_events[4,]["error"]["status"] == 400
    assert "neither userId nor anonymousId" in by_events[4,]["error"]["message"]
    # Without --now the clock is today's, when the events are too old for Mixpanel.
    today = json.loads(sluice("", *args))["batches"]
    assert sorted(b["event_indices"] for b in today if "error" in b) == [[0], [1], [2], [4], [5]]


def test_preview_answers_lookups_from_a_file_instead_of_asking_the_vendor(
    tmp_path: Path,
) -> None:
    """Intercom's identify searches for the contact first: found, the event updates it."""
    event, config, lookups = (tmp_path / name for name in ("e.json", "c.json", "l.json"))
    event.write_text(json.dumps({"type": "identify", "userId": "user-1",
                                 "traits": {"email": "ada@example.com"}}))  # fmt: skip
    config.write_text('{"apiKey": "icm-token-40c1", "apiVersion": "v2"}')
    search = "https://api.intercom.io/contacts/search"
    found = {"type": "list", "total_count": 1, "data": [{"type": "contact", "id": "c-77"}]}
    lookups.write_text(json.dumps([{"method": "POST", "endpoint": search,
                                    "response": {"status": 200, "body": found}}]))  # fmt: skip
    args = ["preview", "--type", "intercom", "--config", str(config), "--event", str(event)]
    [request] = json.loads(sluice("", *args, "--lookups", str(lookups)))
    assert (request["method"], request["url"]) == ("PUT", "https://api.intercom.io/contacts/c-77")
    assert request["headers"]["Authorization"] == "Bearer ****"
    lookups.write_text("[]")  # no answer for the search: the preview says which is missing
    refused = subprocess.run(
        [sys.executable, "-m", "appliance", *args, "--lookups", str(lookups)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert refused.returncode != 0
    assert f"no answer given for the look-up POST {search}" in refused.stderr


def test_a_429_with_retry_after_pauses_the_whole_destination(
    workspace_config: str, gateway: GatewayProcess, worker: WorkerProcess
) -> None:
    throttled = threading.Event()

    def throttle_once(arrival: Arrival) -> Answer:
        if not throttled.is_set():
            throttled.set()
            return Answer(429, {"Retry-After": "2"})
        return Answer()

    with Sink(throttle_once) as sink:
        policy = "{concurrency: 1, min_backoff_seconds: 0.1, max_backoff_seconds: 5}"
        connect(workspace_config, policy, hook=sink.url)
        post(gateway, [
            {"type": "track", "userId": f"u{n}", "event": "E", "messageId": f"m{n}"}
            for n in range(5)
        ])  # fmt: skip
        sink.wait_for(5)
        refused, following = sink.arrivals[0], sink.arrivals[1]
    # Other users' events waited too, although each has its own line.
    assert following.at - refused.at >= 1.9


def test_numbers_reach_the_destination_as_they_were_sent(
    workspace_config: str, gateway: GatewayProcess, worker: WorkerProcess
) -> None:
    with Sink() as sink:
        connect(workspace_config, hook=sink.url)
        body = (
            b'{"userId":"u","event":"E",'
            b'"properties":{"price":1.50,"huge":1e999,"n":12345678901234567890}}'
        )
        answer = httpx.post(
            f"{gateway.url}/v1/track", content=body, auth=(WRITE_KEY, ""),
            headers={"Content-Type": "application/json"},
        )  # fmt: skip
        assert answer.status_code == 200
        [arrival] = sink.wait_for(1)
    assert b'"price":1.50' in arrival.body and b'"huge":1e999' in arrival.body
    assert b'"n":12345678901234567890' in arrival.body


def test_events_arrive_transformed_and_failing_ones_fail_alone(
    workspace_config: str, gateway: GatewayProcess, worker: WorkerProcess
) -> None:
    code = """export function transformEvent(event, metadata) {
  if (event.event === "Boom") { return event.nothing.here; }
  if (event.event === "Hog") { const k = []; for (;;) k.push(new Uint8Array(2 ** 26).fill(1)); }
  if (event.event === "Secret") { return null; }
  event.properties = { ...event.properties, source: metadata(event).sourceId };
  return event;
}"""
    with Sink() as sink:
        config = {
            "transformations": [{"name": "enrich", "code": code}],
            "destinations": [
                {"name": "hook", "type": "webhook", "config": {"webhookUrl": sink.url}}
            ],
            "connections": [
                {"source": "website", "destination": "hook", "transformation": "enrich"}
            ],
        }
        apply_config(workspace_config, json.dumps(config))
        post(gateway, [
            {"type": "track", "userId": "u", "event": name, "messageId": name}
            for name in ("First", "Boom", "Hog", "Secret", "Last")
        ])  # fmt: skip
        sink.wait_for(2)
        failed = {f["message_id"]: f["error"] for f in wait_for_failed(workspace_config, 2)}
        time.sleep(0.5)
        bodies = sink.bodies()
    assert [b["event"] for b in bodies] == ["First", "Last"]
    assert all(len(b["properties"]["source"]) == 36 for b in bodies)  # the source's id
    assert "TypeError" in failed["Boom"] and "(line 2:" in failed["Boom"]
    # The sandbox ran out of memory, or V8 told the code so; the worker is unharmed either way.
    assert re.search(r"used more than 128 MB|allocation failed", failed["Hog"]), failed["Hog"]
    assert worker.proc.poll() is None


def test_new_transformation_code_is_picked_up_without_a_restart(
    workspace_config: str, gateway: GatewayProcess, worker: WorkerProcess
) -> None:
    def config(version: int, url: str) -> str:
        code = f"export function transformEvent(e) {{ e.version = {version}; return e; }}"
        return json.dumps({
            "transformations": [{"name": "stamp", "code": code}],
            "destinations": [{"name": "hook", "type": "webhook", "config": {"webhookUrl": url}}],
            "connections": [
                {"source": "website", "destination": "hook", "transformation": "stamp"}
            ],
        })  # fmt: skip

    with Sink() as sink:
        apply_config(workspace_config, config(1, sink.url))
        post(gateway, [{"type": "track", "userId": "u", "event": "E", "messageId": "one"}])
        sink.wait_for(1)
        apply_config(workspace_config, config(2, sink.url))
        deadline = time.monotonic() + 30
        n = 0
        while sink.bodies()[-1]["version"] != 2:  # the reload is quick but not instant
            assert time.monotonic() < deadline
            n += 1
            post(gateway, [{"type": "track", "userId": "u", "event": "E", "messageId": f"m{n}"}])
            sink.wait_for(1 + n)
        versions = [b["version"] for b in sink.bodies()]
    assert versions[0] == 1 and versions[-1] == 2
    assert versions == sorted(versions)  # once on the new version, never back
