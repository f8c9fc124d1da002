"""User transformations in V8: RudderStack's contract, limits, the sandbox."""

import asyncio
import os
import pwd
import re
import signal
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
import uvloop

from engine import children
from engine.transformations import runtime
from engine.transformations.process import BadCode
from engine.transformations.runtime import JavaScript, check
from engine.transformations.seam import Metadata, Transformed
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


@pytest.mark.parametrize(
    "name",
    [
        "require", "process", "fetch", "XMLHttpRequest", "Deno",
        # ways to run code after the call has returned
        "Atomics.waitAsync", "FinalizationRegistry", "WebAssembly",
    ],
)  # fmt: skip
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
        asyncio.run(check(code))


def test_trial_shows_output_logs_and_errors() -> None:
    result = asyncio.run(trial(ENRICH, [track("Buy"), track("Drop me")]))
    assert [e["event"] for e in result.events] == ["Buy"]
    assert result.logs == ["transforming Buy webhook", "transforming Drop me webhook"]
    assert result.error is None
    broken = asyncio.run(trial("function transformEvent(e) {", [track("Buy")]))
    assert broken.error is not None and "does not compile" in broken.error
    unrun = asyncio.run(trial("function transformEvent(e) {", []))  # no events: still checked
    assert unrun.error is not None and "does not compile" in unrun.error


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ("return {...e, n: 10n};", "not JSON"),  # a BigInt
        ("const o = {...e}; o.self = o; return o;", "not JSON"),  # a cycle
        ("return Promise.resolve(e);", "async transformations are not supported"),
        ("throw Object.create(null);", "cannot be shown"),
        ("return 'text';", "not an event"),
    ],
)
def test_odd_results_fail_the_event_alone(body: str, error: str) -> None:
    code = f"function transformEvent(e) {{ if (e.event === 'Odd') {{ {body} }} return e; }}"
    odd, fine = run(code, track("Odd"), track("Fine"))
    assert odd.error is not None and error in odd.error, odd.error
    assert fine.events == [track("Fine")]


@pytest.mark.parametrize(
    "sabotage",
    [
        "JSON.parse = () => []; JSON.stringify = () => '[]';",
        "Array.prototype.map = function () { return []; }; Array.isArray = () => false;",
        "var __sluice = null; globalThis.__sluice = null;",
    ],
)
def test_code_cannot_break_the_runtime(sabotage: str) -> None:
    code = f"{sabotage}\nfunction transformEvent(e) {{ e.ok = true; return e; }}"
    results = run(code, track("A"), track("B"), time_limit=1.0)
    assert [r.events for r in results] == [
        [{**track("A"), "ok": True}],
        [{**track("B"), "ok": True}],
    ]


def test_there_are_no_timers() -> None:
    [result] = run("function transformEvent(e) { setTimeout(() => {}, 0); return e; }", track("A"))
    assert result.error is not None and "timers (setTimeout, setInterval) are not" in result.error


def test_work_left_running_after_a_call_is_stopped() -> None:
    code = """function transformEvent(e) {
      if (e.event === "Spin") Promise.resolve().then(() => { while (true) {} });
      return e;
    }"""
    spin, after = run(code, track("Spin"), track("After"), time_limit=1.0)
    assert spin.events == [track("Spin")] and after.events == [track("After")]


def test_batch_keys_are_not_object_properties() -> None:
    code = "function transformBatch(events) { return events; }"
    results = run(code, track("A", messageId="constructor"), track("B", messageId="__proto__"))
    assert [r.events[0]["event"] for r in results] == ["A", "B"]


def test_top_level_code_that_never_ends_is_refused() -> None:
    with pytest.raises(BadCode, match="its top-level code ran longer than 4 s"):
        asyncio.run(check("while (true) {}\nfunction transformEvent(e) { return e; }"))


def test_an_export_list_is_accepted() -> None:
    code = "function transformEvent(e) { e.ok = 1; return e; }\nexport { transformEvent };\n"
    [result] = run(code, track("A"))
    assert result.events == [{**track("A"), "ok": 1}]


def test_memory_outside_the_heap_is_limited_too() -> None:
    # Array buffers live outside V8's heap, where its own limit does not reach.
    code = """var kept = [];
    function transformEvent(e) {
      if (e.event === "Hog") {
        for (var i = 0; i < 64; i++) kept.push(new Uint8Array(64 * 1024 * 1024).fill(1));
      }
      return e;
    }"""
    hog_result, after = run(code, track("Hog"), track("After"), memory_limit=64 * 2**20)
    # Either V8 gave up on the process, or it told the code with a RangeError.
    assert hog_result.error is not None
    assert re.fullmatch(
        r"the transformation used more than 64 MB|RangeError: .*allocation failed \(line 4:\d+\)",
        hog_result.error,
    ), hog_result.error
    assert after.events == [track("After")]


