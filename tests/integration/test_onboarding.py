"""The first steps of a new workspace: shown until an event is delivered, and never again after
it, though the counters that showed the delivery expire."""

from uuid import uuid4

from engine.control import graph, onboarding
from engine.db import Connection, connection

COUNT = "INSERT INTO stats_minute VALUES (now(), %s, %s, %s, 1)"


async def _steps(conn: Connection) -> onboarding.FirstSteps | None:
    return await onboarding.first_steps(conn, await graph.load(conn))


async def test_steps_show_until_a_first_delivery_and_never_again(database_url: str) -> None:
    async with connection(database_url) as conn:
        assert await _steps(conn) == onboarding.FirstSteps(False, False, False, False)
        await conn.execute(COUNT, (uuid4(), uuid4(), "received"))
        steps = await _steps(conn)
        assert steps is not None and steps.received and steps.next() == "source"
        await conn.execute(COUNT, (uuid4(), uuid4(), "delivered"))
        assert await _steps(conn) is None
        await conn.execute("DELETE FROM stats_minute")  # the counters expire
        assert await _steps(conn) is None
