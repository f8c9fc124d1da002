"""The gateway over real HTTP against a real PostgreSQL: every endpoint, every rejection."""

import asyncio
import base64
import gzip
import json
import os
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg
import pytest

from engine.db import connection_pool
from engine.errors import DatabaseUnavailable
from engine.gateway.sources import SourceDirectory
from tests.conftest import DISABLED_KEY, WRITE_KEY, apply_config, ingested
from tests.servers import GatewayProcess, running_gateway

AUTH = (WRITE_KEY, "")


def track(**extra: object) -> dict[str, object]:
    return {"userId": "u1", "event": "Signed Up", "properties": {"plan": "pro"}, **extra}


def post(gateway: GatewayProcess, path: str, body: object, **kwargs: object) -> httpx.Response:
    return httpx.post(f"{gateway.url}{path}", json=body, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("path", "call_type"),
    [
        ("/v1/track", "track"),
        ("/v1/identify", "identify"),
        ("/v1/page", "page"),
        ("/v1/screen", "screen"),
        ("/v1/group", "group"),
        ("/v1/alias", "alias"),
        ("/v1/t", "track"),
        ("/v1/i", "identify"),
        ("/v1/p", "page"),
        ("/v1/s", "screen"),
        ("/v1/g", "group"),
        ("/v1/a", "alias"),
    ],
)
def test_single_message_endpoints_store_one_event_of_their_type(
    gateway: GatewayProcess, workspace_config: str, path: str, call_type: str
) -> None:
    answer = post(gateway, path, {"anonymousId": "a1", "messageId": "m-1"}, auth=AUTH)
    assert (answer.status_code, answer.text) == (200, "OK")
    rows = ingested(workspace_config)
    assert len(rows) == 1
    assert rows[0]["source"] == "website"
    assert rows[0]["message_id"] == "m-1"
    assert rows[0]["payload"]["type"] == call_type


@pytest.mark.parametrize("path", ["/v1/batch", "/v1/b", "/v1/import"])
def test_batch_endpoints_store_every_message_in_order(
    gateway: GatewayProcess, workspace_config: str, path: str
) -> None:
    batch = [{"type": "track", "userId": f"u{i}", "event": f"E{i}"} for i in range(5)]
    answer = post(gateway, path, {"batch": batch, "sentAt": "2026-11-27T10:00:00Z"}, auth=AUTH)
    assert answer.status_code == 200
    rows = ingested(workspace_config)
    assert [r["payload"]["event"] for r in rows] == [f"E{i}" for i in range(5)]
    assert all(r["payload"]["sentAt"] == "2026-11-27T10:00:00Z" for r in rows)


def test_normalisation_stamps_what_downstream_needs(
    gateway: GatewayProcess, workspace_config: str
) -> None:
    post(
        gateway, "/v1/track", track(writeKey=WRITE_KEY), headers={"X-Forwarded-For": "203.0.113.9"}
    )
    post(gateway, "/v1/track", track(context={"ip": "198.51.100.1"}), auth=AUTH)
    first, second = (r["payload"] for r in ingested(workspace_config))
    received = datetime.fromisoformat(first["receivedAt"])
    assert first["receivedAt"].endswith("Z")
    assert abs(datetime.now(UTC) - received) < timedelta(minutes=1)
    assert len(first["messageId"]) == 36  # generated: a uuid
    assert first["request_ip"] == "127.0.0.1"  # no trusted proxy: X-Forwarded-For is ignored
    assert "ip" not in first["context"]  # downstream reads context.ip, else request_ip
    assert "writeKey" not in first  # a secret has no business in stored events
    assert second["context"]["ip"] == "198.51.100.1"  # kept when the SDK sent one
    assert second["request_ip"] == "127.0.0.1"


