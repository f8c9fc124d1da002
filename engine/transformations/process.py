"""A transformation's sandbox process, seen from the worker: started with the code, called with
a deadline, stopped; and when it dies, why.

Each call has V8's own time limit inside the sandbox; the deadline here is the backstop for an
isolate V8 could not stop: past it, the process is killed. What the process printed last on
stderr (V8's fatal out-of-memory report, a Python traceback) tells a memory failure from other
crashes.
"""

import asyncio
import os
import signal
import sys
import time
from typing import Literal

import msgspec

from engine.errors import SandboxUnavailable, SluiceError
from engine.transformations import protocol

_START = 30.0  # seconds for Python and V8 to come up in a new sandbox (a busy host is slow)
_SETTLE = 0.5  # what the sandbox may add to a call's time limit (see the sandbox's _SETTLE)
_MARGIN = 5.0  # seconds past that before a call V8 did not stop is killed
_STOP = 2.0  # seconds a sandbox has to leave after its input is closed
_TAIL = 4096  # bytes of stderr kept
# V8's fatal reports (out of heap; an object larger than V8 can make: `"ab".repeat(2 ** 27)
# .split("")`, after which V8 stops the process with a breakpoint trap); Python's.
_OUT_OF_MEMORY = (b"out of memory", b"invalid size error", b"MemoryError")

# Why a call failed: a limit, the runtime broken by the code, or the process gone.
Kind = Literal["time", "memory", "broken", "crashed"]


class BadCode(SluiceError):
    """Transformation code that does not compile, defines no transformEvent/transformBatch, or
    whose top-level statements hit a limit."""


class SandboxFailed(SluiceError):
    """A call failed on a limit, or broke or crashed the sandbox."""

    def __init__(self, kind: Kind, detail: str = "") -> None:
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind
        self.detail = detail


