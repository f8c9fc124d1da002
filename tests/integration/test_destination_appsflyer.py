"""AppsFlyer end to end: gateway → worker → a double of AppsFlyer's S2S in-app events API
(through the `endpoint` setting)."""

import json
from typing import Any

from tests.delivery import attempts, connect_destinations, post, sluice, wait_for_failed
from tests.servers import GatewayProcess, WorkerProcess
from tests.sink import Sink
from tests.vendors.appsflyer import AppsFlyerDouble

S2S_KEY = "s2s-key-of-the-test"
APPS = frozenset({"com.example.app", "id123456789"})


def connect(database_url: str, endpoint: str, **config: Any) -> None:
    config = {"authVersion": "v2", "s2sKey": S2S_KEY, "androidAppId": "com.example.app",
              "appleAppId": "123456789", "endpoint": endpoint, **config}  # fmt: skip
    connect_destinations(database_url, ("af", "appsflyer", config))


def event(message_id: str, os: str = "android", **fields: Any) -> dict[str, Any]:
    made = {
        "type": "track", "event": "Order Completed", "userId": "u1", "messageId": message_id,
        "context": {"os": {"name": os, "version": "14"},
                    "externalId": [{"type": "appsflyerExternalId", "id": "af-uid-1"}]},
    }  # fmt: skip
    made.update(fields)
    return made


def test_events_arrive_shaped_and_authenticated_on_both_platforms(
    workspace_config: str, gateway: GatewayProcess, worker: WorkerProcess
) -> None:
    appsflyer = AppsFlyerDouble(S2S_KEY, APPS)
    with Sink(appsflyer) as sink:
        connect(workspace_config, sink.url)
        post(gateway, [
            event("m1", properties={"revenue": 12.50, "currency": "EUR", "order_id": "o-1"}),
            event("m2", os="iOS", userId="u2", type="screen", name="Home", event=None),
            event("m3", os="web"),
        ])  # fmt: skip
        sink.wait_for(2)
        [failed] = wait_for_failed(workspace_config, 1)
    by_app = dict(appsflyer.accepted)
    assert appsflyer.dropped == [] and set(by_app) == APPS
    android = by_app["com.example.app"]
    assert (android["appsflyer_id"], android["eventName"]) == ("af-uid-1", "Order Completed")
    assert json.loads(android["eventValue"]) == {
        "properties": {"revenue": 12.50, "currency": "EUR", "order_id": "o-1"},
        "af_revenue": 12.50, "af_order_id": "o-1",
    }  # fmt: skip
    assert android["eventCurrency"] == "EUR" and android["customer_user_id"] == "u1"
    ios = by_app["id123456789"]
    assert (ios["eventName"], ios["eventValue"], ios["os"]) == ("screen", "", "14")
    assert failed["message_id"] == "m3" and "'web' has no app id configured" in failed["error"]


def test_a_throttled_event_is_retried_then_delivered(
    workspace_config: str, gateway: GatewayProcess, worker: WorkerProcess
) -> None:
    appsflyer = AppsFlyerDouble(S2S_KEY, APPS)
    appsflyer.throttle_next(2)
    with Sink(appsflyer) as sink:
        connect(workspace_config, sink.url)
        post(gateway, [event("m1")])
        sink.wait_for(1)
        assert len(sink.arrivals) == 3
    assert len(appsflyer.accepted) == 1
    states = attempts(workspace_config, 1)
    assert states["delivered"] == 1 and states["retry"] == 2


def test_a_wrong_key_aborts_and_the_failure_hides_the_key(
    workspace_config: str, gateway: GatewayProcess, worker: WorkerProcess
) -> None:
    wrong = "dev-key-never-shown"
    with Sink(AppsFlyerDouble(S2S_KEY, APPS)) as sink:
        connect(workspace_config, sink.url, authVersion="v1", devKey=wrong)
        post(gateway, [event("m1")])
        [failed] = wait_for_failed(workspace_config, 1)
        assert len(sink.arrivals) == 1  # a 401 is final: not sent again
    assert failed["status_code"] == 401 and failed["attempts"] == 1
    assert failed["error"] == "HTTP 401" and failed["response"] == "Unauthorized"
    assert failed["request"]["headers"]["authentication"] == "****"
    assert wrong not in json.dumps(failed) and S2S_KEY not in json.dumps(failed)
    table = sluice(workspace_config, "failed", "list", "--destination", "af")
    assert "HTTP 401" in table and wrong not in table
