"""Which jobs of a batching destination travel together, and the request they make.

Shared by the router, which sends what it takes from its queues, and the preview, which shows
what the router would send for a list of events. Jobs combine when their stored requests have
the same batch key (the plug-in's: the endpoint and credentials, usually) and fit the
destination's size limits; a user's consecutive jobs with the same key may go in one request,
in their order, so that a user who sends fast still gets batches.
"""

from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

from engine.destinations.base import DestinationType, Request, decode_request
from engine.position import Position

UNKNOWN = "\0unknown"  # a job's batch key before it is first needed


class Batchable(Protocol):
    position: Position  # commit order: a request carries its jobs in this order
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
    """Whether a user's next job may travel with their first (None: never)."""
    if size(plugin) == 1 or plugin is None:
        return None

    def same(first: B, then: B) -> bool:
        first_key = key(plugin, first)
        return first_key is not None and first_key == key(plugin, then)

    return same


def batches(plugin: DestinationType, jobs: Sequence[B]) -> list[tuple[list[B], list[Request]]]:
    """Jobs taken together, split into the requests they can share: same batch key, and within
    the destination's size limits. A job whose request takes no part in batches goes alone."""
    groups: dict[str, list[tuple[list[B], list[Request]]]] = {}
    used: dict[str, int] = {}  # bytes in each key's last chunk
    alone: list[tuple[list[B], list[Request]]] = []
    for job in sorted(jobs, key=lambda j: j.position):
        request = decode_request(job.request)
        found = key(plugin, job)
        if found is None:
            alone.append(([job], [request]))
            continue
        chunks = groups.setdefault(found, [])
        size = _bytes(job.request)
        if not chunks or used[found] + size > plugin.batch_bytes:
            chunks.append(([], []))
            used[found] = 0
        chunks[-1][0].append(job)
        chunks[-1][1].append(request)
        used[found] += size
    return alone + [(taken, requests) for chunks in groups.values() for taken, requests in chunks]


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
