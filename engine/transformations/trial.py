"""Trying a transformation on sample events: what `sluice transform test` and the UI's editor
show — the output events, what the code logged, and the error with its line."""

from typing import Any
from uuid import UUID

import msgspec

from engine.transformations.process import BadCode
from engine.transformations.runtime import JavaScript, check
from engine.transformations.seam import Metadata


class TrialResult(msgspec.Struct):
    events: list[Any]
    logs: list[str]
    error: str | None = None


async def trial(
    code: str, events: list[dict[str, Any]], destination_type: str = "webhook"
) -> TrialResult:
    if not events:  # nothing to run: whether the code loads is all there is to show
        try:
            await check(code)
        except BadCode as exc:
            return TrialResult([], [], f"the code does not compile: {exc}")
        return TrialResult([], [])

    async def this_code(version: int) -> str:
        return code

    nobody = UUID(int=0)
    samples = [
        (event, Metadata(nobody, nobody, destination_type, str(event.get("messageId", ""))))
        for event in events
    ]
    javascript = JavaScript(this_code)
    try:
        results = await javascript.run(0, samples)
    finally:
        await javascript.close()
    out = TrialResult([], [])
    for result in results:
        out.events += result.events
        out.logs += result.logs
        out.error = out.error or result.error
    return out
