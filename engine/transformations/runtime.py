"""User transformations: RudderStack-style JavaScript, run in sandbox processes.

Each transformation version gets its own sandbox (`engine.transformations.sandbox`): a process
holding a V8 isolate, started once and reused, stopped after it has been idle a while. User code
never runs in the worker's process, cannot see another transformation's state, the network or
the filesystem, and is held to a time and a memory limit per call. Events go through in chunks,
one call per chunk, so the JSON crossing is paid once per chunk; when a chunk fails on a limit
or breaks its sandbox, its events are run one by one so that only the guilty event fails, and a
sandbox that is no longer fit is replaced.
"""

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from engine import codec
from engine.transformations.process import BadCode, Sandbox, SandboxFailed, describe
from engine.transformations.seam import Metadata, Transformed
from engine.transformations.store import NoSuchVersion

log = logging.getLogger(__name__)
_WHERE = re.compile(r"transformation\.js:(\d+):(\d+)")
_GIVE_UP = 3  # single events in a row over a limit before the rest of a chunk is not tried
_IDLE = 600.0  # seconds a sandbox is kept without calls
TIME_LIMIT = 4.0  # seconds per call: RudderStack's
MEMORY_LIMIT = 128 * 1024 * 1024  # bytes of V8 heap per sandbox (see the sandbox for the rest)
MAX_EVENTS = 200  # events a transformation may make of one event


class _Result(msgspec.Struct):
    events: list[Any] = []
    error: str | None = None
    logs: list[str] = []
    batch: bool = False  # made by transformBatch: outputs attributed to inputs by messageId


_results = msgspec.json.Decoder(list[_Result], float_hook=codec.number_text)


@dataclass
class _Slot:
    """A version's sandbox (or why its code was refused), and the lock that keeps its calls one
    at a time."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    sandbox: Sandbox | BadCode | None = None
    used: float = field(default_factory=time.monotonic)


class JavaScript:
    """The transformation runtime the processor calls (see `engine.transformations.seam`)."""

    def __init__(
        self,
        code_of: Callable[[int], Awaitable[str]],
        *,
        time_limit: float = TIME_LIMIT,
        memory_limit: int = MEMORY_LIMIT,
        max_events: int = MAX_EVENTS,
        chunk: int = 500,
    ) -> None:
        self._code_of = code_of
        self._time_limit = time_limit
        self._memory_limit = memory_limit
        self._max_events = max_events
        self._chunk = chunk
        self._slots: dict[int, _Slot] = {}
        self._sweeper: asyncio.Task[None] | None = None

    async def run(
        self, version: int, events: Sequence[tuple[dict[str, Any], Metadata]]
    ) -> list[Transformed]:
        try:
            code = await self._code_of(version)
        except NoSuchVersion as exc:  # (a database error propagates: the batch is retried)
            return [Transformed([], str(exc)) for _ in events]
        if self._sweeper is None:
            self._sweeper = asyncio.create_task(self._sweep(), name="transformation-sandboxes")
        slot = self._slots.setdefault(version, _Slot())
        out: list[Transformed] = []
        async with slot.lock:
            for start in range(0, len(events), self._chunk):
                out += await self._chunked(slot, code, events[start : start + self._chunk])
            slot.used = time.monotonic()
        return out

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
        slots, self._slots = self._slots, {}
        for slot in slots.values():
            async with slot.lock:
                await _stop(slot)

    async def _sweep(self) -> None:
        """Stop the sandboxes of versions no longer called (code replaced by a newer version,
        a connection removed)."""
        while True:
            await asyncio.sleep(_IDLE / 4)
            horizon = time.monotonic() - _IDLE
            for version, slot in list(self._slots.items()):
                if slot.used < horizon and not slot.lock.locked():
                    del self._slots[version]
                    await _stop(slot)

    async def _sandbox(self, slot: _Slot, code: str) -> Sandbox:
        if isinstance(slot.sandbox, Sandbox) and not slot.sandbox.alive:
            await _stop(slot)  # it ended between calls (killed, say): not this call's doing
        if slot.sandbox is None:
            try:
                slot.sandbox = await Sandbox.start(
                    code, time_limit=self._time_limit, memory_limit=self._memory_limit
                )
            except BadCode as exc:
                slot.sandbox = exc
        if isinstance(slot.sandbox, BadCode):
            raise slot.sandbox
        return slot.sandbox

    async def _chunked(
        self,
        slot: _Slot,
        code: str,
        events: Sequence[tuple[dict[str, Any], Metadata]],
        tries: int = 2,
    ) -> list[Transformed]:
        try:
            return _capped(await self._call(slot, code, events), self._max_events)
        except BadCode as exc:
            return [Transformed([], f"the code does not compile: {exc}") for _ in events]
        except SandboxFailed as exc:
            if len(events) == 1 and exc.kind == "crashed" and tries > 1:
                # A crash may come from outside (a signal, the host out of memory): one more
                # try in a fresh sandbox before the event is blamed.
                return await self._chunked(slot, code, events, tries - 1)
            if len(events) == 1:
                what = describe(exc, self._time_limit, self._memory_limit)
                return [Transformed([], f"the transformation {what}")]
        # Something in this chunk went wrong: find which event, one per call.
        out: list[Transformed] = []
        over_limit = 0
        for event in events:
            if over_limit >= _GIVE_UP:  # not hours on end for a chunk of slow events
                out.append(Transformed([], "not run: the events before it kept hitting limits"))
                continue
            [result] = await self._chunked(slot, code, [event])
            hit = result.error is not None and result.error.startswith("the transformation ")
            over_limit = over_limit + 1 if hit else 0
            out.append(result)
        return out

    async def _call(
        self, slot: _Slot, code: str, events: Sequence[tuple[dict[str, Any], Metadata]]
    ) -> list[_Result]:
        items = codec.encode(
            [{"event": event, "metadata": _metadata(meta)} for event, meta in events]
        )
        sandbox = await self._sandbox(slot, code)
        try:
            text = await sandbox.run(items)
            try:
                results = _results.decode(text)
            except msgspec.DecodeError:  # a string cut in the middle of an emoji, perhaps
                results = _results.decode(codec.mended(text.encode()) or text)
        except msgspec.DecodeError as exc:
            sandbox.usable = False  # the driver's answer cannot be trusted any more
            raise SandboxFailed("broken", f"unreadable results ({exc})") from None
        except SandboxFailed:
            raise
        except Exception as exc:  # whatever else goes wrong fails these events, not the worker
            log.exception("transformation sandbox call failed")
            sandbox.usable = False
            raise SandboxFailed("crashed", f"{type(exc).__name__}: {exc}") from None
        finally:
            if not sandbox.usable:
                await _stop(slot)
        if len(results) != len(events):
            await _stop(slot)
            raise SandboxFailed("broken", f"{len(results)} results for {len(events)} events")
        return results


async def _stop(slot: _Slot) -> None:
    sandbox, slot.sandbox = slot.sandbox, None
    if isinstance(sandbox, Sandbox):
        await sandbox.stop()


def _error_text(stack: str) -> str:
    """The error and where it happened in the user's code: 'TypeError: … (line 3:5)'."""
    lines = stack.strip().splitlines()
    where = next((m for line in lines[1:] if (m := _WHERE.search(line))), None)
    return lines[0] + (f" (line {where.group(1)}:{where.group(2)})" if where else "")


