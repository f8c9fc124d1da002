"""The sandbox process: one transformation version's V8 isolate, in a process of its own.

    python -m engine.transformations.sandbox WORKER_PID   (started by `.process`)

User code runs in a V8 isolate (mini-racer), which has no network, filesystem or process
access. The isolate lives in this separate process so that what V8 cannot hold to a limit is
held by the operating system: V8 keeps its heap under the memory limit, but array buffers and
WebAssembly memory live outside the heap, so the process's writable memory is capped as well
(RLIMIT_DATA). Over that cap an allocation fails with a RangeError or V8 stops the process; either
way only this process goes, and the worker starts another. It also means a wedged isolate can
always be killed.

The process reads requests from stdin and answers on the pipe that was its stdout; whatever V8
prints goes to stderr, which the worker keeps the end of to explain a crash.

The process may never gain a privilege (set before V8 starts its threads), and once V8 is up,
before it reads any code, it stops being root if it was started by root (`sluice run` as
root): it becomes `sluice-sandbox`, a user that owns nothing (`engine.children`).
"""

import os
import re
import resource
import signal
import sys
import traceback
from pathlib import Path
from typing import BinaryIO

import msgspec
from py_mini_racer import MiniRacer
from py_mini_racer import _exc as js

from engine.children import die_with_parent, drop_root, no_new_privileges
from engine.errors import SluiceError
from engine.transformations import protocol

_DRIVER = Path(__file__).with_name("driver.js").read_text()
# `export function …`, `export default function …`, `export const …`: ES module syntax, which a
# script does not take. Dropping the keyword keeps every line where it was.
_EXPORT = re.compile(r"^(\s*)export\s+(?:default\s+)?(?=(?:async\s+)?function|const|let|var|class)",
                     re.MULTILINE)  # fmt: skip
# `export { transformEvent };` lists: the functions are declared anyway; blanked, lines kept.
_EXPORT_LIST = re.compile(r"^\s*export\s*\{[^}]*\}\s*;?", re.MULTILINE)
_SOURCE_URL = "\n//# sourceURL=transformation.js"  # names the user's frames in stack traces
_SETTLE = 0.5  # seconds leftover work may take after a call before the isolate is given up
# Writable memory the process may add once V8 is up, as a multiple of the memory limit: V8's
# heap reaches about twice the limit in its own bookkeeping before it reports the limit, and the
# rest is what array buffers and WebAssembly memory may take.
_MEMORY_FACTOR = 3


class _BadCode(SluiceError):
    """Code that does not compile, or defines no function, or whose top level hits a limit."""


def script(code: str) -> str:
    """User code as a classic script: ES module `export`s dropped, line numbers kept."""
    code = _EXPORT_LIST.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), code)
    return _EXPORT.sub(r"\1", code)


def first_line(exc: Exception) -> str:
    """V8's message: 'transformation.js:3: SyntaxError: …' then the source; keep the first."""
    first = str(exc).strip().splitlines()[0]
    return re.sub(r"^(?:transformation\.js|<anonymous>):", "line ", first)


def _data_size() -> int:
    """The process's writable private memory (VmData), in bytes: what RLIMIT_DATA counts."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmData:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("/proc/self/status has no VmData")


class Isolate:
    def __init__(self, context: MiniRacer, request: protocol.Open) -> None:
        self.context = context
        self.time_limit = request.time_limit
        self.context.set_hard_memory_limit(request.memory_limit)
        self.context.eval(_DRIVER + "\n//# sourceURL=sluice-driver.js")
        # Only the soft limit: a hard limit set for the whole service stays as it is.
        _, hard = resource.getrlimit(resource.RLIMIT_DATA)
        cap = _data_size() + _MEMORY_FACTOR * request.memory_limit
        if hard != resource.RLIM_INFINITY:
            cap = min(cap, hard)
        resource.setrlimit(resource.RLIMIT_DATA, (cap, hard))
        try:
            # Top-level statements run here: they get the same time limit as a call.
            self.context.eval(script(request.code) + _SOURCE_URL, timeout_sec=self.time_limit)
            missing = self.context.eval("__sluice.check()")
        except js.JSTimeoutException:
            raise _BadCode(f"its top-level code ran longer than {self.time_limit:g} s") from None
        except js.JSOOMException:
            mb = request.memory_limit // 2**20
            raise _BadCode(f"its top-level code used more than {mb} MB") from None
        except js.JSEvalException as exc:
            raise _BadCode(first_line(exc)) from None
        if missing:
            raise _BadCode(str(missing))

    def run(self, items: bytes) -> protocol.Ran:
        # eval, not call: mini-racer's call goes through the isolate's JSON, which user code
        # may have replaced. The input travels as a string literal, the output as a string.
        literal = msgspec.json.encode(items.decode()).decode()
        try:
            text = self.context.eval(f"__sluice.run({literal})", timeout_sec=self.time_limit)
        except js.JSTimeoutException:
            return protocol.Ran(failure="time")
        except js.JSOOMException:
            return protocol.Ran(failure="memory")
        except js.MiniRacerBaseException as exc:
            return protocol.Ran(failure="broken", detail=first_line(exc))
        if not isinstance(text, str):
            return protocol.Ran(failure="broken", detail="the driver answered something else")
        try:
            # Code must not go on running once its call has returned (a promise callback,
            # say): if it does, these results stand but the isolate is not used again.
            self.context.eval("0", timeout_sec=_SETTLE)
        except js.JSTimeoutException:
            return protocol.Ran(text=text, spoiled=True)
        return protocol.Ran(text=text)


def _read(stream: BinaryIO) -> protocol.Message | None:
    header = stream.read(protocol.HEADER)
    if len(header) < protocol.HEADER:
        return None  # the worker closed the pipe: time to go
    return protocol.decode(stream.read(protocol.length(header)))


def _write(answers: BinaryIO, message: protocol.Message) -> None:
    answers.write(protocol.frame(message))
    answers.flush()


def serve(requests: BinaryIO, answers: BinaryIO, worker: int) -> None:
    context = MiniRacer()
    # V8 is up, every file it needs read: the process stops being root before it reads any
    # code, then asks again to go with the worker (a change of user forgets that).
    drop_root()
    die_with_parent(signal.SIGKILL)
    if os.getppid() != worker:
        return  # the worker went in between
    _write(answers, protocol.Ready())  # from here on, a failure is the code's doing
    opening = _read(requests)
    if not isinstance(opening, protocol.Open):
        return
    try:
        isolate = Isolate(context, opening)
    except _BadCode as exc:
        _write(answers, protocol.Opened(str(exc)))
        return
    _write(answers, protocol.Opened())
    while isinstance(request := _read(requests), protocol.Run):
        _write(answers, isolate.run(request.items))


def main() -> None:
    # Ended by the worker only: by closing its input, or with it (`kill -9` included). A
    # Ctrl-C or a service stop reaches the worker, which finishes its calls and closes them.
    worker = int(sys.argv[1])
    no_new_privileges()  # (before V8 starts its threads: the flag is each thread's own)
    die_with_parent(signal.SIGKILL)
    if os.getppid() != worker:
        return  # the worker was already gone
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a crash leaves no core file behind
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # V8's own printing goes to stderr
    status = 1
    try:
        serve(sys.stdin.buffer, answers, worker)
        status = 0
    except BaseException:  # a MemoryError included: the worker reads why from stderr
        traceback.print_exc()
    finally:
        # No orderly V8 teardown: a stopped isolate may still be unwinding, and leaving at
        # once cannot hang on it.
        os._exit(status)


if __name__ == "__main__":
    main()
