"""Input real clients rarely send but the gateway must survive: each fails alone, clearly."""

import gzip
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
from psycopg import sql

from tests.conftest import WRITE_KEY, ingested
from tests.servers import GatewayProcess, running_gateway

AUTH = (WRITE_KEY, "")


def rejection(answer: httpx.Response) -> tuple[int, str]:
    body = answer.json()
    assert set(body) == {"code", "message"}
    return answer.status_code, body["code"]


def test_client_address_from_trusted_proxies_only(workspace_config: str, tmp_path: Path) -> None:
    trusted = '["127.0.0.0/8", "10.0.0.0/8"]'
    event = {"userId": "u", "event": "E"}
    with running_gateway(workspace_config, tmp_path, trusted_proxies=trusted) as gw:
        hops = "192.0.2.1, 198.51.100.7, 10.1.2.3"  # made up, the client, our inner proxy
        for forwarded in (hops, "not-an-ip"):
            headers = {"X-Forwarded-For": forwarded}
            httpx.post(f"{gw.url}/v1/track", json=event, auth=AUTH, headers=headers)
    first, second = (r["payload"]["request_ip"] for r in ingested(workspace_config))
    assert (first, second) == ("198.51.100.7", "127.0.0.1")


def test_served_api_host_believes_forwarded_headers_of_trusted_proxies_only(
    gateway: GatewayProcess, workspace_config: str, tmp_path: Path
) -> None:
    def protocol(gw: GatewayProcess, proto: str) -> str:
        answer = httpx.get(
            f"{gw.url}/v1/projects/{WRITE_KEY}/settings", headers={"X-Forwarded-Proto": proto}
        )
        return str(answer.json()["integrations"]["Segment.io"]["protocol"])

    assert protocol(gateway, "https") == "http"  # anyone may send the header: not believed
    with running_gateway(workspace_config, tmp_path, trusted_proxies='["127.0.0.0/8"]') as gw:
        assert protocol(gw, "https") == "https"
        assert protocol(gw, "gopher") == "http"


def test_pretty_printed_json_is_stored_exactly(
    gateway: GatewayProcess, workspace_config: str
) -> None:
    single = (
        '{\n\t"userId": "u1",\r\n\t"event": "Tab\\tand \\\\ backslash",'
        '\n\t"properties": {"a": 1}\n}'
    )
    batch = '{"batch": [\n  {"type":\t"page", "userId": "u2", "name": "Home"}\n]}'
    assert httpx.post(f"{gateway.url}/v1/track", content=single, auth=AUTH).status_code == 200
    assert httpx.post(f"{gateway.url}/v1/batch", content=batch, auth=AUTH).status_code == 200
    first, second = (r["payload"] for r in ingested(workspace_config))
    assert first["event"] == "Tab\tand \\ backslash"
    assert first["properties"] == {"a": 1}
    assert second["name"] == "Home"


def test_invalid_utf8_is_400(gateway: GatewayProcess, workspace_config: str) -> None:
    for path in ("/v1/track", "/v1/identify"):  # the quick way and the full way
        body = b'{"userId":"u","traits":{"name":"\xff"},"event":"\xff"}'
        answer = httpx.post(f"{gateway.url}{path}", content=body, auth=AUTH)
        assert rejection(answer) == (400, "bad_request")
    assert ingested(workspace_config) == []


def test_numbers_beyond_float_range_are_kept_exactly(
    gateway: GatewayProcess, workspace_config: str
) -> None:
    body = b'{"userId":"u","traits":{"n":1e999,"x":0.1},"properties":{"n":1e999}}'
    for path in ("/v1/track", "/v1/identify"):  # the quick way and the full way
        assert httpx.post(f"{gateway.url}{path}", content=body, auth=AUTH).status_code == 200
    with psycopg.connect(workspace_config) as conn:
        stored = conn.execute(
            "SELECT payload->'properties'->>'n', payload->'traits'->>'n', payload->'traits'->>'x'"
            " FROM ingested ORDER BY id"
        ).fetchall()
    assert [tuple(float(v) for v in row) for row in stored] == [
        (float("inf"), float("inf"), 0.1)
    ] * 2


def test_chunked_body_over_the_limit_is_refused(workspace_config: str, tmp_path: Path) -> None:
    def chunks(pad: int) -> Iterator[bytes]:
        yield b'{"batch": ['
        for _ in range(pad):
            yield b'{"type": "track", "userId": "u", "properties": {"p": "' + b"x" * 1000 + b'"}},'
        yield b'{"type": "track", "userId": "u"}]}'

    with running_gateway(workspace_config, tmp_path, max_request_bytes="65536") as gw:
        big = httpx.post(f"{gw.url}/v1/batch", content=chunks(200), auth=AUTH)
        small = httpx.post(f"{gw.url}/v1/batch", content=chunks(0), auth=AUTH)
    assert rejection(big) == (413, "payload_too_large")
    assert small.status_code == 200
    assert len(ingested(workspace_config)) == 1


