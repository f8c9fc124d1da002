"""A transformation runtime for a command that runs transformations again (the replays)."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from appliance.settings import Settings
from engine.db import connection_pool
from engine.transformations.runtime import JavaScript
from engine.transformations.store import CodeStore


@asynccontextmanager
async def javascript(url: str, settings: Settings) -> AsyncIterator[JavaScript]:
    """A runtime of this process's own, reading transformations' code from the database; its
    sandboxes stop with the block."""
    pool = connection_pool(url, max_size=2)
    await pool.open()
    runtime = JavaScript(CodeStore(pool).code, max_events=settings.transform_max_events)
    try:
        yield runtime
    finally:
        await runtime.close()
        await pool.close()
