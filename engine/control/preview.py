"""What a destination's mapping would send for an event, without sending anything.

Used by `sluice preview` and by the UI's "send test event". Secrets in the request (API keys
in headers, URLs or bodies) are masked. Where the vendor has an endpoint that validates
requests without recording them (GA4), `validate` asks it. For a list of events, `batched`
shows the requests the router would send, batched as it batches them.
"""

import asyncio
import contextlib
import dataclasses
import gzip
import ipaddress
import socket
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

import msgspec

from engine import codec
from engine.db import Connection
from engine.destinations.base import (
    Files,
    FilesContext,
    LookupFailed,
    Lookups,
    Origin,
    Request,
    Unsendable,
    Validation,
    Verdict,
)
from engine.errors import SluiceError
from engine.partitions import user_key
from engine.pipeline import topology
from engine.pipeline.delivery import batching
from engine.pipeline.delivery.lookups import Asking
from engine.pipeline.delivery.ordering import UserQueues
from engine.pipeline.delivery.sender import MalformedRequest, Sender, TransportError
from engine.pipeline.topology import Target
from engine.position import Position
from engine.specs import DestinationSpec
from engine.warehouses.warehouse import WarehouseError, WarehouseKind


class PreviewError(SluiceError):
    pass


_NOT_TAKEN = "{} does not take this event (its type or event filters)"


async def destination(conn: Connection, name: str) -> Target:
    found = await topology.named(conn, name)
    if found is None:
        raise PreviewError(f"no destination named {name!r}")
    return found


def unsaved(kind: str, config: dict[str, Any]) -> Target:
    """A destination of type `kind` with these settings, as if it were configured."""
    return Target.of(DestinationSpec(name=kind, type=kind, config=config))


async def of_destination(conn: Connection, name: str, event: Any) -> list[Request]:
    return requests(await destination(conn, name), event)


def of_type(
    kind: str, config: dict[str, Any], event: Any, now: datetime | None = None
) -> list[Request]:
    return requests(unsaved(kind, config), event, now)


def requests(dest: Target, event: Any, now: datetime | None = None) -> list[Request]:
    """The requests for `event` as they would be sent at `now` (default: now), secrets masked."""
    return [dest.masked(request) for request in _made(dest, event, now)]


def _made(dest: Target, event: Any, now: datetime | None) -> list[Request]:
    if not isinstance(event, dict):
        raise PreviewError("the event must be a JSON object")
    if dest.problem is not None or dest.plugin is None:
        raise PreviewError(dest.problem or "no destination plug-in")
    if not dest.filter.admits(event):
        raise PreviewError(_NOT_TAKEN.format(dest.name))
    try:
        return dest.plugin.requests(event, dest.settings, now or datetime.now(UTC), Origin(dest.id))
    except Unsendable as exc:
        raise PreviewError(f"{dest.name} cannot send this event: {exc}") from None


async def completed(
    dest: Target, event: Any, now: datetime | None = None, lookups: Lookups | None = None
) -> list[Request]:
    """The requests for `event`, completed with the vendor's answers to the look-ups they need
    (`lookups`, else the vendor is asked), secrets masked."""
    made = _made(dest, event, now)
    assert dest.plugin is not None
    if dest.plugin.resolve is None:
        return [dest.masked(request) for request in made]
    async with _asking(dest, lookups) as asking:
        return [dest.masked(await _complete(dest, request, asking)) for request in made]


@contextlib.asynccontextmanager
async def _asking(dest: Target, lookups: Lookups | None) -> AsyncIterator[Lookups]:
    """The look-up answers given, or the vendor asked through a sender of its own."""
    if lookups is not None:
        yield lookups
        return
    sender = Sender()
    await sender.start()
    try:
        yield Asking(sender, dest.policy.timeout_seconds, dest.mask, writes=False)
    finally:
        await sender.close()


async def _complete(dest: Target, request: Request, lookups: Lookups) -> Request:
    assert dest.plugin is not None and dest.plugin.resolve is not None
    try:
        return await dest.plugin.resolve(request, dest.settings, lookups)
    except LookupFailed as exc:
        raise PreviewError(f"{dest.name}: {dest.mask(str(exc))}") from None
    except Unsendable as exc:
        raise PreviewError(f"{dest.name} cannot send this event: {dest.mask(str(exc))}") from None


class Refusal(msgspec.Struct):
    """Why an event makes no request: `status` 400, as a permanent failure is reported."""

    status: int
    message: str


class Batch(msgspec.Struct, omit_defaults=True):
    """What the router would do with some of the events (their positions in the list): send
    these requests, or nothing — the event is refused, or filtered (not for this destination)."""

    event_indices: list[int]
    requests: list[Request] = []
    error: Refusal | None = None
    filtered: str | None = None


