"""User transformations in V8: RudderStack's contract, limits, the sandbox."""

import asyncio
from typing import Any
from uuid import uuid4

import pytest

from engine.pipeline.transform import Metadata, Transformed
from engine.transformations.runtime import BadCode, JavaScript, check
from engine.transformations.trial import trial

ENRICH = """
export function transformEvent(event, metadata) {
  log("transforming", event.event, metadata(event).destinationType);
  if (event.event === "Drop me") return null;
  if (event.event === "Split") return [event, { ...event, event: "Split copy" }];
  event.properties = { ...event.properties, plan: "pro" };
  return event;
}
"""


def run(code: str, *events: dict[str, Any], **limits: Any) -> list[Transformed]:
    async def go() -> list[Transformed]:
        async def code_of(version: int) -> str:
            return code

        javascript = JavaScript(code_of, **limits)
        try:
            return await javascript.run(1, [
                (e, Metadata(uuid4(), uuid4(), "webhook", e.get("messageId", f"m{i}")))
                for i, e in enumerate(events)
            ])  # fmt: skip
        finally:
            await javascript.close()

    return asyncio.run(go())


def track(name: str, **extra: Any) -> dict[str, Any]:
    return {"type": "track", "event": name, "properties": {}, **extra}


def test_enrich_drop_and_fan_out_with_export_syntax_and_logs() -> None:
    enriched, dropped, split = run(ENRICH, track("Buy"), track("Drop me"), track("Split"))
    assert enriched.events == [{"type": "track", "event": "Buy", "properties": {"plan": "pro"}}]
    assert enriched.logs == ["transforming Buy webhook"]
    assert dropped.events == [] and dropped.error is None
    assert [e["event"] for e in split.events] == ["Split", "Split copy"]


def test_transform_batch_gets_the_chunk() -> None:
    code = """export function transformBatch(events, metadata) {
      return events.filter(e => e.event !== "Noise").map(e => ({...e, n: events.length}));
    }"""
    noise, kept = run(code, track("Noise", messageId="a"), track("Kept", messageId="b"))
    assert noise.events == []
    assert kept.events == [{"type": "track", "event": "Kept", "properties": {}, "messageId": "b",
                            "n": 2}]  # fmt: skip


def test_a_throwing_event_fails_alone_with_its_line() -> None:
    code = (
        "function transformEvent(e) {\n  if (e.event === 'Bad') return e.missing.field;\n"
        "  return e;\n}"
    )
    bad, good = run(code, track("Bad"), track("Good"))
    assert bad.error is not None and "TypeError" in bad.error and "(line 2:" in bad.error
    assert good.events == [track("Good")]


def test_an_endless_loop_fails_that_event_and_the_next_flow() -> None:
    code = "function transformEvent(e) { while (e.event === 'Loop') {} return e; }"
    looping, after = run(code, track("Loop"), track("After"), time_limit=0.5)
    assert looping.error == "the transformation ran longer than 0.5 s"
    assert after.events == [track("After")]


def test_runaway_allocation_fails_that_event_and_the_runtime_recovers() -> None:
    code = """function transformEvent(e) {
      if (e.event === "Hog") { const a = []; while (true) a.push(new Array(100000).fill(1)); }
      return e;
    }"""
    hog, after = run(code, track("Hog"), track("After"), memory_limit=64 * 2**20)
    assert hog.error == "the transformation used more than 64 MB"
    assert after.events == [track("After")]


@pytest.mark.parametrize("name", ["require", "process", "fetch", "XMLHttpRequest", "Deno"])
def test_no_way_out_of_the_sandbox(name: str) -> None:
    code = f"function transformEvent(e) {{ e.seen = typeof {name}; return e; }}"
    [result] = run(code, track("E"))
    assert result.events[0]["seen"] == "undefined"


def test_versions_do_not_share_state() -> None:
    async def go() -> list[Transformed]:
        codes = {1: "var n = 0; function transformEvent(e) { n += 1; e.n = n; return e; }",
                 2: "function transformEvent(e) { e.n = typeof n; return e; }"}  # fmt: skip

        async def code_of(version: int) -> str:
            return codes[version]

        javascript = JavaScript(code_of)
        meta = Metadata(uuid4(), uuid4(), "webhook", "m")
        try:
            await javascript.run(1, [(track("E"), meta)])
            return await javascript.run(1, [(track("E"), meta)]) + await javascript.run(
                2, [(track("E"), meta)]
            )
        finally:
            await javascript.close()

    second, other = asyncio.run(go())
    assert second.events[0]["n"] == 2  # the isolate of a version is reused
    assert other.events[0]["n"] == "undefined"


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("function transformEvent(e) {\n  return e +;\n}", "line 2: SyntaxError"),
        ("function other(e) { return e; }", "must define transformEvent"),
    ],
)
def test_bad_code_is_refused_with_the_line(code: str, message: str) -> None:
    with pytest.raises(BadCode, match=message):
        check(code)


def test_trial_shows_output_logs_and_errors() -> None:
    result = asyncio.run(trial(ENRICH, [track("Buy"), track("Drop me")]))
    assert [e["event"] for e in result.events] == ["Buy"]
    assert result.logs == ["transforming Buy webhook", "transforming Drop me webhook"]
    assert result.error is None
    broken = asyncio.run(trial("function transformEvent(e) {", [track("Buy")]))
    assert broken.error is not None and "does not compile" in broken.error
