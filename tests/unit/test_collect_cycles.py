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
    assert not reclaimed
    for _ in range(60_000):  # more net allocations than the collector now waits for
        _Cycle()
    assert reclaimed == [True]
