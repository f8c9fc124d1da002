"""The config API against its own OpenAPI document: schemathesis makes requests from the
document — valid ones and broken ones — with an admin's token, to a real `sluice web` on a real
PostgreSQL, and every answer must be what the document says (status, headers, body) and never
a 5xx. (A request of the documented shape may still be refused for what it says — an unknown
destination type, a NUL in a name — so one is not required to succeed: it is required to be
answered as documented.) Seeded, so a run is the same run every time; bounded by a number of
examples per operation."""

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.core.result import Err, Ok
from schemathesis.specs.openapi.checks import positive_data_acceptance

from engine import specs
from engine.control import tokens, workspace
from engine.db import connection
from tests.servers import start_web

WORKSPACE = """
sources: [{name: web, write_key: web-write-key-0123456789}]
destinations: [{name: hook, type: webhook, config: {webhookUrl: "https://hook.example.com/in"}}]
transformations: [{name: t, code: "export function transformEvent(e) { return e; }"}]
connections: [{source: web, destination: hook, transformation: t}]
"""
EXAMPLES = 60  # per operation


async def _admin_token(database_url: str) -> str:
    async with connection(database_url) as conn:
        await workspace.apply(conn, specs.parse(WORKSPACE))
        secret, _ = await tokens.create(conn, "fuzz", "admin", "test")
    return secret


def test_every_answer_is_the_one_the_document_promises(database_url: str, tmp_path: Path) -> None:
    secret = asyncio.run(_admin_token(database_url))
    web = start_web(database_url, tmp_path)
    try:
        schema = schemathesis.openapi.from_url(f"{web.url}/api/v1/openapi/openapi.json")
        found = list(schema.get_all_operations())
        invalid = [result.err() for result in found if isinstance(result, Err)]
        assert not invalid, invalid  # every operation's schema is one OpenAPI 3.1 takes
        operations = [result.ok() for result in found if isinstance(result, Ok)]
        tried, answered = 0, Counter[int]()
        for operation in operations:
            if "/openapi" in operation.path:
                continue  # the document itself

            @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                      suppress_health_check=list(HealthCheck))  # fmt: skip
            @given(case=operation.as_strategy())
            def fuzz(case: Any) -> None:
                answer = case.call_and_validate(
                    base_url=web.url,
                    headers={"Authorization": f"Bearer {secret}"},
                    excluded_checks=[positive_data_acceptance],
                )
                answered[answer.status_code] += 1

            fuzz()
            tried += 1
        assert tried >= 15
        # (the token worked: reads and changes were made, not only refused)
        assert answered[200] > 100 and answered[401] == answered[403] == 0, answered
    finally:
        web.stop()
    assert "Traceback" not in web.output()
