"""The second wave of destinations against their conformance cases
(tests/conformance/destinations2.json): single events through the preview, as in the first
wave, and router cases — a list of events and the batches RudderStack's router makes of them —
through the batched preview, which batches as Sluice's router does. How requests are compared:
`tests.cases`."""

import copy
import dataclasses
import json
from collections.abc import Callable
from typing import Any

import pytest

from engine.control import preview
from engine.destinations.catalog import TYPES
from engine.pipeline.delivery.lookups import Given
from engine.pipeline.topology import Target
from tests import cases

CASES = cases.load("destinations2.json")
# The cases name HubSpot by its product; its RudderStack type (and Sluice's) is `hs`.
KIND = {"hubspot": "hs"}
# Destinations of the wave not delivered to yet: their cases run once they are (the test below
# fails when one is added without leaving this list).
PENDING: set[str] = set()
# RudderStack constants a fixture patched, and the plug-in field that plays the same part.
OVERRIDES = {"maxBatchSizeV2": "batch_size"}
# RudderStack environment flags a fixture ran with (`rs_env`), and the settings that make the
# same choice in Sluice, where it is the user's.
RS_ENV = {"CUSTOMERIO_BATCHING_FRAMEWORK_ENABLED_WORKSPACE_IDS": {"trackApi": "v2"}}
# Fields Sluice adds on purpose, which RudderStack does not send: the vendors' own dedup ids,
# made from the messageId, so that an event Sluice sends again (delivery is at least once) is
# not counted twice. Left out of the comparison on both sides (paths as in `loose_fields`).
ADDED: dict[str, list[str]] = {
    "posthog": ["body.uuid", "body.batch[].uuid"],
    "customerio": ["body.id", "body.batch[].id"],
    "iterable": ["body.id", "body.events[].id"],
}


def _one_subscription_per_identify(batches: list[dict[str, Any]]) -> None:
    """klv-13: a user identifies twice, each identify making a profile request and then a
    subscription job. RudderStack merges the two subscriptions into one job sent after both
    profiles; Sluice sends a user's requests in order, so each subscription follows its own
    profile request, and the two cannot share a job."""
    [batch] = batches
    *profiles, subscription = batch["requests"]
    split = []
    for profile in subscription["body"]["data"]["attributes"]["profiles"]["data"]:
        one = copy.deepcopy(subscription)
        one["body"]["data"]["attributes"]["profiles"]["data"] = [profile]
        split.append(one)
    batch["requests"] = [*profiles, *split]


def _page_after_identify(batches: list[dict[str, Any]]) -> None:
    """itb-13: a user's track (0), identify (1) and page (5). RudderStack sends the page in
    the events bulk request with the track, before the identify; Sluice keeps the user's order,
    so the page goes in a bulk request of its own after the identify."""
    batch = next(b for b in batches if b["event_indices"] == [0, 2, 5])
    [bulk] = batch["requests"]
    first, later = copy.deepcopy(bulk), copy.deepcopy(bulk)
    first["body"]["events"], later["body"]["events"] = (
        bulk["body"]["events"][:2],
        bulk["body"]["events"][2:],
    )
    batch["requests"] = [first, later]


def _user_identifies_together(batches: list[dict[str, Any]]) -> None:
    """hs-03: user 12345's identifies (0, 1), a track of no user (2), the user's identifies
    (3, 4). RudderStack cuts the identifies into two runs around the track; in Sluice the track
    is another user's (its own line), so the user's four identifies are consecutive and go in
    one upsert (each pair merged, as the case merges them)."""
    first = next(b for b in batches if b["event_indices"] == [0, 1])
    second = next(b for b in batches if b["event_indices"] == [3, 4])
    first["event_indices"] = [0, 1, 3, 4]
    first["requests"][0]["body"]["inputs"] += second["requests"][0]["body"]["inputs"]
    batches.remove(second)


# Where Sluice batches differently because it keeps each user's events in order
# (docs/pipeline.md): the case's batches as Sluice makes them.
CORRECTIONS: dict[str, Callable[[list[dict[str, Any]]], None]] = {
    "klv-13": _one_subscription_per_identify,
    "itb-13": _page_after_identify,
    "hs-03": _user_identifies_together,
}


def kind(case: dict[str, Any]) -> str:
    name: str = case["destination"]
    return KIND.get(name, name)


HERE = [case for case in CASES if kind(case) in TYPES]
SINGLE = [case for case in HERE if "event" in case]
ROUTER = [case for case in HERE if "events" in case]


def test_every_destination_of_the_wave_is_delivered_to_or_pending() -> None:
    assert {kind(case) for case in CASES} - set(TYPES) == PENDING


