"""The gateway and the worker's stages look for reference cycles rarely (appliance/roles.py),
but still look: cycles made while serving are reclaimed without anyone asking for it."""

import gc
import weakref
from collections.abc import Iterator

import pytest

from appliance.roles import collect_cycles_rarely


@pytest.fixture
def restored() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


class _Cycle:
    def __init__(self) -> None:
        self.me = self  # reference counting alone never frees it


def test_startup_objects_are_left_out_and_cycles_are_still_reclaimed(restored: None) -> None:
    collect_cycles_rarely()
    assert gc.get_freeze_count() > 0  # (this process's objects so far: never looked at again)
    reclaimed: list[bool] = []
    first = _Cycle()
    weakref.finalize(first, reclaimed.append, True)
    del first
    kept = [_Cycle() for _ in range(10_000)]  # (700 made Python look, before)
    assert not reclaimed  # looked for rarely...
    for _ in range(50_000):
        _Cycle()
    assert reclaimed == [True]  # ...but still looked for
    assert kept
