"""The pool's sessions: the settings Sluice gives them, and those the database URL gives."""

from psycopg.conninfo import make_conninfo

from engine.db import connection_pool


async def test_sessions_start_with_the_pools_settings_and_the_urls_own(
    workspace_config: str,
) -> None:
    url = make_conninfo(workspace_config, options="-c work_mem=5MB")
    pool = connection_pool(url, settings={"backend_flush_after": "256kB"})
    await pool.open()
    try:
        async with pool.connection() as conn:
            cur = await conn.execute(
                "SELECT current_setting('backend_flush_after'), current_setting('work_mem')"
            )
            assert await cur.fetchone() == ("256kB", "5MB")
    finally:
        await pool.close()
