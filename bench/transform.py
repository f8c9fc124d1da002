"""Transformation benchmark: events/s through a simple `transformEvent`, on one core.

Runs RudderStack-style code in the same runtime the worker uses (a sandbox process with a V8
isolate per version, events in chunks) over 100,000 events and prints, for a few chunk sizes,
events/s (wall) and events per CPU second of the worker's side and the sandbox's together.

    python -m bench.transform
"""

import asyncio
import os
import time
from pathlib import Path
from uuid import uuid4

from engine.transformations.runtime import JavaScript
from engine.transformations.seam import Metadata

EVENTS = 100_000
CODE = """
export function transformEvent(event, metadata) {
  if (event.event === "Heartbeat") return null;
  event.properties.revenue = event.properties.price * event.properties.quantity;
  event.context.destination = metadata(event).destinationType;
  return event;
}
"""


def children_cpu() -> float:
    """CPU seconds used so far by this process's children (the sandboxes)."""
    me = os.getpid()
    total = 0
    for child in Path(f"/proc/{me}/task/{me}/children").read_text().split():
        fields = Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


async def measure(chunk: int) -> tuple[float, float]:
    async def code_of(version: int) -> str:
        return CODE

    javascript = JavaScript(code_of, chunk=chunk)
    meta = Metadata(uuid4(), uuid4(), "webhook", "m")
    events = [
        ({"type": "track", "event": "Order Completed", "userId": f"user-{n % 1000}",
          "messageId": f"m-{n}", "properties": {"price": 19.99, "quantity": 2, "sku": "sku-1"},
          "context": {"library": {"name": "analytics-python"}, "locale": "en-US"}}, meta)
        for n in range(EVENTS)
    ]  # fmt: skip
    await javascript.run(1, events[:1000])  # the isolate is built and warm
    wall, cpu = time.perf_counter(), time.process_time() + children_cpu()
    for start in range(0, EVENTS, 2000):  # as the processor hands them over
        await javascript.run(1, events[start : start + 2000])
    wall, cpu = time.perf_counter() - wall, time.process_time() + children_cpu() - cpu
    await javascript.close()
    return EVENTS / wall, EVENTS / cpu


def main() -> None:
    for chunk in (1, 50, 200, 500, 1000):
        per_wall, per_cpu = asyncio.run(measure(chunk))
        print(f"chunks of {chunk:>5}: {per_wall:>9,.0f} events/s (wall)  "
              f"{per_cpu:>9,.0f} events per CPU second (worker and sandbox)")  # fmt: skip


if __name__ == "__main__":
    main()