def test_identify_traits_are_read_from_either_place(
    gateway: GatewayProcess, workspace_config: str
) -> None:
    post(gateway, "/v1/identify", {"userId": "u1", "traits": {"plan": "pro"}}, auth=AUTH)
    post(
        gateway,
        "/v1/identify",
        {"userId": "u2", "context": {"traits": {"plan": "free"}}},
        auth=AUTH,
    )
    segment_style, rudder_style = (r["payload"] for r in ingested(workspace_config))
    assert segment_style["context"]["traits"] == {"plan": "pro"}
    assert rudder_style["traits"] == {"plan": "free"}


def test_write_key_in_basic_auth_body_or_query(
    gateway: GatewayProcess, workspace_config: str
) -> None:
    assert post(gateway, "/v1/track", track(), auth=AUTH).status_code == 200
    assert post(gateway, "/v1/track", track(writeKey=WRITE_KEY)).status_code == 200
    assert post(gateway, f"/v1/track?writeKey={WRITE_KEY}", track()).status_code == 200
    assert len(ingested(workspace_config)) == 3


def test_gzip_body_is_decoded_whatever_the_content_type(
    gateway: GatewayProcess, workspace_config: str
) -> None:
    body = gzip.compress(json.dumps({"batch": [track(type="track")] * 2}).encode())
    answer = httpx.post(
        f"{gateway.url}/v1/batch",
        content=body,
        auth=AUTH,
        headers={"Content-Encoding": "gzip", "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert answer.status_code == 200
    assert len(ingested(workspace_config)) == 2


def test_beacon_and_text_plain_bodies(gateway: GatewayProcess, workspace_config: str) -> None:
    beacon = httpx.post(
        f"{gateway.url}/beacon/v1/batch?writeKey={WRITE_KEY}",
        content=json.dumps({"batch": [track(type="track")]}),
        headers={"Content-Type": "text/plain"},
    )
    segment_next = httpx.post(
        f"{gateway.url}/v1/t",
        content=json.dumps(track(writeKey=WRITE_KEY)),
        headers={"Content-Type": "text/plain"},
    )
    assert (beacon.status_code, segment_next.status_code) == (200, 200)
    assert len(ingested(workspace_config)) == 2


def test_pixel_builds_an_event_from_query_parameters(
    gateway: GatewayProcess, workspace_config: str
) -> None:
    answer = httpx.get(
        f"{gateway.url}/pixel/v1/track",
        params={
            "writeKey": WRITE_KEY,
            "anonymousId": "a9",
            "event": "Email Opened",
            "properties.campaign": "winter",
        },
    )
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "image/gif"
    (row,) = ingested(workspace_config)
    assert row["payload"]["type"] == "track"
    assert row["payload"]["properties"] == {"campaign": "winter"}
    assert "writeKey" not in row["payload"]


def rejection(answer: httpx.Response) -> tuple[int, str]:
    body = answer.json()
    assert set(body) == {"code", "message"}
    return answer.status_code, body["code"]


def test_unknown_or_missing_write_key_is_401(
    gateway: GatewayProcess, workspace_config: str
) -> None:
    assert rejection(post(gateway, "/v1/track", track(), auth=("nope", ""))) == (
        401,
        "invalid_write_key",
    )
    assert rejection(post(gateway, "/v1/track", track())) == (401, "invalid_write_key")
    assert ingested(workspace_config) == []


def test_disabled_source_is_404(gateway: GatewayProcess, workspace_config: str) -> None:
    answer = post(gateway, "/v1/track", track(), auth=(DISABLED_KEY, ""))
    assert rejection(answer) == (404, "not_found")
    assert "disabled" in answer.json()["message"]
    assert ingested(workspace_config) == []


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (b"{not json", "malformed JSON"),
        (b"[1, 2]", "JSON object"),
        (json.dumps({"batch": [{"userId": "u1"}]}).encode(), "'type'"),
        (json.dumps({"batch": [{"type": "track"}]}).encode(), "userId"),
        (
            json.dumps({"batch": [{"type": "track", "userId": "", "anonymousId": None}]}).encode(),
            "userId",
        ),
        (json.dumps({"batch": []}).encode(), "empty"),
        (json.dumps({"batch": [track(type="track"), "text"]}).encode(), "message 1"),
    ],
)
def test_malformed_requests_are_400_and_store_nothing(
    gateway: GatewayProcess, workspace_config: str, body: bytes, needle: str
) -> None:
    answer = httpx.post(f"{gateway.url}/v1/batch", content=body, auth=AUTH)
    assert rejection(answer) == (400, "bad_request")
    assert needle in answer.json()["message"]
    assert ingested(workspace_config) == []


