"""Mixpanel end to end: gateway → worker → a double of Mixpanel's ingestion API
(tests.vendors.mixpanel) reached through the destination's `endpoint` setting."""

import time
from collections import Counter

from tests.delivery import (
    attempts,
    connect_destinations,
    post,
    sluice,
    wait_for_failed,
    wait_until,
)
from tests.servers import GatewayProcess, WorkerProcess
from tests.sink import Sink
from tests.vendors.mixpanel import MixpanelDouble

TOKEN = "mp-token-71c2e9d4"
SA_USER = "sluice-test.4f1a2b.mp-service-account"
SA_SECRET = "sa-secret-93be0c71aa"
PROJECT = "2718281"
OPS = ("$set", "$append")


def connect(database_url: str, url: str, **config: str) -> None:
    settings = {"token": TOKEN, "endpoint": url, "groupKeySettings": [{"groupKey": "company"}],
                **config}  # fmt: skip
    connect_destinations(database_url, ("mp", "mixpanel", settings))


def test_every_call_arrives_shaped_and_authenticated_after_throttling(
    workspace_config: str, gateway: GatewayProcess, worker: WorkerProcess
) -> None:
    double = MixpanelDouble(TOKEN)
    double.throttle_next(2)
    stamp = "2026-01-15T10:00:00.250Z"
    with Sink(double) as sink:
        connect(workspace_config, sink.url)
        post(gateway, [
            {"type": "identify", "userId": "user-1", "anonymousId": "anon-1",
             "messageId": "m-identify", "timestamp": stamp,
             "traits": {"email": "ada@example.com", "firstName": "Ada", "plan": "pro"}},
            {"type": "track", "userId": "user-1", "event": "Order Completed",
             "messageId": "m-order", "timestamp": stamp,
             "properties": {"revenue": 12.50, "currency": "EUR"}, "context": {"ip": "10.1.2.3"}},
            {"type": "page", "anonymousId": "anon-9", "name": "Pricing", "messageId": "m-page"},
            {"type": "group", "userId": "user-2", "groupId": "g1", "messageId": "m-group",
             "traits": {"company": "Acme", "employees": 40}},
            {"type": "alias", "userId": "user-3", "previousId": "anon-9", "messageId": "m-alias"},
        ])  # fmt: skip
        wait_until(lambda: len(double.events) == 4 and len(double.profiles) == 3 and double.groups)
        time.sleep(0.3)  # anything sent twice would arrive now

    events = {e["event"]: e["properties"] for e in double.events}
    assert set(events) == {"$merge", "Order Completed", "Loaded a Page", "$create_alias"}
    order = events["Order Completed"]
    assert (order["distinct_id"], order["$insert_id"]) == ("user-1", "m-order")
    assert order["token"] == TOKEN and order["$user_id"] == "user-1"
    assert order["time"] == 1768471200250 and order["ip"] == "10.1.2.3"
    page = events["Loaded a Page"]
    assert page["distinct_id"] == "anon-9" and page["name"] == "Pricing"
    assert events["$merge"]["$distinct_ids"] == ["user-1", "anon-1"]
    assert events["$create_alias"] == {"distinct_id": "anon-9", "alias": "user-3", "token": TOKEN}
    profiles = {(p["$distinct_id"], next(op for op in p if op in OPS)): p for p in double.profiles}
    assert profiles["user-1", "$set"]["$set"] == {"$email": "ada@example.com", "$first_name": "Ada",
                                                  "$name": "Ada", "plan": "pro"}  # fmt: skip
    assert profiles["user-2", "$set"]["$set"] == {"company": ["Acme"]}
    assert profiles["user-1", "$append"]["$append"]["$transactions"]["$amount"] == 12.5
    assert double.groups == [{"$group_key": "company", "$group_id": "Acme", "$token": TOKEN,
                              "$set": {"company": "Acme", "employees": 40}}]  # fmt: skip
    imports = [a for a in sink.arrivals if a.path == "/import/"]
    assert all(a.query == {"strict": "1"} for a in imports)
    states = attempts(workspace_config, 8)
    assert states["delivered"] == 8 and states["retry"] >= 2, states
    assert sluice(workspace_config, "failed", "list", "--json") == ""


def test_wrong_credentials_abort_visibly_with_the_secrets_masked(
    workspace_config: str, gateway: GatewayProcess, worker: WorkerProcess
) -> None:
    wrong = "not-the-project-token-5e0"
    with Sink(MixpanelDouble(TOKEN)) as sink:
        connect(workspace_config, sink.url, token=wrong)
        post(gateway, [
            {"type": "track", "userId": "user-1", "event": "Signed Up", "messageId": "m-track"},
            {"type": "identify", "userId": "user-2", "messageId": "m-identify",
             "traits": {"plan": "pro"}},
        ])  # fmt: skip
        listing = {f["message_id"]: f for f in wait_for_failed(workspace_config, 2)}
        assert len(sink.arrivals) == 2  # permanent: not retried
    track, identify = listing["m-track"], listing["m-identify"]
    assert track["status_code"] == 401 and track["attempts"] == 1
    assert track["error"] == "HTTP 401: Invalid credentials"
    assert track["request"]["headers"]["Authorization"] == "Basic ****"
    # /engage refuses with a 200 and an error in the body.
    assert identify["status_code"] == 200 and identify["attempts"] == 1
    assert identify["error"] == "HTTP 200: $token, missing or invalid"
    assert identify["request"]["body"][0]["$token"] == "****"
    table = sluice(workspace_config, "failed", "list", "--json")
    assert wrong not in table and "****" in table


def test_an_event_mixpanel_refuses_fails_alone_and_its_batch_is_not_sent_again(
    workspace_config: str, gateway: GatewayProcess, worker: WorkerProcess
) -> None:
    double = MixpanelDouble(TOKEN, service_account=(SA_USER, SA_SECRET), project_id=PROJECT)
    with Sink(double) as sink:
        connect(workspace_config, sink.url, serviceAccountUserName=SA_USER,
                serviceAccountSecret=SA_SECRET, projectId=PROJECT, dataResidency="eu")  # fmt: skip
        post(gateway, [
            {"type": "track", "userId": user, "event": "Viewed", "messageId": f"m-{n}"}
            for n, user in enumerate(["user-0", "undefined", "user-2"])
        ])  # fmt: skip
        [failed] = wait_for_failed(workspace_config, 1)
        wait_until(lambda: len(double.events) == 2)
        time.sleep(0.5)  # anything sent again would arrive now
        imports = [a for a in sink.arrivals if a.path == "/import/"]

    assert double.imports == [3], "the three events travel in one request"
    assert imports[0].query == {"strict": "1", "project_id": PROJECT}
    sent = Counter(e["properties"]["$insert_id"] for a in imports for e in a.json())
    assert sent == {"m-0": 1, "m-1": 1, "m-2": 1}
    assert sorted(double.insert_ids()) == ["m-0", "m-2"]
    assert failed["message_id"] == "m-1" and failed["status_code"] == 400
    assert failed["attempts"] == 1
    assert failed["error"].startswith("HTTP 400: 'properties.distinct_id' is invalid")
    states = attempts(workspace_config, 2)
    assert states == {"delivered": 2, "aborted": 1}, states
    table = sluice(workspace_config, "failed", "list", "--json")
    assert SA_SECRET not in table and TOKEN not in table
