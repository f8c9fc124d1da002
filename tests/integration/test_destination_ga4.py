"""GA4 end to end: gateway → worker → a GA4 double reached through the `endpoint` setting."""

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.delivery import (
    attempts,
    connect_destinations,
    failed_jobs,
    post,
    sluice,
    wait_for_failed,
)
from tests.servers import GatewayProcess, WorkerProcess
from tests.sink import Answer, Sink
from tests.vendors.ga4 import COLLECT, GA4Double

SECRET = "e2e-api-secret-value"
MEASUREMENT = "G-E2ETEST1"


def config(url: str) -> dict[str, Any]:
    return {"apiSecret": SECRET, "measurementId": MEASUREMENT, "typesOfClient": "gtag",
            "endpoint": url}  # fmt: skip


@pytest.fixture
def ga4(workspace_config: str) -> Iterator[tuple[GA4Double, Sink]]:
    """A GA4 double, and the destination sending to it: made before the worker starts (list
    this fixture before `worker`), whose routers then see the first jobs at once."""
    double = GA4Double(SECRET, measurement_id=MEASUREMENT)
    with Sink(double) as sink:
        connect_destinations(workspace_config, ("ga4", "ga4", config(sink.url)))
        yield double, sink


def events(when: datetime) -> list[dict[str, Any]]:
    stamp = when.isoformat().replace("+00:00", "Z")
    user = {"userId": "u-1", "anonymousId": "anon-1", "originalTimestamp": stamp}
    product = {"product_id": "sku-1", "name": "Tee", "price": "19.5", "quantity": 2}
    return [
        {**user, "type": "page", "messageId": "m-page",
         "context": {"page": {"url": "https://shop.example/cart", "title": "Cart"}}},
        {**user, "type": "track", "event": "Order Completed", "messageId": "m-order",
         "context": {"traits": {"plan": "pro"}},
         "properties": {"order_id": "o-1", "total": 39.0, "products": [product]}},
        {**user, "type": "identify", "messageId": "m-identify", "traits": {"plan": "pro"}},
        {**user, "type": "group", "messageId": "m-group", "groupId": "acme",
         "traits": {"industry": "retail"}},
    ]  # fmt: skip


def test_events_arrive_shaped_and_authenticated_and_throttling_is_retried(
    workspace_config: str,
    ga4: tuple[GA4Double, Sink],
    gateway: GatewayProcess,
    worker: WorkerProcess,
) -> None:
    double, sink = ga4
    double.throttle_next(2)
    when = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    post(gateway, events(when))
    sink.wait_for(3, timeout=30)
    time.sleep(0.5)  # anything extra (the identify call) would arrive now
    states = attempts(workspace_config, 3)

    # GA4 answers 204 to anything: what it would have discarded is in `dropped`.
    assert double.dropped == []
    assert [p["events"][0]["name"] for p in double.collected] == [
        "page_view", "purchase", "join_group",
    ]  # fmt: skip
    assert all(a.path == COLLECT and a.query == {"api_secret": SECRET,
               "measurement_id": MEASUREMENT} for a in sink.delivered)  # fmt: skip
    page, order, group = double.collected
    assert {k: page[k] for k in ("client_id", "user_id", "timestamp_micros")} == {
        "client_id": "anon-1", "user_id": "u-1",
        "timestamp_micros": int(when.timestamp()) * 1_000_000,
    }  # fmt: skip
    assert page["events"][0]["params"]["page_location"] == "https://shop.example/cart"
    purchase = order["events"][0]["params"]
    assert (purchase["transaction_id"], purchase["value"], purchase["currency"]) == (
        "o-1", 39.0, "USD",
    )  # fmt: skip
    assert purchase["items"] == [{"item_id": "sku-1", "item_name": "Tee", "price": 19.5,
                                  "quantity": 2}]  # fmt: skip
    assert order["user_properties"] == {"plan": {"value": "pro"}}
    assert group["events"][0]["params"]["group_id"] == "acme"

    assert states["delivered"] == 3 and states["retry"] == 2, states
    assert failed_jobs(workspace_config) == []


def test_a_refused_secret_and_an_unsendable_event_end_as_visible_failed_jobs(
    workspace_config: str,
    ga4: tuple[GA4Double, Sink],
    gateway: GatewayProcess,
    worker: WorkerProcess,
) -> None:
    # GA4 itself answers 2xx even to a wrong api_secret (and drops the event); a proxy in front
    # of it, or Google's front end refusing a misconfigured request, answers 403: that answer
    # must abort the job for good, with the secret masked wherever the job is shown.
    double, sink = ga4
    double.api_secret, double.strict_auth = "rotated-secret", True  # the configured one is stale
    post(gateway, [
        {"type": "track", "event": "Signed Up", "anonymousId": "a-1", "messageId": "m-auth"},
        {"type": "track", "event": "session_start", "anonymousId": "a-2",
         "messageId": "m-reserved"},
    ])  # fmt: skip
    listing = wait_for_failed(workspace_config, 2)
    table = sluice(workspace_config, "failed", "list", "--destination", "ga4")

    by_id = {job["message_id"]: job for job in listing}
    refused = by_id["m-auth"]
    assert (refused["status_code"], refused["error"], refused["attempts"]) == (403, "HTTP 403", 1)
    assert "PERMISSION_DENIED" in refused["response"]
    assert refused["request"]["params"] == {"api_secret": "****", "measurement_id": MEASUREMENT}
    reserved = by_id["m-reserved"]
    assert reserved["status_code"] is None and "GA4 reserves" in reserved["error"]
    assert SECRET not in json.dumps(listing) and SECRET not in table
    assert "HTTP 403" in table
    assert len(sink.arrivals) == 1 and double.collected == []  # the reserved name was never sent


def _preview(tmp_path: Path, url: str) -> list[dict[str, Any]]:
    settings, event = tmp_path / "ga4.json", tmp_path / "event.json"
    settings.write_text(json.dumps(config(url)))
    event.write_text(json.dumps({"type": "track", "event": "Signed Up", "anonymousId": "a-1"}))
    out = sluice("", "preview", "--type", "ga4", "--config", str(settings), "--event", str(event),
                 "--validate")  # fmt: skip
    assert SECRET not in out
    checked: list[dict[str, Any]] = json.loads(out)
    return checked


def test_preview_asks_the_validation_endpoint(tmp_path: Path) -> None:
    double = GA4Double(SECRET, measurement_id=MEASUREMENT)
    with Sink(double) as sink:
        [good] = _preview(tmp_path, sink.url)
    assert good["status"] == 200 and good["messages"] == []
    assert good["request"]["params"]["api_secret"] == "****"
    assert double.validated and not double.collected  # asked; nothing recorded

    problem = {"fieldPath": "events[0].name", "description": "Event name is reserved",
               "validationCode": "NAME_RESERVED"}  # fmt: skip
    answer = Answer(200, body=json.dumps({"validationMessages": [problem]}))
    with Sink(lambda arrival: answer) as sink:
        [bad] = _preview(tmp_path, sink.url)
    assert len(bad["messages"]) == 1 and "Event name is reserved" in bad["messages"][0]