def test_a_bad_message_rejects_its_whole_batch(
    gateway: GatewayProcess, workspace_config: str
) -> None:
    batch = [track(type="track"), {"type": "track", "event": "no user"}]
    assert post(gateway, "/v1/batch", {"batch": batch}, auth=AUTH).status_code == 400
    assert ingested(workspace_config) == []


def test_size_limits_are_413(workspace_config: str, tmp_path: Path) -> None:
    with running_gateway(
        workspace_config, tmp_path, max_message_bytes="2048", max_request_bytes="8192"
    ) as gw:
        big_message = track(properties={"blob": "x" * 3000})
        assert rejection(post(gw, "/v1/track", big_message, auth=AUTH)) == (
            413,
            "payload_too_large",
        )
        many = {"batch": [track(type="track", properties={"n": "y" * 500}) for _ in range(20)]}
        assert rejection(post(gw, "/v1/batch", many, auth=AUTH)) == (413, "payload_too_large")
        # What the batch shares is copied into each message: it counts for each.
        shared = {"batch": [track(type="track")] * 3, "context": {"pad": "c" * 2500}}
        assert rejection(post(gw, "/v1/batch", shared, auth=AUTH)) == (413, "payload_too_large")
        bomb = gzip.compress(
            json.dumps({"batch": [track(type="track")], "pad": "z" * 50_000}).encode()
        )
        answer = httpx.post(
            f"{gw.url}/v1/batch", content=bomb, auth=AUTH, headers={"Content-Encoding": "gzip"}
        )
        assert rejection(answer) == (413, "payload_too_large")
        assert post(gw, "/v1/track", track(), auth=AUTH).status_code == 200
    assert len(ingested(workspace_config)) == 1


def test_rate_limited_source_gets_429(workspace_config: str, tmp_path: Path) -> None:
    apply_config(
        workspace_config, "sources: [{name: limited, write_key: limited-key-1, rate_limit: 5}]"
    )
    with running_gateway(workspace_config, tmp_path) as gw:
        burst = {"batch": [track(type="track")] * 20}
        first = post(gw, "/v1/batch", burst, auth=("limited-key-1", ""))
        # 20 events took the bucket of 5 four seconds into debt: the next request must wait
        second = post(gw, "/v1/track", track(), auth=("limited-key-1", ""))
        unlimited = post(gw, "/v1/track", track(), auth=AUTH)
    assert first.status_code == 200
    assert rejection(second) == (429, "rate_limited")
    assert second.headers["retry-after"] == "1"
    assert unlimited.status_code == 200
    stored = [r for r in ingested(workspace_config) if r["source"] == "limited"]
    assert len(stored) == 20


def test_unknown_path_and_wrong_method(gateway: GatewayProcess) -> None:
    assert httpx.post(f"{gateway.url}/v2/track", auth=AUTH).status_code == 404
    assert httpx.get(f"{gateway.url}/v1/track").status_code == 405


def test_cors_preflight_echoes_requested_headers(gateway: GatewayProcess) -> None:
    answer = httpx.options(
        f"{gateway.url}/v1/page",
        headers={
            "Origin": "https://shop.example.com",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type,anonymousid,sentat",
        },
    )
    assert answer.status_code == 204
    assert answer.headers["access-control-allow-origin"] == "https://shop.example.com"
    assert (
        answer.headers["access-control-allow-headers"]
        == "authorization,content-type,anonymousid,sentat"
    )
    assert "POST" in answer.headers["access-control-allow-methods"]
    posted = post(
        gateway, "/v1/page", track(), auth=AUTH, headers={"Origin": "https://shop.example.com"}
    )
    assert posted.headers["access-control-allow-origin"] == "https://shop.example.com"


