"""Adjust end to end: gateway → worker → a double of Adjust's S2S event API (through the
`endpoint` setting)."""

import json
from typing import Any

from tests.delivery import attempts, connect_destinations, post, sluice, wait_for_failed
from tests.servers import GatewayProcess, WorkerProcess
from tests.sink import Sink
from tests.vendors.adjust import AdjustDouble

S2S_TOKEN = "s2s-token-of-the-test"
MAPPINGS = [{"from": "Purchase", "to": "pur123"}, {"from": "Signup", "to": "sig456"}]


def connect(database_url: str, endpoint: str, **config: Any) -> None:
    config = {"appToken": "app123", "customMappings": MAPPINGS, "environment": True,
              "s2sToken": S2S_TOKEN, "endpoint": endpoint, **config}  # fmt: skip
    connect_destinations(database_url, ("adjust", "adjust", config))


def purchase(message_id: str, **properties: Any) -> dict[str, Any]:
    return {
        "type": "track", "event": "Purchase", "userId": "u1", "messageId": message_id,
        "context": {"ip": "10.0.0.7", "device": {"type": "ios", "id": "IDFV-1",
                                                   "advertisingId": "IDFA-1"}},
        "properties": properties,
    }  # fmt: skip


def double() -> AdjustDouble:
    return AdjustDouble("app123", frozenset({"pur123", "sig456"}), s2s_token=S2S_TOKEN)


def test_events_arrive_shaped_and_authenticated_and_unmapped_ones_fail_visibly(
    workspace_config: str, gateway: GatewayProcess, worker: WorkerProcess
) -> None:
    adjust = double()
    with Sink(adjust) as sink:
        connect(workspace_config, sink.url)
        post(gateway, [
            purchase("m1", revenue="$19.999", currency="EUR", plan={"tier": "pro"}),
            {**purchase("m2"), "event": "Refund"},
        ])  # fmt: skip
        sink.wait_for(1)
        [failed] = wait_for_failed(workspace_config, 1)
    [params] = adjust.accepted
    assert params == {
        "s2s": "1", "app_token": "app123", "event_token": "pur123", "environment": "production",
        "idfv": "IDFV-1", "idfa": "IDFA-1", "ip_address": "10.0.0.7", "revenue": "20",
        "currency": "EUR", "callback_params": '{"plan.tier":"pro"}',
    }  # fmt: skip
    [arrival] = sink.delivered
    assert arrival.method == "POST" and arrival.path == "/event" and arrival.body == b""
    assert failed["message_id"] == "m2" and failed["request"] is None
    assert "no Adjust event token is mapped to event 'Refund'" in failed["error"]


def test_a_throttled_event_is_retried_then_delivered(
    workspace_config: str, gateway: GatewayProcess, worker: WorkerProcess
) -> None:
    adjust = double()
    adjust.throttle_next(2)
    with Sink(adjust) as sink:
        connect(workspace_config, sink.url)
        post(gateway, [purchase("m1")])
        sink.wait_for(1)
        assert len(sink.arrivals) == 3
    assert len(adjust.accepted) == 1
    states = attempts(workspace_config, 1)
    assert states["delivered"] == 1 and states["retry"] == 2


def test_a_refused_token_aborts_and_the_failure_hides_the_secret(
    workspace_config: str, gateway: GatewayProcess, worker: WorkerProcess
) -> None:
    wrong = "wrong-s2s-token-never-shown"
    with Sink(double()) as sink:
        connect(workspace_config, sink.url, s2sToken=wrong)
        post(gateway, [purchase("m1")])
        [failed] = wait_for_failed(workspace_config, 1)
        assert len(sink.arrivals) == 1  # a 401 is final: not sent again
    assert failed["status_code"] == 401 and failed["attempts"] == 1
    assert failed["error"] == "HTTP 401"
    assert "Authorization token is missing or wrong" in failed["response"]
    assert failed["request"]["headers"]["Authorization"] == "Bearer ****"
    assert wrong not in json.dumps(failed)
    table = sluice(workspace_config, "failed", "list", "--destination", "adjust")
    assert "HTTP 401" in table and wrong not in table