@pytest.mark.parametrize("case", SINGLE, ids=[case["id"] for case in SINGLE])
async def test_single_event(case: dict[str, Any]) -> None:
    kind_, config, expected = kind(case), case["config"], case["expected"]
    event, lookups = cases.event(case["event"]), Given(case.get("vendor_lookups") or [])
    if "error" in expected:
        # Refused: by the mapping (a failed job), as a call type the destination does not take
        # (filtered), or with settings Sluice refuses when they are saved. Nothing is sent.
        if preview.unsaved(kind_, config).problem is not None:
            return
        with pytest.raises(preview.PreviewError, match=r"cannot send|does not take"):
            await preview.completed(preview.unsaved(kind_, config), event, cases.now(case), lookups)
        return
    dest = preview.unsaved(kind_, config)
    made = [cases.shown(r) for r in await preview.completed(dest, event, cases.now(case), lookups)]
    wanted = cases.masked(kind_, config, expected.get("requests", [expected]))
    assert len(made) == len(wanted), made
    fields = [*(case.get("loose_fields") or []), *ADDED.get(kind_, [])]
    loose = [path for field in fields for path in cases.loose_paths(field)]
    for ours, theirs in zip(made, wanted, strict=True):
        assert cases.comparable(ours, loose) == cases.expected(theirs, loose)


@pytest.mark.parametrize("case", ROUTER, ids=[case["id"] for case in ROUTER])
async def test_router_batches(case: dict[str, Any]) -> None:
    """Each request we would send is one the case expects, for events of the batch that carries
    it (a batch may carry several requests: Klaviyo's profiles and their subscription job), and
    every expected request is sent; refused events are refused."""
    fields = [*(case.get("loose_fields") or []), *ADDED.get(kind(case), [])]
    loose = [path for field in fields for path in cases.loose_paths(field)]
    refused, made = await _ours(case)
    wanted_refused: set[int] = set()
    wanted: list[tuple[set[int], dict[str, Any]]] = []
    batches = copy.deepcopy(case["expected"]["batches"])
    if case["id"] in CORRECTIONS:
        CORRECTIONS[case["id"]](batches)
    for batch in batches:
        indices = set(batch["event_indices"])
        if "error" in batch:
            wanted_refused |= indices
            continue
        # The preview masks the secrets of every config the events were mapped under.
        requests = batch["requests"]
        for config in [case["config"], *(case.get("config_overrides") or {}).values()]:
            requests = cases.masked(kind(case), config, requests)
        wanted.extend((indices, cases.expected(request, loose)) for request in requests)
    assert refused == wanted_refused
    for indices, request in made:
        ours = cases.comparable(request, loose)
        match = next((w for w in wanted if indices <= w[0] and w[1] == ours), None)
        assert match is not None, (
            f"events {sorted(indices)} would be sent\n{json.dumps(ours, indent=1)}\n"
            f"which the case does not expect; it expects\n"
            + json.dumps([(sorted(i), r) for i, r in wanted], indent=1)
        )
        wanted.remove(match)
    assert wanted == [], "expected but not sent"


async def _ours(case: dict[str, Any]) -> tuple[set[int], list[tuple[set[int], dict[str, Any]]]]:
    """The events our router would refuse (or filter), and the requests it would send, each
    with the events it carries. Events with a config of their own (`config_overrides`) were
    mapped while the destination had those settings, and wait in the same queue."""
    target = _target(case, case["config"])
    earlier = {
        int(i): _target(case, config) for i, config in (case.get("config_overrides") or {}).items()
    }
    events = [cases.event(event) for event in case["events"]]
    lookups = Given(case.get("vendor_lookups") or [])
    refused: set[int] = set()
    made: list[tuple[set[int], dict[str, Any]]] = []
    for batch in await preview.batched(target, events, cases.now(case), lookups, earlier):
        carried = set(batch.event_indices)
        if batch.error is not None or batch.filtered is not None:
            refused |= carried
        made.extend((carried, cases.shown(request)) for request in batch.requests)
    return refused, made


def _target(case: dict[str, Any], config: dict[str, Any]) -> Target:
    for flag in case.get("rs_env") or {}:
        config = {**config, **RS_ENV.get(flag, {})}
    target = preview.unsaved(kind(case), config)
    patched = {OVERRIDES[k]: v for k, v in (case.get("rs_overrides") or {}).items()}
    if patched and target.plugin is not None:
        target = dataclasses.replace(target, plugin=dataclasses.replace(target.plugin, **patched))
    return target