def _metadata(meta: Metadata) -> dict[str, str]:
    return {
        "sourceId": str(meta.source_id),
        "destinationId": str(meta.destination_id),
        "destinationType": meta.destination_type,
        "messageId": meta.message_id,
    }


def _capped(results: list[_Result], max_events: int) -> list[Transformed]:
    """The results, but where more events were made than `max_events` of one: transformEvent's
    per event, transformBatch's (whose new events go with the first input) per call."""
    if results and results[0].batch:
        made = sum(len(r.events) for r in results)
        if made > max_events * len(results):
            said = (f"the transformation made {made} events of {len(results)}; at most "
                    f"{max_events} of each may be made (SLUICE_TRANSFORM_MAX_EVENTS)")  # fmt: skip
            return [Transformed([], said, r.logs) for r in results]
        return [_transformed(r) for r in results]
    return [
        Transformed([], f"the transformation made {len(r.events)} events of one; at most "
                    f"{max_events} may be made (SLUICE_TRANSFORM_MAX_EVENTS)", r.logs)
        if len(r.events) > max_events else _transformed(r)
        for r in results
    ]  # fmt: skip


def _transformed(result: _Result) -> Transformed:
    events = [e for e in result.events if isinstance(e, dict)]
    if result.error is not None:
        return Transformed([], _error_text(result.error), result.logs)
    if len(events) != len(result.events):
        return Transformed([], "the transformation returned something that is not an event")
    return Transformed(events, None, result.logs)


async def check(code: str) -> None:
    """Raise BadCode (with the line) unless `code` compiles and defines a transform function;
    SandboxUnavailable if no sandbox can be started to find out."""
    sandbox = await Sandbox.start(code, time_limit=TIME_LIMIT, memory_limit=MEMORY_LIMIT)
    await sandbox.stop()