def test_every_gzip_member_counts_and_truncation_is_refused(
    gateway: GatewayProcess, workspace_config: str
) -> None:
    events = [{"type": "track", "userId": "u", "event": f"E{i}"} for i in (1, 2)]
    whole = json.dumps({"batch": events}).encode()
    headers = {"Content-Encoding": "gzip"}
    two_members = gzip.compress(whole[:40]) + gzip.compress(whole[40:])
    truncated = gzip.compress(whole)[:-6]
    joined = httpx.post(f"{gateway.url}/v1/batch", content=two_members, auth=AUTH, headers=headers)
    cut = httpx.post(f"{gateway.url}/v1/batch", content=truncated, auth=AUTH, headers=headers)
    assert joined.status_code == 200
    assert rejection(cut) == (400, "bad_request")
    assert [r["payload"]["event"] for r in ingested(workspace_config)] == ["E1", "E2"]


def test_a_database_that_refuses_writes_gets_503_not_400(
    workspace_config: str, tmp_path: Path
) -> None:
    """A read-only primary (one just demoted, say) must make SDKs retry, never drop events;
    with the spool, the gateway keeps them itself."""
    with psycopg.connect(workspace_config, autocommit=True) as conn:
        conn.execute(
            sql.SQL("ALTER DATABASE {} SET default_transaction_read_only = on").format(
                sql.Identifier(conn.info.dbname)
            )
        )
    (tmp_path / "off").mkdir()
    (tmp_path / "on").mkdir()
    with running_gateway(workspace_config, tmp_path / "off", spool_max_mb="0") as gw:
        answer = httpx.post(f"{gw.url}/v1/track", json={"userId": "u"}, auth=AUTH)
    assert rejection(answer) == (503, "unavailable")
    assert answer.headers["retry-after"] == "1"
    assert "read-only" in gw.output()
    with running_gateway(workspace_config, tmp_path / "on") as gw:
        answer = httpx.post(f"{gw.url}/v1/track", json={"userId": "u"}, auth=AUTH)
        assert answer.status_code == 200
        assert list((tmp_path / "on" / "spool").glob("*.spool"))
    assert "read-only" in gw.output()


def test_browser_config_is_never_cached(gateway: GatewayProcess) -> None:
    settings = httpx.get(f"{gateway.url}/v1/projects/{WRITE_KEY}/settings")
    config = httpx.get(f"{gateway.url}/sourceConfig/?writeKey={WRITE_KEY}")
    assert settings.headers["cache-control"] == config.headers["cache-control"] == "no-store"


def test_a_huge_message_id_is_stored_like_any_other(
    gateway: GatewayProcess, workspace_config: str
) -> None:
    huge = "m" * 20_000  # far past what a B-tree index entry can hold
    batch = [
        {"type": "track", "userId": "u", "event": "E", "messageId": huge},
        {"type": "track", "userId": "u", "event": "E", "messageId": "normal"},
    ]
    answer = httpx.post(f"{gateway.url}/v1/batch", json={"batch": batch}, auth=AUTH)
    assert answer.status_code == 200, answer.text
    assert sorted(len(row["message_id"]) for row in ingested(workspace_config)) == [6, 20_000]


def test_a_flood_of_gzip_members_is_refused_and_a_bad_key_before_the_body(
    gateway: GatewayProcess, workspace_config: str
) -> None:
    # ~4 MB of empty gzip members: each once copied the rest of the body, for minutes of work.
    flood = gzip.compress(b"") * 200_000
    gz = {"Content-Encoding": "gzip"}
    answer = httpx.post(f"{gateway.url}/v1/batch", content=flood, headers=gz, timeout=30)
    assert rejection(answer) == (400, "bad_request")
    assert "over 64 members" in answer.json()["message"]
    # A key in the header or the query is refused before the body is read or decompressed;
    # the client still gets its answer, and the connection serves the next request.
    body = gzip.compress(b'{"batch": [{"type": "track", "userId": "u", "event": "E"}]}')
    with httpx.Client(base_url=gateway.url, timeout=30) as client:
        for where in ({"auth": ("wrong-key-123", "")}, {"params": {"writeKey": "wrong-key-123"}}):
            refused = client.post("/v1/batch", content=flood, headers=gz, **where)
            assert rejection(refused) == (401, "invalid_write_key")
        two_members = gzip.compress(b'{"batch": [{"type": "track", "userId": "u", "event": "A"},')
        two_members += gzip.compress(b'{"type": "track", "userId": "u", "event": "B"}]}')
        for accepted in (two_members, body):
            answer = client.post("/v1/batch", content=accepted, headers=gz, auth=AUTH)
            assert answer.status_code == 200
    assert [r["payload"]["event"] for r in ingested(workspace_config)] == ["A", "B", "E"]
