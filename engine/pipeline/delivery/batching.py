"""Which jobs of a batching destination travel together, and the request they make.

Shared by the router, which sends what it takes from its queues, and the preview, which shows
what the router would send for a list of events. Jobs combine when their stored requests have
the same batch key (the plug-in's: the endpoint and credentials, usually) and fit the
destination's size limits; a user's consecutive jobs with the same key may go in one request,
in their order, so that a user who sends fast still gets batches.
"""

from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

from engine.destinations.base import DestinationType, Request, decode_request
from engine.position import Position

UNKNOWN = "\0unknown"  # a job's batch key before it is first needed


class Batchable(Protocol):
    position: Position  # commit order: a request carries its jobs in this order
    user_key: str
    request: str  # as stored
    alone: bool  # goes in a request of its own whatever its key (after a 413, say)
    key: str | None  # its batch key, once known (UNKNOWN before)


B = TypeVar("B", bound=Batchable)


def size(plugin: DestinationType | None) -> int:
    """How many jobs one request may carry."""
    return plugin.batch_size if plugin is not None and plugin.combine is not None else 1


def key(plugin: DestinationType, job: Batchable) -> str | None:
    """The job's batch key (None: it travels alone), worked out once."""
    if job.key == UNKNOWN:
        job.key = None if job.alone else plugin.batch_key(decode_request(job.request))
    return None if job.alone else job.key


def together(plugin: DestinationType | None) -> Callable[[B, B], bool] | None:
    """Whether a user's next job may travel with their first (None: never): the same batch key,
    and the user's run of jobs within the size limit, so that it always fits one request."""
    if size(plugin) == 1 or plugin is None:
        return None
    run: list[Any] = [None, 0]  # the run's first job, and its bytes so far

    def same(first: B, then: B) -> bool:
        first_key = key(plugin, first)
        if first_key is None or first_key != key(plugin, then):
            return False
        if run[0] is not first:
            run[0], run[1] = first, _bytes(first.request)
        if run[1] + _bytes(then.request) > plugin.batch_bytes:
            return False
        run[1] += _bytes(then.request)
        return True

    return same


def batches(plugin: DestinationType, jobs: Sequence[B]) -> list[tuple[list[B], list[Request]]]:
    """Jobs taken together, split into the requests they can share: same batch key, and within
    the destination's size limits. A job whose request takes no part in batches goes alone. A
    user's run of jobs (`together`) is never split between requests, which would be sent at the
    same time; each request carries its jobs in commit order."""
    chunks: dict[str, list[tuple[list[B], int]]] = {}  # per key: (jobs, bytes)
    alone: list[tuple[list[B], list[Request]]] = []
    for run in _runs(plugin, jobs):
        found = key(plugin, run[0])
        if found is None:
            alone.append((run, [decode_request(run[0].request)]))
            continue
        size = sum(_bytes(job.request) for job in run)
        held = chunks.setdefault(found, [])
        if not held or held[-1][1] + size > plugin.batch_bytes:
            held.append(([], 0))
        held[-1] = (held[-1][0] + run, held[-1][1] + size)
    made = alone
    for held in chunks.values():
        for taken, _ in held:
            ordered = sorted(taken, key=lambda j: j.position)
            made.append((ordered, [decode_request(job.request) for job in ordered]))
    return made


def _runs(plugin: DestinationType, jobs: Sequence[B]) -> list[list[B]]:
    """The jobs as `take` gave them, cut into each user's runs: consecutive jobs of one user
    with one batch key (a job that travels alone is a run of its own)."""
    runs: list[list[B]] = []
    for job in jobs:
        last = runs[-1][-1] if runs else None
        found = key(plugin, job)
        if (
            last is not None
            and found is not None
            and last.user_key == job.user_key
            and key(plugin, last) == found
        ):
            runs[-1].append(job)
        else:
            runs.append([job])
    return runs


def _bytes(text: str) -> int:
    """A stored request's size as it travels (UTF-8), which vendors' limits count."""
    return len(text) if text.isascii() else len(text.encode())


def regrouped(
    plugin: DestinationType, pairs: Sequence[tuple[B, Request]]
) -> list[tuple[list[B], list[Request]]]:
    """Jobs and their requests completed by look-ups, regrouped by the completed requests'
    batch keys: jobs that shared a request may no longer (HubSpot: a create and an update)."""
    groups: dict[str, tuple[list[B], list[Request]]] = {}
    for n, (job, request) in enumerate(pairs):
        found = None if job.alone else plugin.batch_key(request)
        group = groups.setdefault(found if found is not None else f"\0{n}", ([], []))
        group[0].append(job)
        group[1].append(request)
    return list(groups.values())


def outgoing(plugin: DestinationType, requests: Sequence[Request]) -> Request:
    """The one request sent for jobs that travel together."""
    if plugin.combine is None or plugin.batch_key(requests[0]) is None:
        [request] = requests  # (a request that never travels in a batch keeps its shape)
        return request
    return plugin.combine(requests)  # a batching destination's shape, even for a batch of one
