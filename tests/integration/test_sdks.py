"""The real Python SDKs, pointed at a running gateway: every call type lands once."""

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import httpx
import psycopg
import pytest
import rudderstack.analytics as rudder
import segment.analytics as segment

from tests.conftest import WRITE_KEY, ingested
from tests.servers import GatewayProcess


def send_every_call_type(client: Any, ids: dict[str, str]) -> None:
    client.identify(
        "user-1", {"email": "ada@example.com", "plan": "pro"}, message_id=ids["identify"]
    )
    client.track(
        "user-1", "Order Completed", {"order_id": "o-1", "total": 42.5}, message_id=ids["track"]
    )
    client.page("user-1", "Docs", "Getting Started", {"path": "/docs"}, message_id=ids["page"])
    client.screen("user-1", "App", "Cart", {"items": 2}, message_id=ids["screen"])
    client.group("user-1", "org-7", {"name": "Example Inc"}, message_id=ids["group"])
    client.alias("anon-7", "user-1", message_id=ids["alias"])
    client.track(None, "Anonymous Visit", anonymous_id="anon-8", message_id=ids["anonymous"])


def rudder_client(url: str, errors: list[Exception]) -> Any:
    """rudder-sdk-python sending to `url`, never retrying, its errors kept in `errors`."""
    return rudder.Client(
        WRITE_KEY, host=url, on_error=lambda e, batch: errors.append(e), max_retries=0
    )


@pytest.mark.parametrize(
    ("name", "make_client"),
    [
        (
            "rudder-sdk-python",
            lambda url, errors: rudder_client(url, errors),
        ),
        (
            "segment-analytics-python",
            lambda url, errors: segment.Client(
                WRITE_KEY, host=url, on_error=lambda e, batch: errors.append(e), max_retries=0
            ),
        ),
    ],
)
def test_sdk_events_land_once_with_the_right_source(
    gateway: GatewayProcess,
    workspace_config: str,
    name: str,
    make_client: Callable[[str, list[Exception]], Any],
) -> None:
    errors: list[Exception] = []
    client = make_client(gateway.url, errors)
    ids = {
        kind: f"{name}-{kind}"
        for kind in ("identify", "track", "page", "screen", "group", "alias", "anonymous")
    }
    send_every_call_type(client, ids)
    client.flush()
    client.join()
    assert errors == []

    rows = ingested(workspace_config)
    assert sorted(r["message_id"] for r in rows) == sorted(ids.values())
    assert {r["source"] for r in rows} == {"website"}
    by_id = {r["message_id"]: r["payload"] for r in rows}
    assert {by_id[ids[k]]["type"] for k in ids if k != "anonymous"} == {
        "identify",
        "track",
        "page",
        "screen",
        "group",
        "alias",
    }
    assert by_id[ids["identify"]]["context"]["traits"]["email"] == "ada@example.com"
    assert by_id[ids["track"]]["properties"]["total"] == 42.5
    assert by_id[ids["group"]]["groupId"] == "org-7"
    assert by_id[ids["alias"]]["previousId"] == "anon-7"
    assert by_id[ids["anonymous"]]["anonymousId"] == "anon-8"


def test_an_identify_is_measured_as_the_sdk_sent_it(
    gateway: GatewayProcess, workspace_config: str
) -> None:
    # ~18 kB of traits: under the 32 kB limit as sent, over it once the gateway has mirrored
    # them into context.traits (which it once counted, refusing the event).
    errors: list[Exception] = []
    client = rudder_client(gateway.url, errors)
    traits = {f"trait_{n}": "t" * 180 for n in range(100)}
    client.identify("user-1", traits, message_id="big-traits")
    client.flush()
    client.join()
    assert errors == []
    (row,) = ingested(workspace_config)
    assert row["payload"]["traits"] == row["payload"]["context"]["traits"] == traits


def test_an_oversized_event_is_refused_alone_and_listed(
    gateway: GatewayProcess, workspace_config: str
) -> None:
    # rudder-sdk-python sends messages of up to 4 MB: one over the gateway's 32 kB limit once
    # cost its whole batch a 413, and the SDK dropped all 41 events.
    errors: list[Exception] = []
    client = rudder_client(gateway.url, errors)
    for n in range(41):
        blob = "x" * 40_000 if n == 20 else "small"
        client.track("user-1", f"Event {n}", {"blob": blob}, message_id=f"m-{n}")
    client.flush()
    client.join()
    assert errors == []
    stored = sorted(r["message_id"] for r in ingested(workspace_config))
    assert stored == sorted(f"m-{n}" for n in range(41) if n != 20)
    # Nothing else in the request: 413, and listed all the same.
    alone = {"userId": "u", "event": "<b>Alone</b>", "properties": {"blob": "y" * 40_000}}
    answer = httpx.post(f"{gateway.url}/v1/track", json=alone, auth=(WRITE_KEY, ""))
    assert answer.status_code == 413
    env = {**os.environ, "SLUICE_CONFIG": os.devnull, "SLUICE_DATABASE_URL": workspace_config}
    listed: list[dict[str, Any]] = []
    deadline = time.monotonic() + 15
    while len(listed) < 2:  # the gateway stores what it refused once a second
        assert time.monotonic() < deadline, gateway.output()
        done = subprocess.run(
            [sys.executable, "-m", "appliance", "rejected", "--json"],
            env=env, capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip
        listed = [json.loads(line) for line in done.stdout.splitlines()]
    newest, first = listed
    assert (first["source"], newest["source"]) == ("website", "website")
    assert first["bytes"] > 40_000 and "the limit is 32768 bytes" in first["reason"]
    assert first["reason"].startswith("message 20 of the batch is")
    assert '"m-20"' in first["head"] or len(first["head"]) == 2048
    assert newest["reason"].startswith("the message is") and "<b>Alone</b>" in newest["head"]
    metrics = httpx.get(f"{gateway.url}/metrics").text
    assert 'sluice_gateway_events_total{outcome="accepted",source="website"} 40.0' in metrics
    assert 'sluice_gateway_events_total{outcome="rejected",source="website"} 2.0' in metrics
    with psycopg.connect(workspace_config) as conn:
        counted = conn.execute(
            "SELECT sum(events) FROM stats_minute WHERE outcome = 'rejected'"
        ).fetchone()
    assert counted == (2,)


def test_generate_events_sends_every_call_type(
    gateway: GatewayProcess, workspace_config: str
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "appliance", "generate-events", "--write-key", WRITE_KEY,
         "--url", gateway.url, "--count", "250", "--users", "7"],
        env={**os.environ, "SLUICE_CONFIG": os.devnull},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"sent 250 events to {gateway.url}" in done.stdout
    rows = ingested(workspace_config)
    assert len(rows) == 250
    assert len({r["message_id"] for r in rows}) == 250
    assert {r["payload"]["userId"] for r in rows} <= {f"user-{i:05d}" for i in range(7)}
    assert {r["payload"]["type"] for r in rows} >= {"track", "page", "identify", "screen"}


def test_generate_events_reports_a_refusal(gateway: GatewayProcess) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "appliance", "generate-events", "--write-key", "wrong",
         "--url", gateway.url, "--count", "5"],
        env={**os.environ, "SLUICE_CONFIG": os.devnull},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode != 0
    assert "gateway answered 401" in done.stderr
