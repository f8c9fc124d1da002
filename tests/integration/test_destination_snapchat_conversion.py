"""Snapchat Conversions end to end: gateway → worker → a double of Snap's Conversions API
(tests.vendors.snapchat), v2 and v3, reached through the destination's `endpoint` setting."""

import hashlib
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.delivery import (
    attempts,
    connect_destinations,
    failed_jobs,
    post,
    sluice,
    wait_for_failed,
    wait_until,
)
from tests.servers import GatewayProcess, WorkerProcess
from tests.sink import Sink
from tests.vendors.snapchat import SnapchatDouble

TOKEN = "snap-capi-token-5d1e7a90c3"
PIXEL = "0a1b2c3d-pixel-4e5f"
SNAP_APP = "9f8e7d6c-snap-app-5b4a"
APP = "com.example.shop"
UA = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) Mobile/15E148"


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def settings(url: str, **more: Any) -> dict[str, Any]:
    return {"apiKey": TOKEN, "pixelId": PIXEL, "snapAppId": SNAP_APP, "appId": APP,
            "endpoint": url, **more}  # fmt: skip


def stamp(ago: timedelta = timedelta(0)) -> str:
    return (datetime.now(UTC) - ago).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def calls() -> list[dict[str, Any]]:
    """A purchase on the web, a page view, a sign-up in the app, and an identify (not taken)."""
    now = stamp()
    return [
        {"type": "track", "event": "Order Completed", "userId": "user-1", "messageId": "m-order",
         "channel": "web", "timestamp": now,
         "properties": {"order_id": "o-77", "currency": "EUR",
                        "products": [{"product_id": "p1", "price": 10, "quantity": 2},
                                     {"product_id": "p2", "price": 5.5}]},
         "context": {"traits": {"email": " Ada@Example.com "}, "userAgent": UA,
                     "page": {"url": "https://shop.example/checkout"}}},
        {"type": "page", "name": "Pricing", "anonymousId": "anon-2", "messageId": "m-page",
         "channel": "web", "timestamp": now,
         "context": {"traits": {"phone": "+1 (555) 010-0199"}}},
        {"type": "track", "event": "Sign Up", "userId": "user-3", "messageId": "m-signup",
         "channel": "mobile", "timestamp": now,
         "context": {"device": {"type": "ios", "id": "idfv-3", "advertisingId": "AD-ID-3",
                                "model": "iPhone15,2"},
                     "app": {"namespace": "com.example.shop", "version": "2.1", "build": "210"},
                     "os": {"version": "17.4"}, "locale": "en-GB"}},
        {"type": "identify", "userId": "user-4", "messageId": "m-identify",
         "traits": {"email": "grace@example.com"}},
    ]  # fmt: skip


def test_v2_conversions_arrive_shaped_and_authenticated_after_throttling(
    workspace_config: str, gateway: GatewayProcess, worker: WorkerProcess
) -> None:
    double = SnapchatDouble(TOKEN, PIXEL, SNAP_APP)
    double.throttle_next(2)
    with Sink(double) as sink:
        config = settings(sink.url, enableDeduplication=True)
        connect_destinations(workspace_config, ("snap", "snapchat_conversion", config))
        post(gateway, calls())
        wait_until(lambda: len(double.conversions) == 3)
        time.sleep(0.3)  # anything sent twice, or the identify, would arrive now

    assert all(a.path == "/v2/conversion" for a in sink.arrivals)
    assert all(a.header("authorization") == f"Bearer {TOKEN}" for a in sink.arrivals)
    assert all(isinstance(a.json(), list) for a in sink.arrivals)
    got = {c["event_type"]: c for c in double.conversions}
    assert set(got) == {"PURCHASE", "PAGE_VIEW", "SIGN_UP"}
    order = got["PURCHASE"]
    assert order["event_conversion_type"] == "WEB" and order["pixel_id"] == PIXEL
    assert order["hashed_email"] == sha("ada@example.com")
    assert order["user_agent"] == UA.lower()
    assert order["hashed_ip_address"] == sha("127.0.0.1")  # the gateway's request_ip
    assert (order["item_ids"], order["price"], order["currency"]) == (["p1", "p2"], "25.5", "EUR")
    assert (order["transaction_id"], order["client_dedup_id"]) == ("o-77", "m-order")
    assert order["page_url"] == "https://shop.example/checkout"
    assert abs(int(order["timestamp"]) - time.time()) < 120
    page = got["PAGE_VIEW"]
    assert page["hashed_phone_number"] == sha("15550100199") and page["pixel_id"] == PIXEL
    signup = got["SIGN_UP"]
    assert signup["event_conversion_type"] == "MOBILE_APP" and "pixel_id" not in signup
    assert (signup["snap_app_id"], signup["app_id"]) == (SNAP_APP, APP)
    assert signup["hashed_mobile_ad_id"] == sha("AD-ID-3")
    assert signup["hashed_idfv"] == sha("idfv-3")
    assert signup["device_model"] == "iPhone15,2"
    states = attempts(workspace_config, 3)
    assert states["delivered"] == 3 and states["retry"] >= 2, states
    assert sluice(workspace_config, "failed", "list", "--json") == ""


