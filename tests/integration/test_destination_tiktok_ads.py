"""TikTok Ads end to end: gateway → worker → a double of TikTok's Events API
(tests.vendors.tiktok) reached through the destination's `endpoint` setting, with Events 1.0
and Events 2.0."""

import hashlib
import time
from collections import Counter
from typing import Any

from tests.delivery import (
    assert_aborted_masked,
    attempts,
    connect_destinations,
    post,
    sluice,
    wait_for_failed,
    wait_until,
)
from tests.servers import GatewayProcess, WorkerProcess
from tests.sink import Sink
from tests.vendors.tiktok import API, TikTokDouble

TOKEN = "tt-long-term-token-8c41f2e07b"
PIXEL = "CQ1TESTPIXEL0001"
STAMP = "2026-01-15T10:00:00Z"


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def settings(url: str, **config: Any) -> dict[str, Any]:
    return {"accessToken": TOKEN, "pixelCode": PIXEL, "endpoint": url, **config}


def test_every_event_arrives_shaped_and_authenticated_after_throttling(
    workspace_config: str, gateway: GatewayProcess, worker: WorkerProcess
) -> None:
    double = TikTokDouble(TOKEN, PIXEL)
    double.throttle_next(2)
    with Sink(double) as sink:
        connect_destinations(
            workspace_config,
            ("tt1", "tiktok_ads", settings(sink.url, version="v1")),
            ("tt2", "tiktok_ads", settings(sink.url, version="v2")),
        )
        post(gateway, [
            {"type": "track", "userId": "user-1", "event": "Order Completed",
             "messageId": "m-order", "timestamp": STAMP,
             "context": {"ip": "10.1.2.3", "traits": {"email": " Ada@Example.com "}},
             "properties": {"value": 12.5, "currency": "EUR", "products": [
                 {"product_id": 42, "name": "Socks", "price": 12.5, "quantity": 1}]}},
            {"type": "track", "userId": "user-2", "event": "checkout step completed",
             "messageId": "m-pay", "timestamp": STAMP,
             "context": {"externalId": [{"type": "tiktokExternalId", "id": "crm-7"}]},
             "properties": {"eventId": "pay-7", "clickId": "click-1"}},
            {"type": "track", "userId": "user-3", "event": "Lead", "messageId": "m-test",
             "timestamp": STAMP, "properties": {"testEventCode": "TEST4711"}},
            {"type": "identify", "userId": "user-1", "messageId": "m-identify",
             "traits": {"email": "ada@example.com"}},
        ])  # fmt: skip
        wait_until(lambda: len(double.events) == 4 and len(double.test_events) == 2)
        time.sleep(0.3)  # anything sent twice would arrive now

    tokens = {a.header("access-token") for a in sink.arrivals}
    assert tokens == {TOKEN}
    paths = Counter(path for path, _ in double.requests)
    assert paths["pixel/track"] == 1 and paths["pixel/batch"] >= 1, double.requests
    v1 = {e["event_id"]: e for e in double.events if "event_source" not in e}
    v2 = {e["event_id"]: e for e in double.events if "event_source" in e}
    assert set(v1) == set(v2) == {"m-order", "pay-7"}
    order = v1["m-order"]
    assert order["event"] == "PlaceAnOrder" and order["type"] == "track"
    assert order["timestamp"] == STAMP
    assert order["properties"] == {"value": 12.5, "currency": "EUR", "contents": [
        {"content_type": "product", "content_id": "42", "content_name": "Socks", "price": 12.5,
         "quantity": 1}]}  # fmt: skip
    assert order["context"] == {"ip": "10.1.2.3", "user": {"email": sha("ada@example.com")}}
    assert v1["pay-7"]["context"] == {
        "ad": {"callback": "click-1"},
        "ip": "127.0.0.1",
        "user": {"external_id": sha("crm-7")},
    }  # the gateway's
    assert v2["m-order"]["event_time"] == 1768471200 and v2["m-order"]["event_source"] == "web"
    assert v2["m-order"]["properties"]["contents_ids"] == ["42"]
    assert v2["m-order"]["user"] == {"email": sha("ada@example.com"), "ip": "10.1.2.3"}
    assert v2["pay-7"]["event"] == "CompletePayment"
    assert v2["pay-7"]["properties"] == {"content_type": "product"}
    assert [e["event"] for e in double.test_events] == ["Lead", "Lead"]
    test_paths = {a.path for a in sink.arrivals if b"TEST4711" in a.body}
    assert test_paths == {f"{API}/pixel/track/", f"{API}/event/track/"}
    assert all(b"m-identify" not in a.body for a in sink.arrivals)  # identify: not TikTok's
    states = attempts(workspace_config, 6)
    assert states["delivered"] == 6 and states["retry"] >= 2, states
    assert sluice(workspace_config, "failed", "list", "--json") == ""


