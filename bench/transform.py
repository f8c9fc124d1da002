"""Transformation benchmark: events/s through a simple `transformEvent`, on one core.

Runs RudderStack-style code in the same runtime the worker uses (a V8 isolate per version,
events in chunks) over 100,000 events and prints events/s, wall and CPU, for a few chunk sizes.

    python -m bench.transform
"""

import asyncio
import time
from uuid import uuid4

from engine.pipeline.transform import Metadata
from engine.transformations.runtime import JavaScript

EVENTS = 100_000
CODE = """
export function transformEvent(event, metadata) {
  if (event.event === "Heartbeat") return null;
  event.properties.revenue = event.properties.price * event.properties.quantity;
  event.context.destination = metadata(event).destinationType;
  return event;
}
"""


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
    wall, cpu = time.perf_counter(), time.process_time()
    for start in range(0, EVENTS, 2000):  # as the processor hands them over
        await javascript.run(1, events[start : start + 2000])
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    await javascript.close()
    return EVENTS / wall, EVENTS / cpu


def main() -> None:
    for chunk in (1, 50, 200, 500, 1000):
        per_wall, per_cpu = asyncio.run(measure(chunk))
        print(f"chunks of {chunk:>5}: {per_wall:>9,.0f} events/s (wall)  "
              f"{per_cpu:>9,.0f} events/s per CPU second")  # fmt: skip


if __name__ == "__main__":
    main()