def test_v3_events_go_to_their_pixel_or_app_with_the_token_in_the_url_after_throttling(
    workspace_config: str, gateway: GatewayProcess, worker: WorkerProcess
) -> None:
    double = SnapchatDouble(TOKEN, PIXEL, SNAP_APP)
    double.throttle_next(1)
    with Sink(double) as sink:
        config = settings(sink.url, apiVersion="newApi")
        connect_destinations(workspace_config, ("snap", "snapchat_conversion", config))
        post(gateway, calls())
        wait_until(lambda: len(double.events) == 3)
        time.sleep(0.3)

    assert all(a.query == {"access_token": TOKEN} for a in sink.arrivals)
    assert all("authorization" not in {k.lower() for k in a.headers} for a in sink.arrivals)
    web = {e["event_name"]: e for e in double.events_by_id[PIXEL]}
    assert set(web) == {"PURCHASE", "PAGE_VIEW"}
    order = web["PURCHASE"]
    assert order["action_source"] == "WEB"
    assert order["event_source_url"] == "https://shop.example/checkout"
    assert order["user_data"]["em"] == sha("ada@example.com")
    assert order["user_data"]["client_user_agent"] == UA  # v3 takes it as it is
    assert order["user_data"]["client_ip_address"] == "127.0.0.1"
    assert order["event_id"] == "o-77"  # the order id (deduplication is off)
    custom = order["custom_data"]
    assert (custom["content_ids"], custom["value"], custom["currency"]) == (["p1", "p2"], "25.5",
                                                                            "EUR")  # fmt: skip
    assert custom["contents"] == [{"id": "p1", "item_price": 10, "quantity": 2},
                                  {"id": "p2", "item_price": 5.5}]  # fmt: skip
    [signup] = double.events_by_id[SNAP_APP]
    assert signup["event_name"] == "SIGN_UP" and signup["action_source"] == "MOBILE_APP"
    assert signup["user_data"]["madid"] == "AD-ID-3" and signup["user_data"]["idfv"] == "idfv-3"
    extinfo = signup["app_data"]["extinfo"]
    assert signup["app_data"]["app_id"] == APP and len(extinfo) == 16
    assert extinfo[:7] == ["i2", "com.example.shop", "2.1", "210", "17.4", "iPhone15,2", "en-GB"]
    states = attempts(workspace_config, 3)
    assert states["delivered"] == 3 and states["retry"] >= 1, states
    assert sluice(workspace_config, "failed", "list", "--json") == ""


def test_refusals_abort_at_once_and_are_listed_with_the_token_masked(
    workspace_config: str, gateway: GatewayProcess, worker: WorkerProcess
) -> None:
    wrong = "revoked-snap-token-0c4f2e11"
    with Sink(SnapchatDouble(TOKEN, PIXEL, SNAP_APP)) as sink:
        connect_destinations(
            workspace_config,
            ("snap2", "snapchat_conversion", settings(sink.url, apiKey=wrong)),
            ("snap3", "snapchat_conversion", settings(sink.url, apiKey=wrong, apiVersion="newApi")),
            ("stranger", "snapchat_conversion", settings(sink.url, pixelId="not-our-pixel")),
        )  # fmt: skip
        # (No fractional number in it: `sluice failed list --json` cannot show one, see report.)
        post(gateway, [{"type": "track", "event": "Order Completed", "userId": "user-1",
                        "messageId": "m-order", "channel": "web", "timestamp": stamp(),
                        "properties": {"order_id": "o-77", "revenue": 20},
                        "context": {"traits": {"email": "ada@example.com"}}}])  # fmt: skip
        listing = {job["destination"]: job for job in wait_for_failed(workspace_config, 3)}
        assert len(sink.arrivals) == 3  # permanent: none is sent again
    table = sluice(workspace_config, "failed", "list")
    assert wrong not in json.dumps(failed_jobs(workspace_config)) and wrong not in table
    v2, v3, stranger = listing["snap2"], listing["snap3"], listing["stranger"]
    for job in (v2, v3):
        assert (job["status_code"], job["attempts"]) == (401, 1)
        assert job["error"] == "HTTP 401: Unauthorized: the access token is invalid or expired"
    assert v2["request"]["headers"]["Authorization"] == "Bearer ****"
    assert v3["request"]["params"] == {"access_token": "****"}
    assert wrong not in v3["request"]["url"]
    assert (stranger["status_code"], stranger["attempts"]) == (400, 1)
    assert stranger["error"] == "HTTP 400: conversion 0: pixel_id is not a pixel of this account"
    assert '"status": "FAILED"' in stranger["response"]
    assert wrong not in worker.output()


