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
from pathlib import Path
from typing import Literal

import msgspec

import engine
from engine.errors import SandboxUnavailable, SluiceError
from engine.transformations import protocol

_START = 30.0  # seconds for Python and V8 to come up in a new sandbox (a busy host is slow)
_SETTLE = 0.5  # what the sandbox may add to a call's time limit (see the sandbox's _SETTLE)
_MARGIN = 5.0  # seconds past that before a call V8 did not stop is killed
_STOP = 2.0  # seconds a sandbox has to leave after its input is closed
_TAIL = 4096  # bytes of stderr kept
_ROOT = str(Path(engine.__file__).resolve().parent.parent)  # where `engine` is importable from

# Why a call failed: a limit, the runtime broken by the code, or the process gone.
Kind = Literal["time", "memory", "broken", "crashed"]


class BadCode(SluiceError):
    """Transformation code that does not compile, defines no transformEvent/transformBatch, or
    whose top-level statements hit a limit."""


class SandboxFailed(Exception):
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
                sys.executable, "-m", "engine.transformations.sandbox",
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env={"PATH": os.defpath, "PYTHONPATH": _ROOT},  # none of the worker's secrets
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
            ready = await self._receive(_START)
        except SandboxFailed as exc:
            why = exc.detail or f"no answer within {_START:g} s"
            raise SandboxUnavailable(f"a transformation sandbox did not start: {why}") from None
        if not isinstance(ready, protocol.Ready):
            raise SandboxUnavailable("a transformation sandbox did not start as expected")
        self._send(protocol.Open(code, time_limit, memory_limit))
        try:
            opened = await self._receive(time_limit + _SETTLE + _MARGIN)
        except SandboxFailed as exc:  # the code's top-level statements were too much
            raise BadCode(f"its top-level code {describe(exc, time_limit, memory_limit)}") from None
        if not isinstance(opened, protocol.Opened):
            raise BadCode("its top-level code interfered with the sandbox")
        if opened.error is not None:
            raise BadCode(opened.error)

    async def run(self, items: bytes) -> str:
        """The driver's JSON text for a chunk (see `protocol.Run`); SandboxFailed if the call
        failed, after which `usable` says whether the sandbox may be called again."""
        self.used = time.monotonic()
        self._send(protocol.Run(items))
        answer = await self._receive(self._time_limit + _SETTLE + _MARGIN)
        if not isinstance(answer, protocol.Ran):
            self.usable = False
            raise SandboxFailed("broken", "the sandbox answered out of turn")
        if answer.spoiled or answer.failure in ("memory", "broken"):
            self.usable = False
        if answer.failure is not None:
            raise SandboxFailed(answer.failure, answer.detail)
        return answer.text

    def _send(self, message: protocol.Message) -> None:
        assert self._process.stdin is not None
        self._process.stdin.write(protocol.frame(message))

    async def _receive(self, deadline: float) -> protocol.Message:
        assert self._process.stdin is not None and self._process.stdout is not None
        try:
            async with asyncio.timeout(deadline):
                await self._process.stdin.drain()
                header = await self._process.stdout.readexactly(protocol.HEADER)
                return protocol.decode(
                    await self._process.stdout.readexactly(protocol.length(header))
                )
        except TimeoutError:
            self._kill()
            raise SandboxFailed("time") from None
        except (asyncio.IncompleteReadError, ConnectionError):
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
        lines = [line.strip() for line in self._stderr.decode(errors="replace").splitlines()]
        if any("out of memory" in line or "MemoryError" in line for line in lines):
            return "memory", ""
        said = next((line for line in reversed(lines) if "Error" in line or "Fatal" in line), "")
        if status < 0:
            name = signal.strsignal(-status) or f"signal {-status}"
            return "crashed", f"its process was ended by {name}" + (f" ({said})" if said else "")
        return "crashed", said or f"its process exited with status {status}"

    async def _keep_stderr(self, stderr: asyncio.StreamReader) -> None:
        while chunk := await stderr.read(65536):
            self._stderr = (self._stderr + chunk)[-_TAIL:]

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