@dataclass(eq=False)
class _Job:
    """An event's request as a job in the router's queues."""

    index: int
    position: Position
    user_key: str
    request: str
    alone: bool = False
    key: str | None = batching.UNKNOWN


async def batched(
    dest: Target,
    events: list[Any],
    now: datetime | None = None,
    lookups: Lookups | None = None,
    mapped_by: Mapping[int, Target] = MappingProxyType({}),
) -> list[Batch]:
    """The requests the router would send for `events` (in arrival order, all waiting at
    once, each request answered before the user's next), completed with the answers to their
    look-ups (`lookups`, else the vendor is asked), secrets masked. `mapped_by` names events
    mapped while the destination had other settings (index → the destination then): their
    jobs wait in the same queue, as after a change of settings."""
    if dest.problem is not None or dest.plugin is None:
        raise PreviewError(dest.problem or "no destination plug-in")
    plugin, at = dest.plugin, now or datetime.now(UTC)
    shown: list[Batch] = []
    queues: UserQueues[_Job] = UserQueues()
    earlier = tuple(secret for then in mapped_by.values() for secret in then.secrets)
    dest = dataclasses.replace(dest, secrets=dest.secrets + earlier)  # all masked
    for index, event in enumerate(events):
        if isinstance(event, dict) and not dest.filter.admits(event):
            shown.append(Batch([index], filtered=_NOT_TAKEN.format(dest.name)))
            continue
        try:
            made = _made(mapped_by.get(index, dest), event, at)
        except PreviewError as exc:
            shown.append(Batch([index], error=Refusal(400, str(exc))))
            continue
        user = user_key(event) or ""
        for request in made:
            text = codec.encode(request).decode()
            queues.add(_Job(index, Position(0, len(queues)), user, text))
    together = batching.together(plugin)
    async with _asking(dest, lookups) as asking:
        while taken := queues.take(batching.size(plugin), together):
            for jobs, requests in batching.batches(plugin, taken):
                shown += await _sent(dest, jobs, requests, asking)
            for job in taken:
                queues.done(job)
    return shown


async def _sent(
    dest: Target, jobs: list[_Job], requests: list[Request], lookups: Lookups
) -> list[Batch]:
    """The batches jobs taken together make: their requests completed by look-ups (which may
    split them), or refused."""
    assert dest.plugin is not None
    plugin, shown = dest.plugin, []
    groups = [(jobs, requests)]
    if plugin.resolve is not None:
        completed = []
        for job, request in zip(jobs, requests, strict=True):
            try:
                completed.append((job, await plugin.resolve(request, dest.settings, lookups)))
            except Unsendable as exc:
                message = f"{dest.name} cannot send this event: {dest.mask(str(exc))}"
                shown.append(Batch([job.index], error=Refusal(400, message)))
            except LookupFailed as exc:
                raise PreviewError(f"{dest.name}: {dest.mask(str(exc))}") from None
        groups = batching.regrouped(plugin, completed)
    for grouped, made in groups:
        indices = sorted({job.index for job in grouped})
        shown.append(Batch(indices, [dest.masked(batching.outgoing(plugin, made))]))
    return shown


class Checked(msgspec.Struct):
    """A request as the vendor's validation endpoint judged it: no messages, no problem."""

    request: Request
    status: int | None
    messages: list[str]


async def validate(dest: Target, event: Any) -> list[Checked]:
    """Send the event's requests to the vendor's validation endpoint (GA4's debug endpoint),
    which checks them without recording anything, and say what it found."""
    made = _made(dest, event, None)
    assert dest.plugin is not None
    validation = dest.plugin.validation
    if validation is None:
        raise PreviewError(f"{dest.plugin.title} has no validation endpoint to ask")
    sender = Sender()
    await sender.start()
    try:
        return [await _check(sender, dest, validation, request) for request in made]
    finally:
        await sender.close()


async def _check(sender: Sender, dest: Target, validation: Validation, request: Request) -> Checked:
    try:
        answer = await sender.send(validation.request(request), dest.policy.timeout_seconds)
    except (TransportError, MalformedRequest) as exc:
        return Checked(dest.masked(request), None, [dest.mask(f"no answer: {exc}")])
    if not 200 <= answer.status < 300:
        messages = [dest.mask(f"HTTP {answer.status}: {answer.excerpt}")]
    else:
        messages = [dest.mask(m) for m in validation.messages(answer.body)]
    return Checked(dest.masked(request), answer.status, messages)


class Tried(msgspec.Struct):
    """A request sent for real (the UI's "send test event") and what the vendor said of it."""

    request: Request  # secrets masked
    status: int | None
    verdict: str  # delivered, retry or aborted, by the destination's own reading of the answer
    answer: str  # the vendor's answer (its start), the error, or where a file was stored


