"""Meta end to end: gateway → worker → a Graph API double reached through the `endpoint`
setting, for the three Meta destination types."""

import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.delivery import (
    attempts,
    connect_destinations,
    failed_jobs,
    post,
    sluice,
    wait_for_failed,
)
from tests.servers import GatewayProcess, WorkerProcess
from tests.sink import Sink
from tests.vendors.facebook import GraphDouble

TOKEN = "EAAGe2eSystemUserToken0123456789"
APP_TOKEN = "5566|e2eAppSecretPart"
PIXEL, DATASET, APP = "1122334455", "9988776655", "5566"


def connect(database_url: str, url: str, token: str = TOKEN, *, all_three: bool = True) -> None:
    configs: list[tuple[str, str, dict[str, Any]]] = [
        ("pixel", "facebook_pixel", {"pixelId": PIXEL, "accessToken": token}),
        ("capi", "facebook_conversions",
         {"datasetId": DATASET, "accessToken": token, "actionSource": "website"}),
        ("app", "facebook_app_events", {"appID": APP, "accessToken": APP_TOKEN}),
    ]  # fmt: skip
    chosen = configs if all_three else configs[:1]
    connect_destinations(
        database_url, *((name, kind, {**config, "endpoint": url}) for name, kind, config in chosen)
    )


def events(when: datetime) -> list[dict[str, Any]]:
    stamp = when.isoformat().replace("+00:00", "Z")
    context = {
        "userAgent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0",
        "ip": "203.0.113.7",
        "traits": {"email": " Jane@Example.com ", "phone": "+1 (555) 010-9999"},
        "page": {"url": "https://shop.example/cart"},
    }
    user = {"userId": "u-1", "anonymousId": "anon-1", "channel": "web",
            "originalTimestamp": stamp, "context": context}  # fmt: skip
    return [
        {**user, "type": "page", "name": "Cart", "messageId": "m-page",
         "properties": {"title": "Cart"}},
        {**user, "type": "track", "event": "Order Completed", "messageId": "m-order",
         "properties": {"order_id": "o-1", "revenue": 39.5, "currency": "EUR",
                        "products": [{"product_id": "sku-1", "price": 19.75, "quantity": 2}]}},
    ]  # fmt: skip


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_events_arrive_shaped_and_authenticated_and_throttling_is_retried(
    workspace_config: str, gateway: GatewayProcess, worker: WorkerProcess
) -> None:
    double = GraphDouble(TOKEN, app_token=APP_TOKEN)
    double.throttle_next(3, code=80003)
    when = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=2)
    with Sink(double) as sink:
        connect(workspace_config, sink.url)
        post(gateway, events(when))
        # pixel: page + order; conversions: page + order; app events: the order (no pages)
        sink.wait_for(5, timeout=30)
        throttled = len(sink.arrivals) - len(sink.delivered)

    assert double.refused == []
    assert throttled == 3
    by_id: dict[str, list[dict[str, Any]]] = {}
    for object_id, event in double.events:
        by_id.setdefault(object_id, []).append(event)
    assert [e["event_name"] for e in by_id[PIXEL]] == ["Viewed page Cart", "Purchase"]
    assert [e["event_name"] for e in by_id[DATASET]] == ["PageView", "Purchase"]
    for event in by_id[PIXEL] + by_id[DATASET]:
        assert event["event_time"] == int(when.timestamp())
        assert event["action_source"] == "website"
        assert event["event_source_url"] == "https://shop.example/cart"
        user = event["user_data"]
        assert user["em"] == sha256("jane@example.com")
        assert user["ph"] == sha256("15550109999")
        assert user["external_id"] == sha256("u-1")
        assert user["client_ip_address"] == "203.0.113.7"
    [page, order] = by_id[PIXEL]
    assert page["event_id"] == "m-page" and order["event_id"] == "m-order"
    assert order["custom_data"]["value"] == 39.5 and order["custom_data"]["currency"] == "EUR"
    assert order["custom_data"]["contents"] == [{"id": "sku-1", "quantity": 2, "item_price": 19.75}]
    [(app_id, form)] = double.app_events
    assert app_id == APP and form["ud[em]"] == sha256("jane@example.com")
    [custom] = json.loads(form["custom_events"])
    assert custom["_eventName"] == "fb_mobile_purchase" and custom["_valueToSum"] == 39.5
    assert custom["fb_currency"] == "EUR" and custom["fb_content_id"] == ["sku-1"]
    # Every request was authenticated: the token in the query, never in the body.
    for arrival in sink.delivered:
        expected = APP_TOKEN if arrival.path.endswith("/activities") else TOKEN
        assert arrival.query["access_token"] == expected
        assert TOKEN.encode() not in arrival.body
    states = attempts(workspace_config, 5)
    assert states["delivered"] == 5 and states["retry"] == 3


def test_a_bad_token_is_aborted_at_once_and_listed_with_the_token_masked(
    workspace_config: str, gateway: GatewayProcess, worker: WorkerProcess
) -> None:
    wrong = "EAAGe2eWrongTokenABCDEFGH987654"
    double = GraphDouble(TOKEN)
    when = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    with Sink(double) as sink:
        connect(workspace_config, sink.url, wrong, all_three=False)
        post(gateway, events(when)[1:])
        [failed] = wait_for_failed(workspace_config, 1)
        assert len(sink.arrivals) == 1  # a permanent error: not retried

    assert failed["message_id"] == "m-order" and failed["destination"] == "pixel"
    assert failed["status_code"] == 400 and failed["attempts"] == 1
    assert "Invalid OAuth access token" in failed["error"] and "code 190" in failed["error"]
    assert failed["request"]["params"]["access_token"] == "****"
    assert '"code": 190' in failed["response"]
    listing = json.dumps(failed_jobs(workspace_config))
    table = sluice(workspace_config, "failed", "list")
    assert wrong not in listing and wrong not in table
    assert "Invalid OAuth access token" in table
