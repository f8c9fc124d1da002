"""A router in this process, against a real PostgreSQL and a local HTTP server."""

import asyncio
import contextlib
import dataclasses
import gzip
import json
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

import msgspec
import psycopg
import pytest

from engine.db import connection_pool
from engine.destinations.base import (
    ALL_TYPES,
    Classify,
    DestinationType,
    Files,
    Judgement,
    Lookups,
    Request,
    Stored,
    Unsendable,
    Verdict,
    classify_status,
)
from engine.destinations.filters import EventFilter
from engine.pipeline.delivery.attempts import AttemptLog
from engine.pipeline.delivery.files import FileRouter
from engine.pipeline.delivery.router import DestinationRouter
from engine.pipeline.delivery.sender import Sender
from engine.pipeline.metrics import WorkerMetrics
from engine.pipeline.topology import Target
from engine.specs import DeliveryPolicy
from tests.sink import Answer, Arrival, Sink


class Settings(msgspec.Struct):
    url: str


def _map(event: dict[str, Any], settings: Settings, now: datetime) -> list[Request]:
    return [Request("POST", settings.url, body=event)]


def _combine(requests: Sequence[Request]) -> Request:
    return Request("POST", requests[0].url, body=[r.body for r in requests])


BATCHING = DestinationType(
    name="batching", title="Batching", settings=Settings, map=_map, batch_size=10, combine=_combine
)


def _insert_jobs(url: str, destination: Any, jobs: list[tuple[str, int]], sink_url: str) -> None:
    with psycopg.connect(url) as conn:
        for user, n in jobs:
            request = json.dumps({"method": "POST", "url": sink_url, "body": {"u": user, "n": n}})
            conn.execute(
                "INSERT INTO jobs (destination_id, source_id, partition, user_key, ingest_tx,"
                " ingest_id, received_at, message_id, event_type, request)"
                " VALUES (%s, %s, 0, %s, '0', 0, now(), %s, 'track', %s)",
                (destination, uuid4(), user, f"{user}-{n}", request),
            )


@contextlib.asynccontextmanager
async def running(
    database_url: str, target: Target, kind: type[DestinationRouter] = DestinationRouter
) -> AsyncIterator[None]:
    """`target`'s router delivering in this process until the block ends."""
    pool = connection_pool(database_url)
    await pool.open()
    sender = Sender()
    await sender.start()
    attempts = AttemptLog(pool, WorkerMetrics(), lambda: {})
    router = kind(target, pool, sender, attempts, range(64))
    tasks = [asyncio.create_task(router.run()), asyncio.create_task(attempts.run())]
    try:
        yield
    finally:
        await router.stop(5)
        await attempts.stop()
        for task in tasks:
            task.cancel()
        await sender.close()
        await pool.close()


async def until(done: Callable[[], bool], timeout: float = 20) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not done():
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.05)


def batching(plugin: DestinationType, url: str) -> Target:
    return Target(
        uuid4(), "batchy", "batching", {}, True,
        DeliveryPolicy(concurrency=2, min_backoff_seconds=0.05, max_backoff_seconds=0.1),
        plugin, Settings(url), None, EventFilter(ALL_TYPES),
    )  # fmt: skip