def test_rudderstack_source_config(gateway: GatewayProcess) -> None:
    basic = base64.b64encode(f"{WRITE_KEY}:".encode()).decode()
    answer = httpx.get(
        f"{gateway.url}/sourceConfig/?p=npm&v=3.7.0&writeKey={WRITE_KEY}",
        headers={"Authorization": f"Basic {basic}", "Origin": "https://shop.example.com"},
    )
    assert answer.status_code == 200
    source = answer.json()["source"]
    assert source["enabled"] is True and source["destinations"] == [] and source["config"] == {}
    assert answer.headers["access-control-allow-origin"] == "https://shop.example.com"
    assert httpx.get(f"{gateway.url}/sourceConfig/?writeKey=bad").status_code == 401


def test_segment_settings_point_back_at_the_gateway(gateway: GatewayProcess) -> None:
    answer = httpx.get(f"{gateway.url}/v1/projects/{WRITE_KEY}/settings")
    assert answer.status_code == 200
    segment_io = answer.json()["integrations"]["Segment.io"]
    assert segment_io["apiKey"] == WRITE_KEY
    assert segment_io["apiHost"] == f"{gateway.url.removeprefix('http://')}/v1"
    assert segment_io["protocol"] == "http"
    assert httpx.get(f"{gateway.url}/v1/projects/wrong/settings").status_code == 401
    # analytics-next's own metrics come here too (never to Segment's host), and are counted
    assert answer.json()["metrics"]["host"] == segment_io["apiHost"]
    series = [{"type": "Counter", "metric": "analytics_js.invoke", "value": 1, "tags": {}}] * 2
    assert httpx.post(f"{gateway.url}/v1/m", json={"series": series}).status_code == 200
    assert httpx.post(f"{gateway.url}/v1/m", content=b"{not json").status_code == 400
    metrics = httpx.get(f"{gateway.url}/metrics").text
    assert "sluice_gateway_sdk_metric_series_total 2.0" in metrics


def test_segment_settings_use_the_public_url(workspace_config: str, tmp_path: Path) -> None:
    with running_gateway(
        workspace_config, tmp_path, public_url="https://events.example.com/"
    ) as gw:
        segment_io = httpx.get(f"{gw.url}/v1/projects/{WRITE_KEY}/settings").json()["integrations"][
            "Segment.io"
        ]
    assert (segment_io["apiHost"], segment_io["protocol"]) == ("events.example.com/v1", "https")


def test_health_and_metrics(gateway: GatewayProcess) -> None:
    assert httpx.get(f"{gateway.url}/health").json() == {"status": "ok"}
    post(gateway, "/v1/batch", {"batch": [track(type="track")] * 3}, auth=AUTH)
    post(gateway, "/v1/track", track(), auth=("nope", ""))
    metrics = httpx.get(f"{gateway.url}/metrics").text
    assert 'sluice_gateway_events_total{outcome="accepted",source="website"} 3.0' in metrics
    assert 'sluice_gateway_events_total{outcome="rejected",source="unknown"} 1.0' in metrics


def test_metrics_add_up_across_gateway_processes(workspace_config: str, tmp_path: Path) -> None:
    with running_gateway(workspace_config, tmp_path, gateway_workers="2") as gw:
        for _ in range(20):
            post(gw, "/v1/track", track(), auth=AUTH)
        # (each process publishes what it counted every half second, and before its scrape)
        expected = 'sluice_gateway_events_total{outcome="accepted",source="website"} 20.0'
        deadline = time.monotonic() + 5
        while expected not in (metrics := httpx.get(f"{gw.url}/metrics").text):
            assert time.monotonic() < deadline, metrics
            time.sleep(0.1)


