"""A fast local destination for the pipeline benchmark: granian serving a tiny RSGI app.

Answers every request 200 and notes, per event, the time from the gateway's `receivedAt` to
its arrival here: a webhook's request is one event; an Amplitude HTTP V2 batch (`/2/httpapi`,
a batching destination whose `endpoint` is this sink) holds many, each with its `time`: the
event's `timestamp`, which the benchmark sets when it sends it. `GET /stats` returns the
count and latency percentiles since the last `POST /reset`.

    python -m bench.sink PORT
"""

import sys
import time
from datetime import datetime
from typing import Any

import msgspec
from granian.constants import HTTPModes, Interfaces, Loops
from granian.server import Server


class _Event(msgspec.Struct):
    receivedAt: str


class _Stamped(msgspec.Struct):
    time: int  # ms since the epoch


class _Batch(msgspec.Struct):
    events: list[_Stamped]


_decode = msgspec.json.Decoder(_Event).decode
_decode_batch = msgspec.json.Decoder(_Batch).decode


class Sink:
    def __init__(self) -> None:
        self.latencies: list[float] = []

    async def __rsgi__(self, scope: Any, proto: Any) -> None:
        body = await proto()
        if scope.path == "/stats":
            proto.response_bytes(200, [("content-type", "application/json")], self._stats())
            return
        if scope.path == "/reset":
            self.latencies = []
        elif scope.path == "/2/httpapi":
            now = time.time()
            self.latencies.extend(now - e.time / 1000 for e in _decode_batch(body).events)
        elif body:
            received = datetime.fromisoformat(_decode(body).receivedAt).timestamp()
            self.latencies.append(time.time() - received)
        proto.response_bytes(200, [("content-type", "application/json")], b'{"ok":true}')

    def _stats(self) -> bytes:
        ordered = sorted(self.latencies)

        def pct(p: float) -> float:
            return ordered[min(len(ordered) - 1, int(p * len(ordered)))] if ordered else 0.0

        return msgspec.json.encode(
            {"count": len(ordered), "p50": pct(0.5), "p99": pct(0.99), "max": pct(1.0)}
        )


def app() -> Sink:
    return Sink()


if __name__ == "__main__":
    Server(
        "bench.sink:app", factory=True, address="127.0.0.1", port=int(sys.argv[1]),
        interface=Interfaces.RSGI, http=HTTPModes.http1, workers=1, loop=Loops.uvloop,
        log_enabled=False,
    ).serve()  # fmt: skip