def test_an_event_snapchat_cannot_take_fails_alone_and_the_others_arrive_once(
    workspace_config: str, gateway: GatewayProcess, worker: WorkerProcess
) -> None:
    double = SnapchatDouble(TOKEN, PIXEL, SNAP_APP)
    with Sink(double) as sink:
        config = settings(sink.url, rudderEventsToSnapEvents=[{"from": "Booked", "to": "RESERVE"}])
        connect_destinations(workspace_config, ("snap", "snapchat_conversion", config))
        track: dict[str, Any] = {"type": "track", "channel": "web",
                                 "context": {"traits": {"email": "lin@example.com"}}}  # fmt: skip
        post(gateway, [
            {**track, "event": "Booked", "userId": "u-0", "messageId": "m-0",
             "timestamp": stamp()},
            {**track, "event": "Booked", "userId": "u-1", "messageId": "m-old",
             "timestamp": stamp(timedelta(days=40))},
            {**track, "event": "Wandered About", "userId": "u-2", "messageId": "m-unknown",
             "timestamp": stamp()},
            {**track, "event": "Product Added", "userId": "u-3", "messageId": "m-3",
             "timestamp": stamp(), "properties": {"product_id": 42, "price": "9.99"}},
        ])  # fmt: skip
        listing = {job["message_id"]: job for job in wait_for_failed(workspace_config, 2)}
        wait_until(lambda: len(double.conversions) == 2)
        time.sleep(0.3)

    # However the router read them, the two sendable events arrived once each, refused none.
    assert sum(double.requests) == 2 and len(double.requests) == len(sink.arrivals)
    sent = {c["event_type"]: c for c in double.conversions}
    assert set(sent) == {"RESERVE", "ADD_CART"}
    assert (sent["ADD_CART"]["item_ids"], sent["ADD_CART"]["price"]) == (["42"], "9.99")
    assert set(listing) == {"m-old", "m-unknown"}
    assert all(job["status_code"] is None for job in listing.values())
    assert "up to 37 days old" in listing["m-old"]["error"]
    assert "'Wandered About' is not one of Snapchat's events" in listing["m-unknown"]["error"]


def test_a_batch_snap_refuses_for_one_conversion_is_sent_again_conversion_by_conversion(
    workspace_config: str, gateway: GatewayProcess, worker: WorkerProcess
) -> None:
    """Snap refuses a whole request for one bad conversion (400) and names none Sluice could
    place: the router sends each conversion of it again alone, and only the bad one fails."""
    double = SnapchatDouble(TOKEN, PIXEL, SNAP_APP)
    with Sink(double) as sink:
        connect_destinations(workspace_config, ("snap", "snapchat_conversion", settings(sink.url)))
        # A time in the future is sent as it is (RudderStack does too); this Snap refuses it.
        post(gateway, [
            {"type": "track", "event": "Sign Up", "userId": f"u-{n}", "messageId": f"m-{n}",
             "channel": "web", "context": {"traits": {"email": f"u{n}@example.com"}},
             "timestamp": stamp(-timedelta(days=3) if n == 1 else timedelta(0))}
            for n in range(3)
        ])  # fmt: skip
        [failed] = wait_for_failed(workspace_config, 1)
        wait_until(lambda: len(double.conversions) == 2)
        time.sleep(0.5)  # anything sent again would arrive now
        emails = {sha(f"u{n}@example.com"): f"m-{n}" for n in range(3)}
        requests = [[emails[c["hashed_email"]] for c in a.json()] for a in sink.arrivals]

    assert sorted(emails[c["hashed_email"]] for c in double.conversions) == ["m-0", "m-2"]
    assert failed["message_id"] == "m-1" and failed["status_code"] == 400
    assert failed["error"] == (
        "HTTP 400: conversion 0: the event must have happened within the last 37 days"
    )
    # The requests that carried m-1 with others were refused whole: each of those others
    # went again alone (and m-1 too).
    shared = {m for ids in requests if "m-1" in ids for m in ids}
    assert all([m] in requests for m in shared), requests