def test_an_object_too_large_for_v8_is_reported_as_memory_not_as_a_crash() -> None:
    # V8 stops the process (a breakpoint trap) rather than throw: "invalid size error".
    code = """function transformEvent(e) {
      if (e.event === "Hog") e.parts = "ab".repeat(2 ** 27).split("");
      return e;
    }"""
    hog, after = run(code, track("Hog"), track("After"))
    assert hog.error == "the transformation used more than 128 MB"
    assert after.events == [track("After")]


def test_top_level_code_that_takes_too_much_memory_is_refused() -> None:
    code = """var kept = [];
    for (var i = 0; i < 64; i++) kept.push(new Uint8Array(64 * 1024 * 1024).fill(1));
    function transformEvent(e) { return e; }"""
    with pytest.raises(BadCode, match="its top-level code"):
        asyncio.run(check(code))


def sandboxes() -> list[int]:
    """The pids of this process's sandbox processes."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
            command = (proc / "cmdline").read_bytes()
        except (FileNotFoundError, NotADirectoryError, ProcessLookupError):
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == os.getpid() and b"engine.transformations.sandbox" in command:
            found.append(int(proc.name))
    return found


def test_a_sandbox_that_stops_answering_is_killed_and_replaced() -> None:
    async def go() -> tuple[list[Transformed], list[Transformed]]:
        async def code_of(version: int) -> str:
            return "function transformEvent(e) { return e; }"

        javascript = JavaScript(code_of, time_limit=0.5)
        meta = Metadata(uuid4(), uuid4(), "webhook", "m")
        try:
            await javascript.run(1, [(track("Warm"), meta)])
            [wedged] = sandboxes()
            os.kill(wedged, signal.SIGSTOP)  # as if V8 could not stop the code
            first = await javascript.run(1, [(track("Stuck"), meta)])
            assert wedged not in sandboxes()
            return first, await javascript.run(1, [(track("After"), meta)])
        finally:
            await javascript.close()

    [stuck], [after] = asyncio.run(go())
    assert stuck.error == "the transformation ran longer than 0.5 s"
    assert after.events == [track("After")]
    assert sandboxes() == []  # closing the runtime leaves no process behind


def test_a_sandbox_gets_none_of_the_workers_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLUICE_DATABASE_URL", "postgresql://sluice:secret@db/sluice")

    async def go() -> bytes:
        async def code_of(version: int) -> str:
            return "function transformEvent(e) { return e; }"

        javascript = JavaScript(code_of)
        try:
            await javascript.run(1, [(track("A"), Metadata(uuid4(), uuid4(), "webhook", "m"))])
            [pid] = sandboxes()
            return Path(f"/proc/{pid}/environ").read_bytes()
        finally:
            await javascript.close()

    environment = asyncio.run(go())
    assert b"PATH=" in environment and b"secret" not in environment


def test_idle_sandboxes_are_stopped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime, "_IDLE", 0.5)

    async def go() -> tuple[list[int], list[int]]:
        async def code_of(version: int) -> str:
            return f"function transformEvent(e) {{ e.v = {version}; return e; }}"

        javascript = JavaScript(code_of)
        meta = Metadata(uuid4(), uuid4(), "webhook", "m")
        try:
            [first] = await javascript.run(1, [(track("A"), meta)])
            before = sandboxes()
            await asyncio.sleep(1.0)
            [second] = await javascript.run(2, [(track("A"), meta)])  # version 1 is idle now
            assert (first.events[0]["v"], second.events[0]["v"]) == (1, 2)
            return before, sandboxes()
        finally:
            await javascript.close()

    [one], [two] = asyncio.run(go())
    assert one != two


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])  # the worker runs on uvloop
def test_a_sandbox_that_died_between_calls_is_replaced_without_blame(loop: str) -> None:
    async def go() -> list[Transformed]:
        async def code_of(version: int) -> str:
            return "function transformEvent(e) { e.ok = true; return e; }"

        javascript = JavaScript(code_of)
        meta = Metadata(uuid4(), uuid4(), "webhook", "m")
        try:
            await javascript.run(1, [(track("A"), meta)])
            [pid] = sandboxes()
            os.kill(pid, signal.SIGKILL)  # as the host's out-of-memory killer would
            await asyncio.sleep(0.2)
            return await javascript.run(1, [(track("B"), meta), (track("C"), meta)])
        finally:
            await javascript.close()

    results = (uvloop.run if loop == "uvloop" else asyncio.run)(go())
    assert [r.events for r in results] == [
        [{**track("B"), "ok": True}],
        [{**track("C"), "ok": True}],
    ]


def test_a_signal_for_the_workers_process_group_does_not_reach_sandboxes() -> None:
    async def go() -> list[Transformed]:
        async def code_of(version: int) -> str:
            return "function transformEvent(e) { return e; }"

        javascript = JavaScript(code_of)
        meta = Metadata(uuid4(), uuid4(), "webhook", "m")
        try:
            await javascript.run(1, [(track("A"), meta)])
            [pid] = sandboxes()
            assert os.getpgid(pid) != os.getpgid(0)  # (a Ctrl-C is the worker's to handle)
            os.kill(pid, signal.SIGINT)
            os.kill(pid, signal.SIGTERM)
            await asyncio.sleep(0.2)
            assert sandboxes() == [pid]
            return await javascript.run(1, [(track("B"), meta)])
        finally:
            await javascript.close()

    [result] = asyncio.run(go())
    assert result.events == [track("B")]


def test_a_string_cut_in_the_middle_of_an_emoji_comes_back_with_a_replacement_character() -> None:
    code = """function transformEvent(e) {
      e.cut = "ok \\ud83d"; e.pair = "\\ud83d\\ude00"; return e;
    }"""
    [result] = run(code, track("A"))
    assert result.error is None
    assert result.events == [{**track("A"), "cut": "ok \ufffd", "pair": "\U0001f600"}]


def test_an_event_made_into_more_events_than_allowed_fails_alone() -> None:
    code = """function transformEvent(e) {
      var made = [];
      for (var i = 0; i < (e.event === "Flood" ? 5000 : 3); i++) made.push({...e, n: i});
      return made;
    }"""
    flood, few = run(code, track("Flood"), track("Few"))
    assert flood.events == [] and flood.error == (
        "the transformation made 5000 events of one; at most 200 may be made"
        " (SLUICE_TRANSFORM_MAX_EVENTS)"
    )
    assert [e["n"] for e in few.events] == [0, 1, 2]
    [capped] = run(code, track("Few"), max_events=2)
    assert capped.error is not None and "made 3 events of one; at most 2" in capped.error


def test_a_sandbox_gives_up_root_and_any_new_privilege_before_it_runs_code() -> None:
    async def go() -> list[dict[str, str]]:
        async def code_of(version: int) -> str:
            return "function transformEvent(e) { return e; }"

        javascript = JavaScript(code_of)
        try:
            [done] = await javascript.run(
                1, [(track("A"), Metadata(uuid4(), uuid4(), "webhook", "m"))]
            )
            assert done.events == [track("A")]
            [pid] = sandboxes()
            found = []
            for task in Path(f"/proc/{pid}/task").iterdir():  # every thread: V8's run the code
                text = (task / "status").read_text().splitlines()
                found.append(dict(line.split(":\t", 1) for line in text if ":\t" in line))
            return found
        finally:
            await javascript.close()

    threads = uvloop.run(go())
    assert len(threads) > 1
    if os.geteuid() == 0:  # (as `sluice run` started by root, and the tests in CI, are)
        account = next(pwd.getpwnam(n) for n in children.UNPRIVILEGED if _exists(n))
        expected = (account.pw_uid, account.pw_gid)
    else:
        expected = (os.geteuid(), os.getegid())
    for status in threads:
        assert {int(i) for i in status["Uid"].split()} == {expected[0]}  # real, effective, saved
        assert {int(i) for i in status["Gid"].split()} == {expected[1]}
        assert status["Groups"].strip() == "" and status["NoNewPrivs"].strip() == "1"


def _exists(user: str) -> bool:
    try:
        pwd.getpwnam(user)
    except KeyError:
        return False
    return True


def test_transform_batch_is_held_to_the_cap_for_the_whole_call() -> None:
    # New events of transformBatch (no messageId of an input) all go with the first input: the
    # cap counts them against every input of the call.
    code = """function transformBatch(events) {
      var made = [];
      var n = events[0].properties.n;
      for (var i = 0; i < n; i++) made.push({type: "track", event: "New " + i});
      return made;
    }"""
    first, second = run(code, track("A", properties={"n": 300}), track("B", messageId="b"))
    assert len(first.events) == 300 and first.error is None and second.events == []
    over = run(code, track("A", properties={"n": 401}), track("B", messageId="b"))
    assert [r.error for r in over] == [
        "the transformation made 401 events of 2; at most 200 of each may be made"
        " (SLUICE_TRANSFORM_MAX_EVENTS)"
    ] * 2
