"""The second wave of destinations against their conformance cases
(tests/conformance/destinations2.json): single events through the preview, as in the first
wave, and router cases — a list of events and the batches RudderStack's router makes of them —
through the batched preview, which batches as Sluice's router does. How requests are compared:
`tests.cases`."""

import dataclasses
import json
from collections import defaultdict
from typing import Any

import pytest

from engine.control import preview
from engine.destinations.catalog import TYPES
from engine.pipeline.topology import Target
from tests import cases

CASES = cases.load("destinations2.json")
# The cases name HubSpot by its product; its RudderStack type (and Sluice's) is `hs`.
KIND = {"hubspot": "hs"}
# Destinations of the wave not delivered to yet: their cases run once they are (the test below
# fails when one is added without leaving this list).
PENDING = {
    "braze", "hs", "customerio", "intercom", "klaviyo", "iterable", "posthog", "slack",
    "tiktok_ads", "pinterest_tag", "snapchat_conversion",
}  # fmt: skip
# RudderStack constants a fixture patched, and the plug-in field that plays the same part.
OVERRIDES = {"maxBatchSizeV2": "batch_size"}


def kind(case: dict[str, Any]) -> str:
    name: str = case["destination"]
    return KIND.get(name, name)


HERE = [case for case in CASES if kind(case) in TYPES]
SINGLE = [case for case in HERE if "event" in case]
ROUTER = [case for case in HERE if "events" in case]


def test_every_destination_of_the_wave_is_delivered_to_or_pending() -> None:
    assert {kind(case) for case in CASES} - set(TYPES) == PENDING


@pytest.mark.parametrize("case", SINGLE, ids=[case["id"] for case in SINGLE])
def test_single_event(case: dict[str, Any]) -> None:
    kind_, config, expected = kind(case), case["config"], case["expected"]
    event = cases.event(case["event"])
    if "error" in expected:
        # Refused by the mapping (a failed job), or a call type the destination does not take
        # (filtered): either way nothing is sent.
        with pytest.raises(preview.PreviewError, match=r"cannot send|does not take"):
            preview.of_type(kind_, config, event, cases.now(case))
        return
    made = [cases.shown(r) for r in preview.of_type(kind_, config, event, cases.now(case))]
    wanted = cases.masked(kind_, config, expected.get("requests", [expected]))
    assert len(made) == len(wanted), made
    loose = [cases.loose_path(field) for field in case.get("loose_fields") or []]
    for ours, theirs in zip(made, wanted, strict=True):
        assert cases.comparable(ours, loose) == cases.expected(theirs, loose)


@pytest.mark.parametrize("case", ROUTER, ids=[case["id"] for case in ROUTER])
def test_router_batches(case: dict[str, Any]) -> None:
    """Each request we would send is one the case expects, for events of the batch that carries
    it (a batch may carry several requests: Klaviyo's profiles and their subscription job), and
    every expected request is sent; refused events are refused."""
    loose = [cases.loose_path(field) for field in case.get("loose_fields") or []]
    refused, made = _ours(case)
    wanted_refused: set[int] = set()
    wanted: list[tuple[set[int], dict[str, Any]]] = []
    for batch in case["expected"]["batches"]:
        indices = set(batch["event_indices"])
        if "error" in batch:
            wanted_refused |= indices
            continue
        config = _config(case, batch["event_indices"][0])
        for request in cases.masked(kind(case), config, batch["requests"]):
            wanted.append((indices, cases.expected(request, loose)))
    assert refused == wanted_refused
    for indices, request in made:
        ours = cases.comparable(request, loose)
        match = next((w for w in wanted if indices <= w[0] and w[1] == ours), None)
        assert match is not None, (
            f"events {sorted(indices)} would be sent\n{json.dumps(ours, indent=1)}\n"
            f"which the case does not expect; it expects\n{json.dumps(wanted, indent=1)}"
        )
        wanted.remove(match)
    assert wanted == [], "expected but not sent"


def _config(case: dict[str, Any], index: int) -> dict[str, Any]:
    config: dict[str, Any] = case.get("config_overrides", {}).get(str(index), case["config"])
    return config


def _ours(case: dict[str, Any]) -> tuple[set[int], list[tuple[set[int], dict[str, Any]]]]:
    """The events our router would refuse (or filter), and the requests it would send, each
    with the events it carries. Events whose destination config differs (`config_overrides`)
    belong to another destination: each config's events are batched on their own."""
    by_config: dict[str, list[int]] = defaultdict(list)
    for index in range(len(case["events"])):
        by_config[json.dumps(_config(case, index), sort_keys=True)].append(index)
    refused: set[int] = set()
    made: list[tuple[set[int], dict[str, Any]]] = []
    for config, indices in by_config.items():
        target = _target(case, json.loads(config))
        events = [cases.event(case["events"][i]) for i in indices]
        for batch in preview.batched(target, events, cases.now(case)):
            carried = {indices[i] for i in batch.event_indices}
            if batch.error is not None or batch.filtered is not None:
                refused |= carried
            made.extend((carried, cases.shown(request)) for request in batch.requests)
    return refused, made


def _target(case: dict[str, Any], config: dict[str, Any]) -> Target:
    target = preview.unsaved(kind(case), config)
    patched = {OVERRIDES[k]: v for k, v in (case.get("rs_overrides") or {}).items()}
    if patched and target.plugin is not None:
        target = dataclasses.replace(target, plugin=dataclasses.replace(target.plugin, **patched))
    return target