async def send(dest: Target, event: Any, *, private_hosts: bool = False) -> list[Tried]:
    """Send the event's requests to the vendor, once each, without retries or jobs; a file
    destination stores a file of the event (under the all-zero source id).

    The answer is shown to whoever asked, so a request to this host's own network is refused
    unless `private_hosts` allows it, and one to a link-local address (where clouds serve
    their instance credentials) always: else a test event would read internal services."""
    made = _made(dest, event, None)
    assert dest.plugin is not None
    if dest.plugin.warehouse is not None:
        return [await _connect(dest, dest.plugin.warehouse, made)]
    if dest.plugin.files is not None:
        return [await _store(dest, dest.plugin.files, made)]
    sender = Sender()
    await sender.start()
    try:
        asking = Asking(sender, dest.policy.timeout_seconds, dest.mask)
        tried = []
        for request in made:
            refusal = await _refusal(request.url, private_hosts)
            if refusal is not None:
                tried.append(Tried(dest.masked(request), None, Verdict.ABORT.value, refusal))
            elif dest.plugin.resolve is not None:  # (its look-ups go to the same vendor)
                tried.append(await _completed_and_sent(sender, dest, request, asking))
            else:
                tried.append(await _send(sender, dest, request))
        return tried
    finally:
        await sender.close()


async def _refusal(url: str, private_hosts: bool) -> str | None:
    """Why a test request must not go to `url`, or None when it may."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        found = await asyncio.to_thread(socket.getaddrinfo, host, parts.port or 443)
    except (OSError, UnicodeError):
        return None  # the send itself will say the host is unknown
    for *_, address in found:
        ip = ipaddress.ip_address(str(address[0]).split("%")[0])
        if ip.is_link_local or (ip.is_multicast or ip.is_unspecified):
            return f"not sent: {host} is a link-local or special address ({ip})"
        if not private_hosts and (ip.is_private or ip.is_loopback or ip.is_reserved):
            return (
                f"not sent: {host} is on this host's own network ({ip}); test events go to"
                " public addresses unless SLUICE_WEB_TEST_PRIVATE_HOSTS=true"
            )
    return None


async def _completed_and_sent(
    sender: Sender, dest: Target, request: Request, lookups: Lookups
) -> Tried:
    assert dest.plugin is not None and dest.plugin.resolve is not None
    try:
        complete = await dest.plugin.resolve(request, dest.settings, lookups)
    except LookupFailed as exc:
        return Tried(dest.masked(request), None, Verdict.RETRY.value, dest.mask(str(exc)))
    except Unsendable as exc:
        return Tried(dest.masked(request), None, Verdict.ABORT.value, dest.mask(str(exc)))
    return await _send(sender, dest, complete)


async def _send(sender: Sender, dest: Target, stored: Request) -> Tried:
    """The request sent as the router sends it (a batching destination's in its batch shape)."""
    assert dest.plugin is not None
    request = batching.outgoing(dest.plugin, [stored])
    try:
        answer = await sender.send(request, dest.policy.timeout_seconds)
    except (TransportError, MalformedRequest) as exc:
        return Tried(
            dest.masked(request), None, Verdict.RETRY.value, dest.mask(f"no answer: {exc}")
        )
    judged = dest.plugin.judge(answer.status, answer.body, [stored])
    verdict = judged if isinstance(judged, Verdict) else judged[0].verdict
    return Tried(dest.masked(request), answer.status, verdict.value, dest.mask(answer.excerpt))


async def _connect(dest: Target, kind: WarehouseKind, made: list[Request]) -> Tried:
    """A warehouse is not sent test rows (they would stay in its tables): its connection is
    tried, and the rows the event would become are shown."""
    shown = dest.masked(made[0]) if made else Request("PUT", "warehouse://")
    try:
        async with kind.open(dest.settings) as warehouse:
            namespace = dest.settings.schema(kind.provider)
            tables = await warehouse.tables(namespace) if namespace else {}
    except WarehouseError as exc:
        return Tried(shown, None, Verdict.RETRY.value, dest.mask(str(exc)))
    said = "connected; nothing was loaded (rows load on the destination's schedule)"
    if namespace:
        said += f"; schema {namespace} has {len(tables)} table(s)"
    return Tried(shown, None, Verdict.DELIVERED.value, said)


async def _store(dest: Target, files: Files, made: list[Request]) -> Tried:
    key = files.key(dest.settings, UUID(int=0), datetime.now(UTC), 0)
    body = gzip.compress(b"".join(codec.encode(r.body) + b"\n" for r in made))
    async with contextlib.aclosing(files.uploads(FilesContext(dest.id))) as uploads:
        stored = await uploads.store(dest.settings, key, body)
    said = stored.error if stored.error is not None else f"stored as {key}"
    return Tried(dest.masked(made[0]), stored.status, stored.verdict.value, dest.mask(said))
