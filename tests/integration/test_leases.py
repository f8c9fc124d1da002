"""Partition leases against a real PostgreSQL: fair shares, hand-over, expiry, fencing."""

import asyncio

import pytest

from engine.db import connection
from engine.pipeline.leases import LeaseLost, Leases, share


def test_shares_divide_the_partitions_fairly() -> None:
    assert [share(["a", "b", "c"], me) for me in "abc"] == [22, 21, 21]
    assert share(["only"], "only") == 64


async def test_workers_joining_and_leaving_rebalance(database_url: str) -> None:
    a, b = Leases("process", "host-a:1"), Leases("process", "host-b:1")
    async with connection(database_url) as conn:
        await conn.set_autocommit(True)
        assert len(await a.renew(conn)) == 64
        assert await b.renew(conn) == frozenset()  # all taken: b waits for a to give some up
        keep = await a.renew(conn)  # a sees b and keeps its share...
        assert keep == frozenset(range(32)) and len(a.held) == 64
        await a.release(conn, set(a.held - keep))  # ...once it has stopped working the rest
        assert await b.renew(conn) == frozenset(range(32, 64))
        # The other stage is leased apart.
        assert len(await Leases("deliver", "host-b:1").renew(conn)) == 64
        await b.leave(conn)
        assert await a.renew(conn) == frozenset(range(64))


async def test_a_silent_worker_loses_its_leases_when_they_expire(database_url: str) -> None:
    a, b = Leases("deliver", "host-a:1", ttl=1), Leases("deliver", "host-b:1", ttl=1)
    async with connection(database_url) as conn:
        await conn.set_autocommit(True)
        await a.renew(conn)
        assert await b.renew(conn) == frozenset()
        assert a.fresh()
        await asyncio.sleep(1.2)  # a says nothing for longer than a lease lasts
        assert not a.fresh()
        assert await b.renew(conn) == frozenset(range(64))  # (a no longer counts either)
        with pytest.raises(LeaseLost, match=r"deliver: partitions \[0, 1, 2"):
            async with conn.transaction():
                await a.check(conn, [0, 1, 2])


@pytest.mark.parametrize("renewed", [False, True])
async def test_a_lease_checked_by_a_commit_is_not_taken_over_before_it(
    database_url: str, renewed: bool
) -> None:
    a, b = Leases("process", "host-a:1", ttl=1), Leases("process", "host-b:1", ttl=1)
    async with connection(database_url) as first, connection(database_url) as second:
        await first.set_autocommit(True)
        await second.set_autocommit(True)
        await a.renew(first)
        async with first.transaction():
            await a.check(first, [5])  # a commits work on partition 5...
            if renewed:  # ...renewed meanwhile, without waiting for that commit
                assert len(await asyncio.wait_for(a.renew(second), 2)) == 64
            await asyncio.sleep(1.2)  # ...slowly: its leases, renewed or not, expire
            taken = await b.renew(second)
            assert len(taken) == 63 and 5 not in taken  # b passes 5 by until a's commit
        assert await b.renew(second) == frozenset(range(64))
