"""The settings Sluice gives a pool's sessions (where no one else gave them a value), and how
PostgreSQL's errors are told apart."""

import logging
import secrets

import pytest
from psycopg.conninfo import make_conninfo

from engine.db import connection, connection_pool
from engine.errors import DatabaseUnavailable, ValueRefused


async def _settings(url: str, settings: dict[str, str], *names: str) -> tuple[str, ...]:
    pool = connection_pool(url, settings=settings)
    await pool.open()
    try:
        async with pool.connection() as conn:
            cur = await conn.execute(
                "SELECT array_agg(current_setting(n) ORDER BY o)"
                " FROM unnest(%s::text[]) WITH ORDINALITY AS t(n, o)",
                [list(names)],
            )
            found = await cur.fetchone()
    finally:
        await pool.close()
    assert found is not None
    return tuple(found[0])


async def test_sessions_take_the_pools_settings(workspace_config: str) -> None:
    settings = {"backend_flush_after": "256kB", "work_mem": "5MB"}
    assert await _settings(workspace_config, settings, *settings) == ("256kB", "5MB")


async def test_sessions_go_without_jit_compilation(workspace_config: str) -> None:
    """JIT compiled the processor's duplicate check batch after batch once its plan was reckoned
    dear (100-200 ms of PostgreSQL's CPU each time): every pool turns it off, unless told."""
    assert await _settings(workspace_config, {}, "jit") == ("off",)
    assert await _settings(workspace_config, {"work_mem": "5MB"}, "jit", "work_mem") == (
        "off", "5MB")  # fmt: skip
    told = make_conninfo(workspace_config, options="-c jit=on")
    assert await _settings(told, {}, "jit") == ("on",)


async def test_a_value_the_connection_gives_wins(workspace_config: str) -> None:
    url = make_conninfo(workspace_config, options="-c backend_flush_after=0")
    found = await _settings(url, {"backend_flush_after": "256kB", "work_mem": "5MB"},
                            "backend_flush_after", "work_mem")  # fmt: skip
    assert found == ("0", "5MB")


async def test_a_setting_the_server_refuses_costs_a_warning_not_the_session(
    workspace_config: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="engine.db"):
        found = await _settings(workspace_config, {"backend_flush_after": "lots"},
                                "backend_flush_after")  # fmt: skip
    assert found == ("0",)
    assert await _settings(workspace_config, {"backend_flush_after": "lots"}, "jit") == ("off",)
    assert "sessions go without the settings backend_flush_after:" in caplog.text


async def test_a_value_past_a_limit_of_postgresql_is_refused_not_taken_for_an_outage(
    database_url: str,
) -> None:
    """An index entry too large is psycopg's OperationalError, as a lost server is; it is the
    value's fault, and sending it again would fail again."""
    with pytest.raises(ValueRefused, match="index row") as caught:
        async with connection(database_url) as conn:  # (its errors are translated on the way out)
            await conn.execute(
                "INSERT INTO sources (name, write_key) VALUES (%s, 'limit-test-key')",
                [secrets.token_hex(600_000)],  # (random: too large even compressed)
            )
    assert not isinstance(caught.value, DatabaseUnavailable)
