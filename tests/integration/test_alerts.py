"""Alert rules against a real PostgreSQL and a real webhook: an alert fires while its
condition holds, once, and resolves when it clears — each time a POST to the webhook."""

import asyncio
from uuid import UUID

import httpx
import psycopg
import pytest

from engine.control import alerts
from engine.control.alerts import Rule
from engine.db import connection
from engine.errors import ConfigError
from engine.store import counters
from tests.conftest import apply_config
from tests.integration.test_events import WORKSPACE
from tests.integration.test_web_activity import counted, ids
from tests.sink import Sink


def evaluated(database_url: str) -> tuple[list[alerts.Alert], list[alerts.Alert]]:
    async def go() -> tuple[list[alerts.Alert], list[alerts.Alert]]:
        async with connection(database_url) as conn, httpx.AsyncClient() as client:
            opened, closed = await alerts.evaluate(conn)
            await alerts.notify(conn, client, opened, closed)
            return opened, closed

    return asyncio.run(go())


def ruled(database_url: str, rule: Rule) -> None:
    async def go() -> None:
        async with connection(database_url) as conn:
            await alerts.save(conn, rule)

    asyncio.run(go())


def aged(database_url: str, minutes: int) -> None:
    """Every counter so far, `minutes` older."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("UPDATE stats_minute SET minute = minute - make_interval(mins => %s)",
                     (minutes,))  # fmt: skip


def test_a_failure_share_above_the_rule_fires_once_and_resolves(database_url: str) -> None:
    apply_config(database_url, WORKSPACE)
    at = ids(database_url)
    hook: UUID = at["hook"]
    with Sink() as sink:
        ruled(database_url, Rule(destination_id=hook, failure_percent=10, window_minutes=15,
                                 webhook_url=f"{sink.url}/alert"))  # fmt: skip
        settled = counters.Counts(
            {(at["web"], hook, "delivered"): 20, (at["web"], hook, "aborted"): 5}
        )
        asyncio.run(counted(database_url, settled))
        opened, closed = evaluated(database_url)
        assert [a.kind for a in opened] == ["failures"] and closed == []
        assert opened[0].message == (
            "hook: 5 of 25 events failed in the last 15 min (20%, above 10%)"
        )
        assert evaluated(database_url) == ([], [])  # still firing: not again
        aged(database_url, 20)  # the failures are now outside the window
        opened, closed = evaluated(database_url)
        assert opened == [] and [a.kind for a in closed] == ["failures"]
        posts = sink.wait_for(2)
    assert [p.json()["status"] for p in posts] == ["firing", "resolved"]
    assert posts[0].json()["message"].startswith("hook: 5 of 25")
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT notified, ended_at IS NOT NULL FROM alerts").fetchall()
    assert rows == [("sent", True)]


def test_too_few_events_or_a_low_share_do_not_fire(database_url: str) -> None:
    apply_config(database_url, WORKSPACE)
    at = ids(database_url)
    ruled(database_url, Rule(destination_id=at["hook"], failure_percent=10))
    asyncio.run(counted(database_url, counters.Counts({(at["web"], at["hook"], "aborted"): 3})))
    assert evaluated(database_url) == ([], [])  # 3 of 3 failed: too few to judge
    asyncio.run(counted(database_url, counters.Counts({(at["web"], at["hook"], "delivered"): 97})))
    assert evaluated(database_url) == ([], [])  # 3% is below the rule's 10%


def test_nothing_delivered_while_events_are_due_fires_and_a_delivery_resolves_it(
    database_url: str,
) -> None:
    apply_config(database_url, WORKSPACE)
    at = ids(database_url)
    hook = at["hook"]
    no_destination = UUID(int=0)
    ruled(database_url, Rule(destination_id=hook, silence_minutes=10))
    # received just now: may not be delivered yet, so not due
    asyncio.run(
        counted(database_url, counters.Counts({(at["web"], no_destination, "received"): 30}))
    )
    assert evaluated(database_url) == ([], [])
    aged(database_url, 5)  # now 5 minutes old, and still nothing delivered
    [silence], _ = evaluated(database_url)
    assert silence.message == "hook: nothing delivered for 10 min although 30 events were due"
    asyncio.run(counted(database_url, counters.Counts({(at["web"], hook, "delivered"): 30})))
    _, [resolved] = evaluated(database_url)
    assert resolved.id == silence.id and resolved.notified is None  # (no webhook: no post)


def test_a_rule_the_database_would_refuse_is_explained() -> None:
    for rule, words in (
        (Rule(destination_id=UUID(int=1), failure_percent=0), "percentage above 0"),
        (Rule(destination_id=UUID(int=1), window_minutes=0), "1 to 1440 minutes"),
        (Rule(destination_id=UUID(int=1), silence_minutes=1), "5 minutes to 7 days"),
        (Rule(destination_id=UUID(int=1), webhook_url="ftp://x"), r"an http\(s\) URL"),
    ):
        with pytest.raises(ConfigError, match=words):
            rule.check()
