"""User transformations: RudderStack-style JavaScript run in V8 isolates (mini-racer).

Each transformation version gets its own isolate, built once and reused: user code never runs
in the Python process's namespace and cannot see another transformation's state, the network or
the filesystem (V8 alone has none of them). Events go through in chunks, one call per chunk, so
the JSON crossing is paid once per chunk. Each call has a time and a memory limit; when a chunk
fails on one, its events are run one by one so that only the guilty event fails, and an isolate
that hit its memory limit is thrown away and built again.

All V8 work happens on one thread of its own: mini-racer calls block, and instances must not be
created inside a running event loop.
"""

import asyncio
import re
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import msgspec
from py_mini_racer import MiniRacer
from py_mini_racer import _exc as js

from engine import codec
from engine.errors import SluiceError
from engine.pipeline.transform import Metadata, Transformed

_DRIVER = Path(__file__).with_name("driver.js").read_text()
# `export function …`, `export default function …`, `export const …`: ES module syntax, which a
# script does not take. Dropping the keyword keeps every line where it was.
_EXPORT = re.compile(r"^(\s*)export\s+(?:default\s+)?(?=(?:async\s+)?function|const|let|var|class)",
                     re.MULTILINE)  # fmt: skip
_LIMIT_ERRORS = (js.JSTimeoutException, js.JSOOMException)
_WHERE = re.compile(r"<anonymous>:(\d+):(\d+)")


class BadCode(SluiceError):
    """Transformation code that does not compile or defines no transformEvent/transformBatch."""


class _Result(msgspec.Struct):
    events: list[Any] = []
    error: str | None = None
    logs: list[str] = []


_results = msgspec.json.Decoder(list[_Result], float_hook=codec.number_text)


class _Isolate:
    def __init__(self, code: str, memory_limit: int) -> None:
        self.context = MiniRacer()
        try:
            self.context.set_hard_memory_limit(memory_limit)
            self.context.eval(_DRIVER)
            self.context.eval(script(code))
            missing = self.context.eval("__sluice.check()")
        except js.JSEvalException as exc:
            self.context.close()
            raise BadCode(_first_line(exc)) from None
        if missing:
            self.context.close()
            raise BadCode(str(missing))

    def run(self, items: bytes, time_limit: float) -> list[_Result]:
        text = self.context.call("__sluice.run", items.decode(), timeout_sec=time_limit)
        return _results.decode(text)

    def close(self) -> None:
        self.context.close()


def script(code: str) -> str:
    """User code as a classic script: ES module `export`s dropped, line numbers kept."""
    return _EXPORT.sub(r"\1", code)


def _first_line(exc: Exception) -> str:
    """V8's message: '<anonymous>:3: SyntaxError: …' then the source line; keep the first."""
    return str(exc).strip().splitlines()[0].replace("<anonymous>:", "line ", 1)


class JavaScript:
    """The transformation runtime the processor calls (see `engine.pipeline.transform`)."""

    def __init__(
        self,
        code_of: Callable[[int], Awaitable[str]],
        *,
        time_limit: float = 4.0,
        memory_limit: int = 128 * 1024 * 1024,
        chunk: int = 500,
    ) -> None:
        self._code_of = code_of
        self._time_limit = time_limit
        self._memory_limit = memory_limit
        self._chunk = chunk
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="v8")
        self._isolates: dict[int, _Isolate | BadCode] = {}

    async def run(
        self, version: int, events: Sequence[tuple[dict[str, Any], Metadata]]
    ) -> list[Transformed]:
        code = await self._code_of(version)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, self._run, version, code, events)

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._thread, self._close_all)
        self._thread.shutdown()

    def _close_all(self) -> None:
        for isolate in self._isolates.values():
            if isinstance(isolate, _Isolate):
                isolate.close()
        self._isolates.clear()

    def _isolate(self, version: int, code: str) -> _Isolate:
        isolate = self._isolates.get(version)
        if isolate is None:
            try:
                isolate = _Isolate(code, self._memory_limit)
            except BadCode as exc:
                isolate = exc
            self._isolates[version] = isolate
        if isinstance(isolate, BadCode):
            raise isolate
        return isolate

    def _run(
        self, version: int, code: str, events: Sequence[tuple[dict[str, Any], Metadata]]
    ) -> list[Transformed]:
        try:
            self._isolate(version, code)
        except BadCode as exc:
            return [Transformed([], f"the code does not compile: {exc}") for _ in events]
        out: list[Transformed] = []
        for start in range(0, len(events), self._chunk):
            out += self._chunked(version, code, events[start : start + self._chunk])
        return out

    def _chunked(
        self, version: int, code: str, events: Sequence[tuple[dict[str, Any], Metadata]]
    ) -> list[Transformed]:
        try:
            return [_transformed(r) for r in self._call(version, code, events)]
        except _LIMIT_ERRORS as exc:
            if len(events) == 1:
                return [Transformed([], self._limit_message(exc))]
        # One of them ran out of time or memory: find which, one event per call.
        return [t for event in events for t in self._chunked(version, code, [event])]

    def _call(
        self, version: int, code: str, events: Sequence[tuple[dict[str, Any], Metadata]]
    ) -> list[_Result]:
        items = codec.encode(
            [{"event": event, "metadata": _metadata(meta)} for event, meta in events]
        )
        isolate = self._isolate(version, code)
        try:
            return isolate.run(items, self._time_limit)
        except js.JSOOMException:
            isolate.close()  # not to be trusted any more: the next call builds a new one
            del self._isolates[version]
            raise

    def _limit_message(self, exc: Exception) -> str:
        if isinstance(exc, js.JSTimeoutException):
            return f"the transformation ran longer than {self._time_limit:g} s"
        return f"the transformation used more than {self._memory_limit // 2**20} MB"


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


def _transformed(result: _Result) -> Transformed:
    events = [e for e in result.events if isinstance(e, dict)]
    if result.error is not None:
        return Transformed([], _error_text(result.error), result.logs)
    if len(events) != len(result.events):
        return Transformed([], "the transformation returned something that is not an event")
    return Transformed(events, None, result.logs)


def check(code: str) -> None:
    """Raise BadCode (with the line) unless `code` compiles and defines a transform function."""
    _Isolate(code, 128 * 1024 * 1024).close()
