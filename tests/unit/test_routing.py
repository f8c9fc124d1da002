"""From events to jobs: filters, the transformation seam, mapping failures one by one."""

import dataclasses
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

from engine.destinations.base import DestinationType, Request
from engine.pipeline.processing.mapping import Event, route
from engine.pipeline.topology import Route, Target, Topology
from engine.specs import DestinationSpec
from engine.store.jobs import BUNDLE_EVENTS
from engine.transformations.seam import Metadata, Transformed

SOURCE = uuid4()


def dest(kind: str = "webhook", **config: Any) -> Target:
    if kind == "webhook":
        config.setdefault("webhookUrl", "https://example.com/in")
    return Target.of(DestinationSpec(name=f"{kind}-dest", type=kind, config=config), uuid4())


def events(*payloads: dict[str, Any]) -> list[Event]:
    now = datetime.now(UTC)
    return [
        Event(1, i + 1, 0, SOURCE, now, f"m{i}", {"userId": "u", **p})
        for i, p in enumerate(payloads)
    ]


def topology(*routes: Route) -> Topology:
    return Topology({r.target.id: r.target for r in routes}, {SOURCE: list(routes)})


async def test_each_connected_destination_gets_a_job_per_event_in_order() -> None:
    a, b = dest(), dest()
    routed = await route(
        events({"type": "track", "event": "A"}, {"type": "identify"}),
        topology(Route(a, None, None), Route(b, None, None)),
        Doubling(),
    )
    assert [(j.destination_id, j.ingest_id) for j in routed.jobs] == [
        (a.id, 1), (b.id, 1), (a.id, 2), (b.id, 2)
    ]  # fmt: skip
    assert json.loads(routed.jobs[0].request)["body"]["event"] == "A"
    assert routed.jobs[0].event_name == "A" and routed.jobs[2].event_type == "identify"


async def test_filtered_events_make_no_job_and_are_counted() -> None:
    only = dest(eventFilteringOption="whitelistedEvents", whitelistedEvents=[{"eventName": "A"}])
    routed = await route(
        events({"type": "track", "event": "A"}, {"type": "track", "event": "B"}),
        topology(Route(only, None, None)),
        Doubling(),
    )
    assert [j.ingest_id for j in routed.jobs] == [1]
    assert routed.counts[SOURCE, only.id, "filtered"] == 1


async def test_an_event_the_mapping_refuses_fails_alone_with_the_reason() -> None:
    hook = dest()
    routed = await route(
        events({"type": "track", "header": {"X": "a\nb"}}, {"type": "track"}),
        topology(Route(hook, None, None)),
        Doubling(),
    )
    failed, ok = routed.jobs
    assert failed.error is not None and "not a valid HTTP header" in failed.error
    assert failed.request == "null"
    assert ok.error is None
    assert routed.counts[SOURCE, hook.id, "aborted"] == 1


def _exploding_map(event: dict[str, Any], settings: Any, now: datetime) -> list[Request]:
    if event.get("boom"):
        raise KeyError("surprise")
    return [Request("POST", "https://example.com", body=event)]


async def test_a_mapping_that_raises_fails_that_event_only() -> None:
    broken = DestinationType(name="webhook", title="Broken", settings=dest().plugin.settings,  # type: ignore[union-attr]
                         map=_exploding_map)  # fmt: skip
    good = dest()
    bad = Target(**{**good.__dict__, "id": uuid4(), "plugin": broken})
    routed = await route(
        events({"type": "track", "boom": True}, {"type": "track"}),
        topology(Route(bad, None, None)),
        Doubling(),
    )
    assert routed.jobs[0].error is not None and "KeyError" in routed.jobs[0].error
    assert routed.jobs[1].error is None


async def test_a_destination_type_without_a_plug_in_fails_its_jobs_visibly() -> None:
    unknown = dest("nosuch")
    routed = await route(
        events({"type": "track"}), topology(Route(unknown, None, None)), Doubling()
    )
    assert (
        routed.jobs[0].error == "this version of Sluice cannot deliver to nosuch destinations yet"
    )


class Doubling:
    """A stand-in runtime: drops `drop` events, doubles the rest, fails `fail` ones."""

    async def run(
        self, version: int, batch: Sequence[tuple[dict[str, Any], Metadata]]
    ) -> list[Transformed]:
        out = []
        for event, meta in batch:
            if event.get("fail"):
                out.append(Transformed([], "TypeError: x is undefined (line 3)"))
            elif event.get("drop"):
                out.append(Transformed([]))
            else:
                out.append(Transformed([event, {**event, "copy": meta.message_id}]))
        return out


async def test_transformations_drop_fan_out_and_fail_per_event() -> None:
    hook = dest()
    routed = await route(
        events({"type": "track", "drop": True}, {"type": "track", "fail": True}, {"type": "track"}),
        topology(Route(hook, UUID(int=1), 7)),
        Doubling(),
    )
    assert routed.counts[SOURCE, hook.id, "dropped"] == 1
    failed, *sent = routed.jobs
    assert failed.error == "transformation failed: TypeError: x is undefined (line 3)"
    assert [json.loads(j.request)["body"].get("copy") for j in sent] == [None, "m2"]


async def test_a_file_destination_gets_one_bundle_per_partition_naming_its_events() -> None:
    lake = dest("s3", bucketName="events-bucket", accessKeyID="AKIA1", accessKey="s3cret")
    assert lake.problem is None
    batch = [
        dataclasses.replace(e, partition=p)
        for e, p in zip(
            events({"type": "track", "n": 1}, {"type": "track", "fail": True},
                   {"type": "track", "n": 3}, {"type": "identify", "n": 4}),
            (0, 0, 5, 0),
            strict=True,
        )
    ]  # fmt: skip
    routed = await route(batch, topology(Route(lake, UUID(int=1), 7)), Doubling())
    # In the order of each one's first event: the partition 0 bundle, the failure, partition 5.
    zero, failed, five = routed.jobs
    assert failed.error is not None and failed.ingest_id == 2 and failed.events == 1
    assert (zero.partition, zero.events, zero.member_ids, zero.ingest_id) == (0, 4, "{1,4}", 1)
    assert (five.partition, five.events, five.member_ids, five.ingest_id) == (5, 2, "{3}", 3)
    assert zero.member_txs == "{1,1}" and zero.message_id == "m0"
    body = json.loads(zero.request)["body"]
    assert [(e.get("n"), e.get("copy")) for e in body] == [(1, None), (1, "m0"), (4, None),
                                                           (4, "m3")]  # fmt: skip


async def test_a_bundle_holds_at_most_bundle_events_and_the_rest_follow_in_order() -> None:
    lake = dest("s3", bucketName="events-bucket", accessKeyID="AKIA1", accessKey="s3cret")
    batch = events(*({"type": "track", "n": n} for n in range(BUNDLE_EVENTS * 2 + 50)))
    routed = await route(batch, topology(Route(lake, None, None)), Doubling())
    assert [job.events for job in routed.jobs] == [BUNDLE_EVENTS, BUNDLE_EVENTS, 50]
    bodies = [e["n"] for job in routed.jobs for e in json.loads(job.request)["body"]]
    assert bodies == list(range(BUNDLE_EVENTS * 2 + 50))