def test_a_gateway_process_that_dies_is_replaced_and_the_port_keeps_answering(
    workspace_config: str, tmp_path: Path
) -> None:
    with running_gateway(workspace_config, tmp_path, gateway_workers="2") as gw:
        first = _children(gw.proc.pid)
        assert len(first) == 2
        os.kill(first[0], signal.SIGKILL)
        answers = [post(gw, "/v1/track", track(), auth=AUTH).status_code for _ in range(50)]
        deadline = time.monotonic() + 10
        while len(now := _children(gw.proc.pid)) < 2 or first[0] in now:
            assert time.monotonic() < deadline, f"no process replaced {first[0]}: {now}"
            time.sleep(0.05)
        answers += [post(gw, "/v1/track", track(), auth=AUTH).status_code for _ in range(50)]
    assert answers == [200] * 100
    assert len(ingested(workspace_config)) == 100
    assert f"a gateway process (pid {first[0]}) ended with status -9" in gw.output()


def _children(pid: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def test_a_new_source_works_at_once_and_disabling_takes_effect(
    gateway: GatewayProcess, workspace_config: str
) -> None:
    apply_config(workspace_config, "sources: [{name: app, write_key: brand-new-key}]")
    assert post(gateway, "/v1/track", track(), auth=("brand-new-key", "")).status_code == 200
    apply_config(
        workspace_config, "sources: [{name: app, write_key: brand-new-key, enabled: false}]"
    )
    deadline = time.monotonic() + 10
    while post(gateway, "/v1/track", track(), auth=("brand-new-key", "")).status_code != 404:
        assert time.monotonic() < deadline, "disabling the source never took effect"
        time.sleep(0.05)


async def test_a_key_created_just_after_a_bad_one_was_looked_up_is_found(
    workspace_config: str,
) -> None:
    # Looked up in-process, with no LISTEN: only the lookup itself can find the new key. Bad
    # keys arriving all the time once held back the reload a new key needs, and SDKs drop their
    # events on the 401 that followed.
    pool = connection_pool(workspace_config)
    await pool.open()
    sources = SourceDirectory(pool, workspace_config)
    await sources.reload()
    assert await sources.find("no-such-key") is None
    with psycopg.connect(workspace_config, autocommit=True) as conn:
        conn.execute("INSERT INTO sources (name, write_key) VALUES ('late', 'late-key-123')")
    found = await sources.find("late-key-123")
    await pool.close()
    assert found is not None and found.name == "late"


def test_accepted_events_wake_the_processors(
    gateway: GatewayProcess, workspace_config: str
) -> None:
    # The notification is sent after the commit, apart from it; it must still come.
    with psycopg.connect(workspace_config, autocommit=True) as conn:
        conn.execute("LISTEN sluice_ingest")
        assert post(gateway, "/v1/track", track(), auth=AUTH).status_code == 200
        heard = next(conn.notifies(timeout=10), None)
    assert heard is not None and heard.channel == "sluice_ingest"


async def test_requests_waiting_for_a_failed_reload_are_all_answered_at_once() -> None:
    # PostgreSQL unreachable: each request for an unknown key once started a reload of its own
    # after the one before had failed, the tenth answered 503 after ten connection waits.
    reloads = 0

    class Counted(SourceDirectory):
        async def reload(self) -> None:
            nonlocal reloads
            reloads += 1
            await super().reload()

    pool = connection_pool("postgresql://sluice@127.0.0.1:1/none")
    await pool.open(wait=False)
    sources = Counted(pool, "postgresql://sluice@127.0.0.1:1/none")
    found = await asyncio.gather(
        *(sources.find(f"key-{n}") for n in range(10)), return_exceptions=True
    )
    await pool.close()
    assert all(isinstance(answer, DatabaseUnavailable) for answer in found)
    assert reloads == 1