def test_a_wrong_token_aborts_visibly_with_the_token_masked(
    workspace_config: str, gateway: GatewayProcess, worker: WorkerProcess
) -> None:
    wrong = "not-the-token-0f9e8d"
    with Sink(TikTokDouble(TOKEN, PIXEL)) as sink:
        connect_destinations(
            workspace_config, ("tt", "tiktok_ads", settings(sink.url, accessToken=wrong))
        )
        post(gateway, [
            {"type": "track", "userId": "user-1", "event": "Purchase", "messageId": "m-buy"}
        ])  # fmt: skip
        failed = assert_aborted_masked(workspace_config, sink, wrong)
    assert failed["message_id"] == "m-buy"
    assert failed["status_code"] == 200  # TikTok's answer is always 200: its code decides
    assert failed["error"].startswith(
        "HTTP 200: Access token is incorrect or has been revoked. (code 40105, request_id "
    )
    assert failed["request"]["headers"]["Access-Token"] == "****"


def test_an_event_tiktok_refuses_fails_alone_and_the_rest_of_its_batch_goes_again(
    workspace_config: str, gateway: GatewayProcess, worker: WorkerProcess
) -> None:
    double = TikTokDouble(TOKEN, PIXEL)
    with Sink(double) as sink:
        connect_destinations(workspace_config, ("tt", "tiktok_ads", settings(sink.url)))
        post(gateway, [
            {"type": "track", "userId": f"user-{n}", "event": "Purchase", "messageId": f"m-{n}",
             "properties": {"value": 5, "currency": "dollars" if n == 1 else "USD"}}
            for n in range(3)
        ])  # fmt: skip
        [failed] = wait_for_failed(workspace_config, 1)
        wait_until(lambda: len(double.events) == 2)
        time.sleep(0.5)  # anything sent again would arrive now
        batches = [a.json()["batch"] for a in sink.arrivals if a.path == f"{API}/pixel/batch/"]

    first, *again = [[e["event_id"] for e in batch] for batch in batches]
    assert sorted(first) == ["m-0", "m-1", "m-2"], "the three travel in one request"
    # Refused whole for m-1; the others go again (each on its own retry clock), m-1 never.
    assert sorted(i for ids in again for i in ids) == ["m-0", "m-2"]
    assert sorted(double.event_ids()) == ["m-0", "m-2"]
    assert failed["message_id"] == "m-1" and failed["attempts"] == 1
    assert failed["error"].startswith(
        "HTTP 200: Batch.1.properties.currency: Invalid currency dollars. (code 40002"
    )
    states = attempts(workspace_config, 2)
    assert states == {"delivered": 2, "retry": 2, "aborted": 1}, states
    table = sluice(workspace_config, "failed", "list", "--json")
    assert TOKEN not in table


def test_an_events_2_request_refused_for_one_event_is_sent_again_event_by_event(
    workspace_config: str, gateway: GatewayProcess, worker: WorkerProcess
) -> None:
    """Events 2.0 names the bad entry as `data.<n>`, not one per job: the router sends each
    event of the refused request again alone, and only the bad one fails."""
    double = TikTokDouble(TOKEN, PIXEL)
    with Sink(double) as sink:
        connect_destinations(
            workspace_config, ("tt", "tiktok_ads", settings(sink.url, version="v2"))
        )
        post(gateway, [
            {"type": "track", "userId": f"user-{n}", "event": "Purchase", "messageId": f"m-{n}",
             "properties": {"value": 5, "currency": "dollars" if n == 1 else "USD"}}
            for n in range(3)
        ])  # fmt: skip
        [failed] = wait_for_failed(workspace_config, 1)
        wait_until(lambda: len(double.events) == 2)
        time.sleep(0.5)  # anything sent again would arrive now
        requests = [[e["event_id"] for e in a.json()["data"]] for a in sink.arrivals]

    assert sorted(double.event_ids()) == ["m-0", "m-2"]  # each recorded once
    assert failed["message_id"] == "m-1" and failed["status_code"] == 200
    assert "properties.currency: Invalid currency dollars. (code 40002" in failed["error"]
    # The requests that carried m-1 with others were refused whole: each of those others
    # went again alone (and m-1 too).
    shared = {i for ids in requests if "m-1" in ids for i in ids}
    assert all([i] in requests for i in shared), requests
