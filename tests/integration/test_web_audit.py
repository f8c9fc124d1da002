"""The audit log's filters: the "who" menu offers the accounts, the API tokens and the command
line — not whatever a stranger typed into the sign-in form."""

import re

from litestar.testing import AsyncTestClient

from engine.control import tokens
from engine.db import connection
from tests.integration.test_web_security import app_with, sign_in

WORKSPACE = "sources: [{name: web}]"


async def test_the_who_menu_lists_accounts_tokens_and_the_cli_not_typed_addresses(
    database_url: str,
) -> None:
    app = await app_with(database_url, "admin", WORKSPACE, "viewer")
    async with connection(database_url) as conn:
        await tokens.create(conn, "deploy", "editor", "test")
    async with AsyncTestClient(app) as client:
        for n in range(3):
            await sign_in(client, f"stranger{n}@evil.example", "wrong password")
        await sign_in(client, "admin@example.com")
        page = (await client.get("/audit")).text
        typed = (await client.get("/audit?who=stranger0%40evil.example")).text
    who = re.search(r'<select id="a-who".*?</select>', page, re.S)
    assert who is not None
    offered = re.findall(r'<option value="([^"]*)"', who[0])
    assert offered == ["", "admin@example.com", "viewer@example.com", "token deploy", "cli"]
    assert "<td>stranger2@evil.example</td>" in page  # (their tries are in the log, though)
    assert '<option value="stranger0@evil.example" selected>' in typed  # (a filter shows)
