"""Pinterest Conversions end to end: gateway → worker → a double of Pinterest's Conversions API
(tests.vendors.pinterest) reached through the destination's `endpoint` setting."""

import hashlib
import time
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
from tests.vendors.pinterest import PinterestDouble

TOKEN = "pina_conv-token-6d1e0b7f3a"
ACCOUNT = "549755885175"
ADVERTISER = "2612345678901"
STAMP = "2026-01-15T10:00:00.250Z"
AGENT = "Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0"


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def connect(database_url: str, url: str, **config: Any) -> None:
    settings = {"endpoint": url, "appId": "429047995", **config}
    connect_destinations(database_url, ("pin", "pinterest_tag", settings))


def v5(database_url: str, url: str, token: str = TOKEN) -> None:
    connect(database_url, url, apiVersion="newApi", adAccountId=ACCOUNT, conversionToken=token,
            eventsMapping=[{"from": "Home", "to": "PageVisit"}])  # fmt: skip


def test_every_call_arrives_shaped_and_authenticated_after_throttling(
    workspace_config: str, gateway: GatewayProcess, worker: WorkerProcess
) -> None:
    double = PinterestDouble(token=TOKEN, ad_account=ACCOUNT)
    double.throttle_next(2)
    web = {"ip": "203.0.113.9", "userAgent": AGENT}
    with Sink(double) as sink:
        v5(workspace_config, sink.url)
        post(gateway, [
            {"type": "track", "userId": "user-1", "event": "Order Completed",
             "messageId": "m-order", "timestamp": STAMP, "channel": "web",
             "context": {**web, "traits": {"email": " Ada@Example.com ", "phone": "+44 07700"}},
             "properties": {"order_id": "o-7", "revenue": 31.5, "currency": "EUR",
                            "products": [{"product_id": "p-1", "price": 12.5, "quantity": 2},
                                         {"sku": "s-2", "price": 6.5}]}},
            {"type": "page", "anonymousId": "anon-2", "category": "Shoes", "name": "Boots",
             "messageId": "m-page", "timestamp": STAMP, "channel": "web",
             "context": {**web, "page": {"url": "https://shop.example/shoes"}}},
            {"type": "screen", "anonymousId": "anon-3", "name": "Home", "messageId": "m-screen",
             "timestamp": STAMP, "channel": "mobile",
             "context": {"os": {"name": "Android", "version": "14"},
                         "device": {"advertisingId": "GAID-1", "adTrackingEnabled": True}}},
            {"type": "identify", "userId": "user-1", "messageId": "m-identify",
             "traits": {"email": "ada@example.com"}},
        ])  # fmt: skip
        wait_until(lambda: len(double.events) == 3)
        time.sleep(0.3)  # anything sent twice would arrive now

    events = {e["event_id"]: e for e in double.events}
    assert set(events) == {"m-order", "m-page", "m-screen"}
    order = events["m-order"]
    assert order["event_name"] == "checkout" and order["action_source"] == "web"
    assert order["event_time"] == 1768471200 and order["app_id"] == "429047995"
    assert "advertiser_id" not in order  # v5: the ad account is in the path
    assert order["user_data"] == {
        "em": [sha("ada@example.com")], "ph": [sha("4407700")],
        "client_ip_address": "203.0.113.9", "client_user_agent": AGENT,
    }  # fmt: skip
    assert order["custom_data"] == {
        "currency": "EUR", "value": "31.5", "order_id": "o-7", "num_items": 2,
        "content_ids": ["p-1", "s-2"],
        "contents": [{"id": "p-1", "quantity": 2, "item_price": "12.5"},
                     {"id": "s-2", "quantity": 1, "item_price": "6.5"}],
    }  # fmt: skip
    page = events["m-page"]
    assert page["event_name"] == "view_category" and "custom_data" not in page
    assert page["event_source_url"] == "https://shop.example/shoes"
    screen = events["m-screen"]
    assert (screen["event_name"], screen["action_source"]) == ("page_visit", "app_android")
    # No context.ip: the address the gateway saw the event come from.
    assert screen["user_data"] == {
        "hashed_maids": [sha("GAID-1")],
        "client_ip_address": "127.0.0.1",
    }
    assert screen["opt_out"] is False and screen["advertiser_tracking_enabled"] is True
    assert screen["os_version"] == "14"
    throttled = [a for a in sink.arrivals if a.path == f"/v5/ad_accounts/{ACCOUNT}/events"]
    assert all(a.header("authorization") == f"Bearer {TOKEN}" for a in throttled)
    states = attempts(workspace_config, 3)
    assert states["delivered"] == 3 and states["retry"] >= 2, states
    assert sluice(workspace_config, "failed", "list", "--json") == ""


def test_a_wrong_token_aborts_visibly_with_the_token_masked(
    workspace_config: str, gateway: GatewayProcess, worker: WorkerProcess
) -> None:
    wrong = "pina_not-the-token-0c4f9e"
    with Sink(PinterestDouble(token=TOKEN, ad_account=ACCOUNT)) as sink:
        v5(workspace_config, sink.url, token=wrong)
        post(gateway, [
            {"type": "track", "userId": "user-1", "event": "Product Added", "messageId": "m-1",
             "channel": "web", "context": {"traits": {"email": "ada@example.com"}}},
        ])  # fmt: skip
        failed = assert_aborted_masked(workspace_config, sink, wrong)
    assert failed["message_id"] == "m-1" and failed["status_code"] == 401
    assert failed["error"] == "HTTP 401: Authentication failed. (code 2)"
    assert failed["request"]["headers"]["Authorization"] == "Bearer ****"


def test_an_event_pinterest_refuses_fails_alone_and_its_batch_is_not_sent_again(
    workspace_config: str, gateway: GatewayProcess, worker: WorkerProcess
) -> None:
    double = PinterestDouble(advertiser=ADVERTISER)
    with Sink(double) as sink:
        # A name mapped to one Pinterest does not have: only Pinterest can refuse it.
        connect(workspace_config, sink.url, advertiserId=ADVERTISER,  # v3, the default
                eventsMapping=[{"from": "Viewed Banner", "to": "BannerView"}])  # fmt: skip
        post(gateway, [
            {"type": "track", "userId": f"user-{n}", "event": name, "messageId": f"m-{n}",
             "channel": "web", "properties": {"product_id": f"p-{n}"},
             "context": {"traits": {"email": f"u{n}@example.com"}}}
            for n, name in enumerate(["Product Added", "Viewed Banner", "Order Completed"])
        ])  # fmt: skip
        [failed] = wait_for_failed(workspace_config, 1)
        wait_until(lambda: len(double.events) == 2)
        time.sleep(0.5)  # anything sent again would arrive now
        arrivals = list(sink.arrivals)

    # However the router read them, each event travelled once.
    assert sum(double.batches) == 3 and len(double.batches) == len(arrivals)
    assert {a.path for a in arrivals} == {"/events/v3"}
    assert {a.header("authorization") for a in arrivals} == {""}  # v3 takes no credentials
    sent = sorted(e["event_id"] for a in arrivals for e in a.json()["data"])
    assert sent == ["m-0", "m-1", "m-2"]
    assert sorted(double.names()) == ["add_to_cart", "checkout"]
    assert all(e["advertiser_id"] == ADVERTISER for e in double.events)
    assert failed["message_id"] == "m-1" and failed["status_code"] == 200
    assert failed["attempts"] == 1
    assert failed["error"] == "HTTP 200: Invalid event_name: banner_view"
    states = attempts(workspace_config, 2)
    assert states == {"delivered": 2, "aborted": 1}, states