class Sandbox:
    def __init__(self, process: asyncio.subprocess.Process, time_limit: float) -> None:
        self._process = process
        self._time_limit = time_limit
        self._stderr = b""
        self._out_of_memory = False  # said so on stderr (V8's report may be long)
        assert process.stderr is not None
        self._draining = asyncio.create_task(self._keep_stderr(process.stderr))
        self.usable = True  # False once a call left it unfit for another
        self.used = time.monotonic()

    @classmethod
    async def start(cls, code: str, *, time_limit: float, memory_limit: int) -> "Sandbox":
        """A sandbox running `code`; BadCode if the code is refused, SandboxUnavailable if no
        sandbox process can be started."""
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-P", "-m", "engine.transformations.sandbox", str(os.getpid()),
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE, cwd="/",
                # Its own session: a Ctrl-C or a stop signal for the worker's process group is
                # the worker's to handle. Its environment: only where Python finds Sluice,
                # none of the worker's settings or secrets.
                start_new_session=True,
                env={"PATH": os.defpath, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)},
            )  # fmt: skip
        except OSError as exc:
            raise SandboxUnavailable(f"cannot start a transformation sandbox: {exc}") from None
        sandbox = cls(process, time_limit)
        try:
            await sandbox._opened(code, time_limit, memory_limit)
        except BaseException:
            await sandbox.stop()
            raise
        return sandbox

    async def _opened(self, code: str, time_limit: float, memory_limit: int) -> None:
        try:
            ready = await self._exchange(None, _START)
        except SandboxFailed as exc:
            why = exc.detail or f"no answer within {_START:g} s"
            raise SandboxUnavailable(f"a transformation sandbox did not start: {why}") from None
        if not isinstance(ready, protocol.Ready):
            raise SandboxUnavailable("a transformation sandbox did not start as expected")
        request = protocol.Open(code, time_limit, memory_limit)
        try:
            opened = await self._exchange(request, time_limit + _SETTLE + _MARGIN)
        except SandboxFailed as exc:
            if exc.kind in ("time", "memory"):  # the code's top-level statements were too much
                what = describe(exc, time_limit, memory_limit)
                raise BadCode(f"its top-level code {what}") from None
            raise SandboxUnavailable(f"a transformation sandbox failed: {exc.detail}") from None
        if not isinstance(opened, protocol.Opened):
            raise SandboxUnavailable("a transformation sandbox answered out of turn")
        if opened.error is not None:
            raise BadCode(opened.error)

    @property
    def alive(self) -> bool:
        """Still there to be called: not ended (by a crash of its own, or killed)."""
        stdin = self._process.stdin
        return self._process.returncode is None and stdin is not None and not stdin.is_closing()

    async def run(self, items: bytes) -> str:
        """The driver's JSON text for a chunk (see `protocol.Run`); SandboxFailed if the call
        failed, after which `usable` says whether the sandbox may be called again."""
        self.used = time.monotonic()
        try:
            answer = await self._exchange(protocol.Run(items), self._time_limit + _SETTLE + _MARGIN)
        except BaseException:
            self.usable = False
            raise
        if not isinstance(answer, protocol.Ran):
            self.usable = False
            raise SandboxFailed("broken", "the sandbox answered out of turn")
        if answer.spoiled or answer.failure in ("memory", "broken"):
            self.usable = False
        if answer.failure is not None:
            raise SandboxFailed(answer.failure, answer.detail)
        return answer.text

    async def _exchange(
        self, message: protocol.Message | None, deadline: float
    ) -> protocol.Message:
        """Send `message` (if any) and read the answer within `deadline` seconds."""
        stdin, stdout = self._process.stdin, self._process.stdout
        assert stdin is not None and stdout is not None
        try:
            async with asyncio.timeout(deadline):
                if message is not None:
                    stdin.write(protocol.frame(message))
                    await stdin.drain()
                header = await stdout.readexactly(protocol.HEADER)
                return protocol.decode(await stdout.readexactly(protocol.length(header)))
        except TimeoutError:
            self._kill()
            raise SandboxFailed("time") from None
        # (A pipe to a process that has gone: an error on reading or writing, or, with uvloop,
        # a RuntimeError on writing to the closed transport.)
        except (asyncio.IncompleteReadError, ConnectionError, RuntimeError):
            raise SandboxFailed(*await self._death()) from None
        except msgspec.DecodeError as exc:
            self._kill()
            raise SandboxFailed("broken", f"the sandbox answered nonsense ({exc})") from None
        except BaseException:  # cancelled mid-call: what is in the pipe can no longer be read
            self._kill()
            raise

    def _kill(self) -> None:
        self.usable = False
        if self._process.returncode is None:
            self._process.kill()

    async def _ended(self) -> int:
        """The exit status once the process is gone, killed if it does not go by itself."""
        try:
            # (Not killed at once: killing reaps an exited process before asyncio sees its
            # status.)
            return await asyncio.wait_for(self._process.wait(), _STOP)
        except TimeoutError:
            self._kill()
            return await self._process.wait()

    async def _death(self) -> tuple[Kind, str]:
        """Why the process ended, from its exit and the end of its stderr."""
        self.usable = False
        status = await self._ended()
        await self._draining
        if self._out_of_memory:
            return "memory", ""
        lines = [line.strip() for line in self._stderr.decode(errors="replace").splitlines()]
        said = next((line for line in reversed(lines) if "Error" in line or "Fatal" in line), "")
        if status < 0:
            name = signal.strsignal(-status) or f"signal {-status}"
            return "crashed", f"its process was ended by {name}" + (f" ({said})" if said else "")
        return "crashed", said or f"its process exited with status {status}"

    async def _keep_stderr(self, stderr: asyncio.StreamReader) -> None:
        while chunk := await stderr.read(65536):
            self._stderr = (self._stderr + chunk)[-_TAIL:]
            # (Looked for in the tail: a marker may straddle two reads.)
            self._out_of_memory = self._out_of_memory or any(
                marker in self._stderr for marker in _OUT_OF_MEMORY
            )

    async def stop(self) -> None:
        """Close the sandbox's input (it leaves at once); kill it if it does not."""
        assert self._process.stdin is not None
        self.usable = False
        self._process.stdin.close()
        await self._ended()
        await self._draining


def describe(exc: SandboxFailed, time_limit: float, memory_limit: int) -> str:
    """What a failed call did, as the end of a sentence about the transformation."""
    if exc.kind == "time":
        return f"ran longer than {time_limit:g} s"
    if exc.kind == "memory":
        return f"used more than {memory_limit // 2**20} MB"
    if exc.kind == "broken":
        return f"broke its own runtime: {exc.detail}"
    return f"stopped its sandbox: {exc.detail}"
