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
import contextlib
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
# `export { transformEvent };` lists: the functions are declared anyway; blanked, lines kept.
_EXPORT_LIST = re.compile(r"^\s*export\s*\{[^}]*\}\s*;?", re.MULTILINE)
_SOURCE_URL = "\n//# sourceURL=transformation.js"  # names the user's frames in stack traces
_WHERE = re.compile(r"transformation\.js:(\d+):(\d+)")
_SETTLE = 0.5  # seconds leftover work may take after a call before the isolate is rebuilt
_GIVE_UP = 3  # single events in a row over a limit before the rest of a chunk is not tried


class BadCode(SluiceError):
    """Transformation code that does not compile or defines no transformEvent/transformBatch."""


class _Result(msgspec.Struct):
    events: list[Any] = []
    error: str | None = None
    logs: list[str] = []


_results = msgspec.json.Decoder(list[_Result], float_hook=codec.number_text)


class _Isolate:
    def __init__(self, code: str, memory_limit: int, time_limit: float) -> None:
        self.spoiled = False
        self.context = MiniRacer()
        try:
            self.context.set_hard_memory_limit(memory_limit)
            self.context.eval(_DRIVER + "\n//# sourceURL=sluice-driver.js")
            # Top-level statements run here: they get the same time limit as a call.
            self.context.eval(script(code) + _SOURCE_URL, timeout_sec=time_limit)
            missing = self.context.eval("__sluice.check()")
        except js.JSEvalException as exc:
            self.close()
            raise BadCode(_first_line(exc)) from None
        if missing:
            self.close()
            raise BadCode(str(missing))

    def run(self, items: bytes, count: int, time_limit: float) -> list[_Result]:
        # eval, not call: mini-racer's call goes through the isolate's JSON, which user code
        # may have replaced. The input travels as a string literal, the output as a string.
        text = self.context.eval(
            f"__sluice.run({codec.encode(items.decode()).decode()})", timeout_sec=time_limit
        )
        if not isinstance(text, str):
            raise _Broken("the driver answered something other than text")
        results = _results.decode(text)
        if len(results) != count:
            raise _Broken(f"{len(results)} results for {count} events")
        try:
            # Code must not go on running once its call has returned (a promise callback,
            # say): if it does, these results stand but the isolate is not used again.
            self.context.eval("0", timeout_sec=_SETTLE)
        except js.JSTimeoutException:
            self.spoiled = True
        return results

    def close(self) -> None:
        # After a timeout, V8 reports the stopped task a moment later; one more (trivial) call
        # lets that report arrive before the context goes, instead of into a closed one.
        with contextlib.suppress(js.MiniRacerBaseException):
            self.context.eval("0", timeout_sec=_SETTLE)
        self.context.close()


class _Broken(Exception):
    """The driver's answer cannot be trusted (the user's code interfered with it)."""


def script(code: str) -> str:
    """User code as a classic script: ES module `export`s dropped, line numbers kept."""
    code = _EXPORT_LIST.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), code)
    return _EXPORT.sub(r"\1", code)


def _first_line(exc: Exception) -> str:
    """V8's message: 'transformation.js:3: SyntaxError: …' then the source; keep the first."""
    first = str(exc).strip().splitlines()[0]
    return re.sub(r"^(?:transformation\.js|<anonymous>):", "line ", first)


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
        try:
            code = await self._code_of(version)
        except SluiceError as exc:  # (a database error propagates: the batch is retried)
            return [Transformed([], str(exc)) for _ in events]
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
                isolate = _Isolate(code, self._memory_limit, self._time_limit)
            except BadCode as exc:
                isolate = exc
            self._isolates[version] = isolate
        if isinstance(isolate, BadCode):
            raise isolate
        return isolate

    def _discard(self, version: int) -> None:
        """Throw an isolate away (out of memory, or its state tampered with): built anew next."""
        isolate = self._isolates.pop(version, None)
        if isinstance(isolate, _Isolate):
            isolate.close()

    def _run(
        self, version: int, code: str, events: Sequence[tuple[dict[str, Any], Metadata]]
    ) -> list[Transformed]:
        out: list[Transformed] = []
        for start in range(0, len(events), self._chunk):
            out += self._chunked(version, code, events[start : start + self._chunk])
        return out

    def _chunked(
        self, version: int, code: str, events: Sequence[tuple[dict[str, Any], Metadata]]
    ) -> list[Transformed]:
        try:
            return [_transformed(r) for r in self._call(version, code, events)]
        except BadCode as exc:
            return [Transformed([], f"the code does not compile: {exc}") for _ in events]
        except (js.MiniRacerBaseException, msgspec.MsgspecError, _Broken) as exc:
            if len(events) == 1:
                return [Transformed([], self._message(exc))]
        # Something in this chunk went wrong: find which event, one per call.
        out: list[Transformed] = []
        over_limit = 0
        for event in events:
            if over_limit >= _GIVE_UP:  # not hours on end for a chunk of slow events
                out.append(Transformed([], "not run: the events before it kept hitting limits"))
                continue
            [result] = self._chunked(version, code, [event])
            hit = result.error is not None and result.error.startswith("the transformation ")
            over_limit = over_limit + 1 if hit else 0
            out.append(result)
        return out

    def _call(
        self, version: int, code: str, events: Sequence[tuple[dict[str, Any], Metadata]]
    ) -> list[_Result]:
        items = codec.encode(
            [{"event": event, "metadata": _metadata(meta)} for event, meta in events]
        )
        isolate = self._isolate(version, code)
        try:
            results = isolate.run(items, len(events), self._time_limit)
        except js.JSTimeoutException:
            raise  # the isolate is fine once V8 has stopped the code
        except Exception:
            self._discard(version)
            raise
        if isolate.spoiled:
            self._discard(version)
        return results

    def _message(self, exc: Exception) -> str:
        if isinstance(exc, js.JSTimeoutException):
            return f"the transformation ran longer than {self._time_limit:g} s"
        if isinstance(exc, js.JSOOMException):
            return f"the transformation used more than {self._memory_limit // 2**20} MB"
        return f"the transformation broke its own runtime: {_first_line(exc)}"


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
    _Isolate(code, 128 * 1024 * 1024, 4.0).close()