def states(database_url: str) -> dict[str, list[str]]:
    """Each job's attempt states, in order, by message id."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT j.message_id, a.state FROM job_attempts a JOIN jobs j ON j.id = a.job_id"
            " ORDER BY a.attempt"
        ).fetchall()
    found: dict[str, list[str]] = {}
    for message_id, state in rows:
        found.setdefault(message_id, []).append(state)
    return found


async def test_batching_destinations_get_batches_and_users_keep_their_order(
    database_url: str,
) -> None:
    with Sink() as sink:
        target = batching(BATCHING, sink.url)
        jobs = [(f"user-{n}", 0) for n in range(25)] + [("busy", n) for n in range(3)]
        _insert_jobs(database_url, target.id, jobs, sink.url)
        async with running(database_url, target):
            await until(lambda: sum(len(a.json()) for a in sink.delivered) >= len(jobs))
            arrivals = list(sink.delivered)
    batches = [a.json() for a in arrivals]
    # The mapping named no Content-Type: a JSON body says what it is all the same.
    assert {a.header("Content-Type") for a in arrivals} == {"application/json"}
    assert all(isinstance(b, list) and 1 <= len(b) <= 10 for b in batches)
    assert len(batches) < len(jobs) // 2  # they really travelled together
    events = [event for batch in batches for event in batch]
    assert sorted((e["u"], e["n"]) for e in events) == sorted(jobs)  # each exactly once
    assert [e["n"] for e in events if e["u"] == "busy"] == [0, 1, 2]
    # A user's waiting jobs to the same endpoint travel together, in their order.
    busy = [[e["n"] for e in batch if e["u"] == "busy"] for batch in batches]
    assert [ns for ns in busy if ns] == [[0, 1, 2]]


def _judge(status: int, body: bytes, count: int) -> Verdict | list[Judgement]:
    """Like a vendor that names the events it refused: {"refused": [index, …]}."""
    if status != 400:
        return classify_status(status, body)
    refused = json.loads(body)["refused"]
    return [
        Judgement(Verdict.ABORT, f"event {i} is invalid") if i in refused
        else Judgement(Verdict.DELIVERED)
        for i in range(count)
    ]  # fmt: skip


def _refusing(arrival: Arrival) -> Answer:
    """Refuses the events of users named "bad-…", takes the others."""
    refused = [i for i, event in enumerate(arrival.json()) if event["u"].startswith("bad")]
    return Answer(400 if refused else 200, body=json.dumps({"refused": refused}))


async def test_a_vendor_taking_part_of_a_batch_settles_each_event_on_its_own(
    database_url: str,
) -> None:
    plugin = dataclasses.replace(BATCHING, classify=_judge)
    with Sink(_refusing) as sink:
        target = batching(plugin, sink.url)
        users = ["user-0", "bad-1", "user-2", "user-3", "bad-4"]
        _insert_jobs(database_url, target.id, [(user, 0) for user in users], sink.url)
        async with running(database_url, target):
            await until(lambda: len(states(database_url)) == 5)
            arrivals = [a.json() for a in sink.arrivals]
    assert len(arrivals) == 1 and len(arrivals[0]) == 5  # one batch, answered once
    assert states(database_url) == {
        "user-0-0": ["delivered"], "bad-1-0": ["aborted"], "user-2-0": ["delivered"],
        "user-3-0": ["delivered"], "bad-4-0": ["aborted"],
    }  # fmt: skip
    with psycopg.connect(database_url) as conn:
        errors = conn.execute("SELECT error FROM job_attempts WHERE state = 'aborted'").fetchall()
    batch_order = [e["u"] for e in arrivals[0]]
    assert sorted(e for (e,) in errors) == [
        f"HTTP 400: event {batch_order.index(u)} is invalid" for u in ("bad-1", "bad-4")
    ]


def _small(arrival: Arrival) -> Answer:
    return Answer(413, body='{"error": "too large"}') if len(arrival.json()) > 4 else Answer()


async def test_a_batch_the_vendor_finds_too_large_is_sent_again_event_by_event(
    database_url: str,
) -> None:
    with Sink(_small) as sink:
        target = batching(BATCHING, sink.url)
        users = [f"user-{n}" for n in range(8)]
        _insert_jobs(database_url, target.id, [(user, 0) for user in users], sink.url)
        async with running(database_url, target):
            await until(lambda: len(sink.delivered) == 8)
            arrivals = [a.json() for a in sink.arrivals]
    assert len(arrivals[0]) == 8 and all(len(batch) == 1 for batch in arrivals[1:])
    assert sorted(batch[0]["u"] for batch in arrivals[1:]) == users
    assert all(s == ["retry", "delivered"] for s in states(database_url).values())


def _by_kind(request: Request) -> str | None:
    kind = request.body["kind"]
    return None if kind == "solo" else kind


async def test_only_requests_with_the_same_batch_key_combine_and_within_the_size_limit(
    database_url: str,
) -> None:
    plugin = dataclasses.replace(BATCHING, batch_key=_by_kind, batch_bytes=400)
    with Sink() as sink:
        target = batching(plugin, sink.url)
        with psycopg.connect(database_url) as conn:
            for n in range(12):
                kind = ("a", "b", "solo")[n % 3]
                body = {"kind": kind, "u": f"user-{n}", "pad": "x" * 50}
                request = json.dumps({"method": "POST", "url": sink.url, "body": body})
                conn.execute(
                    "INSERT INTO jobs (destination_id, source_id, partition, user_key, ingest_tx,"
                    " ingest_id, received_at, message_id, event_type, request)"
                    " VALUES (%s, %s, 0, %s, '0', 0, now(), %s, 'track', %s)",
                    (target.id, uuid4(), f"user-{n}", f"m-{n}", request),
                )
        async with running(database_url, target):
            await until(lambda: len(_events(sink.delivered)) >= 12)
            bodies = [a.json() for a in sink.delivered]
    batches = [body for body in bodies if isinstance(body, list)]
    alone = [body for body in bodies if isinstance(body, dict)]
    # A request that never travels in a batch goes as it is, not in a batch's shape.
    assert sorted(body["u"] for body in alone) == sorted(f"user-{n}" for n in range(2, 12, 3))
    assert all(len({e["kind"] for e in batch}) == 1 and batch[0]["kind"] != "solo"
               for batch in batches)  # fmt: skip
    # Each stored request is about 150 bytes: at most two fit in 400.
    assert all(len(batch) <= 2 for batch in batches)
    assert sorted(e["u"] for e in _events(sink.delivered)) == sorted(f"user-{n}" for n in range(12))


def _events(arrivals: list[Arrival]) -> list[dict[str, Any]]:
    """The events that arrived, whether batched (a list) or alone (an object)."""
    bodies = [a.json() for a in arrivals]
    return [e for body in bodies for e in (body if isinstance(body, list) else [body])]


class Shelf:
    """A storage service in memory for a `Files` plug-in: keeps the last body per key, and
    answers with the verdicts it is given first."""

    def __init__(self, *verdicts: Verdict) -> None:
        self.objects: dict[str, bytes] = {}
        self.uploads: list[str] = []
        self._verdicts = list(verdicts)
        self.closed = False

    def key(self, settings: Any, source: UUID, created: datetime, first: int) -> str:
        return f"{source}/{created:%Y-%m-%d/%H}/{first}.json.gz"

    async def store(self, settings: Any, key: str, body: bytes) -> Stored:
        self.uploads.append(key)
        verdict = self._verdicts.pop(0) if self._verdicts else Verdict.DELIVERED
        if verdict is not Verdict.DELIVERED:
            return Stored(verdict, 503 if verdict is Verdict.RETRY else 403, "Nope: not now")
        self.objects[key] = body
        return Stored(Verdict.DELIVERED, 200)

    async def aclose(self) -> None:
        self.closed = True

    def lines(self) -> dict[str, list[dict[str, Any]]]:
        return {
            key: [json.loads(line) for line in gzip.decompress(body).splitlines()]
            for key, body in self.objects.items()
        }


def filing(shelf: Shelf, **policy: Any) -> Target:
    plugin = dataclasses.replace(BATCHING, combine=None, files=Files(shelf.key, lambda _: shelf))
    return Target(
        uuid4(), "files", "files", {}, True,
        DeliveryPolicy(min_backoff_seconds=0.05, max_backoff_seconds=0.1, **policy),
        plugin, Settings("s3://bucket"), None, EventFilter(ALL_TYPES),
    )  # fmt: skip


def _insert_events(url: str, destination: Any, events: list[tuple[UUID, int]]) -> None:
    with psycopg.connect(url) as conn:
        for source, n in events:
            # (as the processor writes it: compact, numbers as the client wrote them)
            request = f'{{"method":"PUT","url":"s3://bucket","body":{{"n":{n},"price":1.50}}}}'
            conn.execute(
                "INSERT INTO jobs (destination_id, source_id, partition, user_key, ingest_tx,"
                " ingest_id, received_at, message_id, event_type, request)"
                " VALUES (%s, %s, %s, %s, '0', 0, now(), %s, 'track', %s)",
                (destination, source, n % 64, f"user-{n % 7}", f"m-{n}", request),
            )


async def test_a_batch_destination_gets_files_of_each_source_with_every_event_once(
    database_url: str,
) -> None:
    shelf = Shelf()
    target = filing(shelf, file_events=4, file_seconds=0.2)
    one, two = uuid4(), uuid4()
    events = [(one if n % 3 else two, n) for n in range(20)]
    _insert_events(database_url, target.id, events)
    async with running(database_url, target, FileRouter):
        await until(lambda: sum(len(lines) for lines in shelf.lines().values()) >= 20)
    files = shelf.lines()
    assert all(len(lines) <= 4 for lines in files.values())
    by_source = {str(one): [], str(two): []}  # type: dict[str, list[int]]
    for key, lines in sorted(files.items(), key=lambda item: int(item[0].rsplit("/", 1)[1][:-8])):
        by_source[key.split("/")[0]] += [line["n"] for line in lines]
    assert by_source == {
        str(one): [n for s, n in events if s == one], str(two): [n for s, n in events if s == two]
    }  # fmt: skip
    # The event as stored, byte for byte (1.50 stays 1.50).
    first = gzip.decompress(next(iter(shelf.objects.values()))).splitlines()[0]
    assert first == b'{"n":0,"price":1.50}'
    assert all(s == ["delivered"] for s in states(database_url).values())
    assert shelf.closed  # the router's connection to the store ends with it


async def test_a_failed_upload_is_retried_under_the_same_key_and_a_refused_one_aborts(
    database_url: str,
) -> None:
    shelf = Shelf(Verdict.RETRY)
    target = filing(shelf, file_events=100, file_seconds=0.1)
    source = uuid4()
    _insert_events(database_url, target.id, [(source, n) for n in range(5)])
    async with running(database_url, target, FileRouter):
        await until(lambda: len(shelf.objects) == 1)
    assert len(shelf.uploads) == 2 and shelf.uploads[0] == shelf.uploads[1]
    assert all(s == ["retry", "delivered"] for s in states(database_url).values())

    refusing = Shelf(Verdict.ABORT)
    target = filing(refusing, file_events=100, file_seconds=0.1)
    _insert_events(database_url, target.id, [(source, n) for n in range(5, 8)])
    async with running(database_url, target, FileRouter):
        await until(lambda: len(refusing.uploads) == 1)
        await asyncio.sleep(0.3)
    with psycopg.connect(database_url) as conn:
        aborted = conn.execute(
            "SELECT status_code, error FROM job_attempts WHERE state = 'aborted'"
        ).fetchall()
    assert aborted == [(403, "Nope: not now")] * 3 and not refusing.objects


async def test_bundles_are_filed_whole_a_line_per_event_and_counted_per_event(
    database_url: str,
) -> None:
    shelf = Shelf()
    target = filing(shelf, file_events=4, file_seconds=0.1)
    source = uuid4()
    with psycopg.connect(database_url) as conn:
        for first in (0, 3, 6):  # three bundles of three events, as the processor writes them
            bodies = ",".join(f'{{"n":{n}}}' for n in range(first, first + 3))
            conn.execute(
                "INSERT INTO jobs (destination_id, source_id, partition, user_key, ingest_tx,"
                " ingest_id, received_at, message_id, event_type, request, events, member_txs,"
                " member_ids) VALUES (%s, %s, 0, '', '1', %s, now(), %s, 'track', %s, 3,"
                " '{1,1,1}', %s)",
                (target.id, source, first + 1, f"m-{first}",
                 f'{{"method":"PUT","url":"s3://bucket","body":[{bodies}]}}',
                 [first + 1, first + 2, first + 3]),
            )  # fmt: skip
    async with running(database_url, target, FileRouter):
        await until(lambda: sum(len(lines) for lines in shelf.lines().values()) >= 9)
    files = sorted(shelf.lines().items(), key=lambda item: int(item[0].rsplit("/", 1)[1][:-8]))
    # A bundle is never split: the first file takes two (past file_events), the next the third.
    assert [[line["n"] for line in lines] for _, lines in files] == [[0, 1, 2, 3, 4, 5], [6, 7, 8]]
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT sum(events) FROM stats_minute WHERE outcome = 'delivered'"
        ).fetchone()
    assert row == (9,)


async def _resolve(request: Request, settings: Settings, lookups: Lookups) -> Request:
    """A contact's id looked up before sending: found, the event updates it; not found, it
    creates one; two found, the event cannot be sent."""
    user = request.body["u"]
    looked = await lookups.ask(Request("GET", f"{settings.url}/lookup", params={"u": user}), 60)
    found = looked.body["ids"] if looked.status == 200 else []
    if len(found) > 1:
        raise Unsendable(f"{len(found)} contacts are {user}")
    if found:
        return Request("PUT", f"{settings.url}/update", body={**request.body, "id": found[0]})
    return Request("POST", f"{settings.url}/create", body=request.body)


def _directory(flaky: set[str]) -> Callable[[Arrival], Answer]:
    """Knows `known` (one contact) and `twice` (two); fails a look-up of a `flaky` user once."""

    def answer(arrival: Arrival) -> Answer:
        if arrival.path != "/lookup":
            return Answer()
        user = arrival.query["u"]
        if user in flaky:
            flaky.discard(user)
            return Answer(503, body="busy")
        ids = {"known": ["c-1"], "twice": ["c-2", "c-3"]}.get(user)
        return Answer.json(200, {"ids": ids}) if ids else Answer.json(404, {"ids": []})

    return answer


async def test_requests_completed_by_lookups_when_sent_are_regrouped_and_retried(
    database_url: str,
) -> None:
    plugin = dataclasses.replace(BATCHING, resolve=_resolve, batch_key=lambda r: r.method)
    with Sink(_directory(flaky={"slow"})) as sink:
        target = batching(plugin, sink.url)
        jobs = [("known", 0), ("known", 1), ("new", 0), ("twice", 0), ("slow", 0)]
        _insert_jobs(database_url, target.id, jobs, sink.url)
        async with running(database_url, target):
            await until(lambda: len(states(database_url)) == 5 and
                        all(s[-1] != "retry" for s in states(database_url).values()))  # fmt: skip
            arrivals = list(sink.arrivals)
    sent = {a.path: a.json() for a in arrivals if a.path != "/lookup"}
    # The same user's look-up is asked once and kept; the failed one is asked again.
    assert sorted(a.query["u"] for a in arrivals if a.path == "/lookup") == [
        "known", "new", "slow", "slow", "twice"]  # fmt: skip
    # One batch went out as two requests: the found contact's updates, the others' creates.
    assert [(e["u"], e["n"], e["id"]) for e in sent["/update"]] == [("known", 0, "c-1"),
                                                                   ("known", 1, "c-1")]  # fmt: skip
    assert sorted(e["u"] for e in sent["/create"]) in (["new"], ["new", "slow"], ["slow"])
    assert states(database_url) == {
        "known-0": ["delivered"], "known-1": ["delivered"], "new-0": ["delivered"],
        "twice-0": ["aborted"], "slow-0": ["retry", "delivered"],
    }  # fmt: skip
    with psycopg.connect(database_url) as conn:
        errors: dict[str, str] = dict(conn.execute(
            "SELECT j.message_id, a.error FROM job_attempts a JOIN jobs j ON j.id = a.job_id"
            " WHERE a.state <> 'delivered'"
        ).fetchall())  # fmt: skip
    assert errors["twice-0"] == "2 contacts are twice"
    assert errors["slow-0"] == f"look-up GET {sink.url}/lookup: HTTP 503: busy"


def _strict(arrival: Arrival) -> Answer:
    """Refuses a whole request with 400 when any of its events is bad, naming none."""
    bad = any(event["u"].startswith("bad") for event in arrival.json())
    return Answer(400, body='{"error": "invalid batch"}') if bad else Answer()


def _refused_with_reason(status: int, body: bytes, count: int) -> Verdict | list[Judgement]:
    """Like a vendor whose refusal of a batch says why, the same for each of its events."""
    verdict = classify_status(status, body)
    return (
        verdict if verdict is Verdict.DELIVERED else [Judgement(verdict, "invalid batch")] * count
    )


@pytest.mark.parametrize("classify", [classify_status, _refused_with_reason])
async def test_a_batch_refused_whole_without_naming_events_is_sent_again_event_by_event(
    database_url: str, classify: Classify
) -> None:
    plugin = dataclasses.replace(BATCHING, split_on=frozenset({400}), classify=classify)
    with Sink(_strict) as sink:
        target = batching(plugin, sink.url)
        users = ["user-0", "bad-1", "user-2"]
        _insert_jobs(database_url, target.id, [(user, 0) for user in users], sink.url)
        async with running(database_url, target):
            await until(lambda: all(s[-1] != "retry" for s in states(database_url).values())
                        and len(states(database_url)) == 3)  # fmt: skip
            arrivals = [[e["u"] for e in a.json()] for a in sink.arrivals]
    assert arrivals[0] == users and sorted(arrivals[1:]) == [["bad-1"], ["user-0"], ["user-2"]]
    assert states(database_url) == {
        "user-0-0": ["retry", "delivered"], "bad-1-0": ["retry", "aborted"],
        "user-2-0": ["retry", "delivered"],
    }  # fmt: skip


async def _by_number(request: Request, settings: Settings, lookups: Lookups) -> Request:
    """An even job updates, an odd one creates: the two no longer share a request."""
    path = "/update" if request.body["n"] % 2 == 0 else "/create"
    return Request("POST", f"{settings.url}{path}", body=request.body)


def _update_fails_once(seen: list[str]) -> Callable[[Arrival], Answer]:
    def answer(arrival: Arrival) -> Answer:
        seen.append(arrival.path)
        return Answer(503) if seen.count("/update") == 1 and arrival.path == "/update" else Answer()

    return answer


async def test_a_users_requests_parted_by_lookups_go_in_order_and_wait_for_a_retry(
    database_url: str,
) -> None:
    plugin = dataclasses.replace(BATCHING, resolve=_by_number, batch_key=lambda r: r.url)
    seen: list[str] = []
    with Sink(_update_fails_once(seen)) as sink:
        target = batching(plugin, sink.url)
        _insert_jobs(database_url, target.id, [("u", 0), ("u", 1)], sink.url)
        async with running(database_url, target):
            await until(lambda: len(sink.delivered) == 2)
    # u's second event (a create) waited for its first (an update) to be delivered.
    assert seen == ["/update", "/update", "/create"]
    assert states(database_url) == {"u-0": ["retry", "delivered"], "u-1": ["delivered"]}


def _tried_before(url: str, message_id: str, states: list[str]) -> None:
    """Attempt rows of an earlier run (the last one due again now, if a retry)."""
    with psycopg.connect(url) as conn:
        for attempt, state in enumerate(states, 1):
            conn.execute(
                "INSERT INTO job_attempts (job_id, job_created_at, destination_id, attempt, state,"
                " at, next_retry_at) SELECT id, created_at, destination_id, %s, %s,"
                " now() - interval '1 hour', CASE WHEN %s = 'retry' THEN now() END"
                " FROM jobs WHERE message_id = %s",
                (attempt, state, state, message_id),
            )


def _b_fails(arrival: Arrival) -> Answer:
    return Answer(503, body="down\x00now") if arrival.json()["u"] == "b" else Answer()


async def test_a_router_skips_the_jobs_an_earlier_run_settled_and_resumes_the_budget_of_others(
    database_url: str,
) -> None:
    with Sink(_b_fails) as sink:
        target = dataclasses.replace(
            batching(dataclasses.replace(BATCHING, batch_size=1), sink.url),
            policy=DeliveryPolicy(concurrency=2, retry_hours=0, min_attempts=3,
                                  min_backoff_seconds=0.05, max_backoff_seconds=0.1),
        )  # fmt: skip
        _insert_jobs(database_url, target.id, [("a", 0), ("b", 0), ("c", 0)], sink.url)
        _tried_before(database_url, "a-0", ["delivered"])
        _tried_before(database_url, "b-0", ["retry", "retry"])
        async with running(database_url, target):
            await until(lambda: states(database_url).get("b-0", [])[-1:] == ["aborted"]
                        and states(database_url).get("c-0") == ["delivered"])  # fmt: skip
    # a was not sent again; b, tried twice before, had its third and last try.
    assert sorted(arrival.json()["u"] for arrival in sink.arrivals) == ["b", "c"]
    assert states(database_url) == {
        "a-0": ["delivered"], "b-0": ["retry", "retry", "aborted"], "c-0": ["delivered"]
    }  # fmt: skip
    with psycopg.connect(database_url) as conn:
        error, response = conn.execute(
            "SELECT error, response FROM job_attempts WHERE state = 'aborted'"
        ).fetchone() or ("", "")
    # The answer's NUL, which PostgreSQL text cannot hold, is kept as U+FFFD.
    assert error == "HTTP 503; gave up after 3 attempts" and response == "down\ufffdnow"
