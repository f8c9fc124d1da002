"""Which jobs of a batching destination share a request (engine.pipeline.delivery.batching)."""

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec

from engine.destinations.base import DestinationType, Request
from engine.pipeline.delivery import batching
from engine.position import Position


class Settings(msgspec.Struct):
    pass


def _map(event: dict[str, Any], settings: Any, now: datetime) -> list[Request]:
    return []


def _combine(requests: Sequence[Request]) -> Request:
    return Request("POST", requests[0].url, body=[r.body for r in requests])


PLUGIN = DestinationType("b", "B", Settings, _map, batch_size=10, combine=_combine)


@dataclass(eq=False)
class Job:
    position: Position
    request: str
    user_key: str = "u"
    alone: bool = False
    key: str | None = batching.UNKNOWN


def jobs(*texts: str, users: str = "") -> list[Job]:
    """A job per text, each of its own user unless `users` names them (a letter per job)."""
    return [
        Job(Position(0, n), json.dumps({"method": "POST", "url": "https://x", "body": t},
                                       ensure_ascii=False), users[n] if users else f"u{n}")
        for n, t in enumerate(texts)
    ]  # fmt: skip


def test_the_size_limit_counts_bytes_as_they_travel_not_characters() -> None:
    plugin = dataclasses.replace(PLUGIN, batch_bytes=1000)
    groups = batching.batches(plugin, jobs("é" * 300, "é" * 300))  # 600 bytes each
    assert [len(taken) for taken, _ in groups] == [1, 1]
    groups = batching.batches(plugin, jobs("e" * 300, "e" * 300))
    assert [len(taken) for taken, _ in groups] == [2]


def test_a_request_carries_its_jobs_in_commit_order() -> None:
    made = jobs("a", "b", "c")
    [(taken, requests)] = batching.batches(PLUGIN, [made[2], made[0], made[1]])
    assert taken == made and [r.body for r in requests] == ["a", "b", "c"]


def test_a_users_run_is_never_split_between_requests_sent_at_once() -> None:
    plugin = dataclasses.replace(PLUGIN, batch_bytes=300)
    a0, b0, a1, a2 = jobs("a" * 80, "b" * 80, "a" * 80, "a" * 80, users="abaa")
    together = batching.together(plugin)
    assert together is not None
    assert together(a0, a1)  # two of ~127 bytes fit in 300
    assert not together(a0, a2)  # a third would not: the run stops there
    groups = batching.batches(plugin, [a0, a1, b0])  # as take gives them: a's run, then b
    assert [[j.user_key for j in taken] for taken, _ in groups] == [["a", "a"], ["b"]]
