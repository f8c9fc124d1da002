"""Slack end to end: gateway → worker → a double of Slack's incoming webhooks
(tests.vendors.slack) reached through the destination's `endpoint` setting."""

import json
import time
from urllib.parse import parse_qs

from tests.delivery import attempts, connect_destinations, post, sluice, wait_for_failed, wait_until
from tests.servers import GatewayProcess, WorkerProcess
from tests.sink import Sink
from tests.vendors.slack import Hook, SlackDouble

# The paths are the webhooks' secrets; the host is Slack's, replaced by `endpoint`.
MAIN = "/services/T0SLUICE/B0MAIN/mainsecret9f31c2a7d4e8"
ORDERS = "/services/T0SLUICE/B0ORDERS/orderssecret5b7e20c1f9aa"
HOOKS = {MAIN: Hook("#events"), ORDERS: Hook("#orders", legacy=False)}
TRAITS = {"name": "Ada <Lovelace>", "plan": "pro", "email": "ada@example.com"}


def slack(url: str, **config: object) -> dict[str, object]:
    return {"webhookUrl": f"https://hooks.slack.com{MAIN}", "endpoint": url,
            "whitelistedTraitsSettings": [{"trait": "plan"}], **config}  # fmt: skip


def test_every_call_arrives_shaped_after_throttling(
    workspace_config: str, gateway: GatewayProcess, worker: WorkerProcess
) -> None:
    double = SlackDouble(HOOKS, channels=frozenset({"#sales"}))
    double.throttle_next(2)
    template = ("{{name}} ordered {{properties.items.length}} items{{newline}}"
                "{{#each properties.items}}{{sku}} {{/each}}")  # fmt: skip
    templates = [{"eventName": "^Order", "eventRegex": True, "eventTemplate": template}]
    with Sink(double) as sink:
        connect_destinations(
            workspace_config,
            ("legacy", "slack", slack(sink.url, eventTemplateSettings=templates,
             eventChannelSettings=[{"eventName": "Order Completed", "eventChannel": "#sales"}])),
            ("modern", "slack", slack(sink.url, incomingWebhooksType="modern",
             eventChannelSettings=[{"eventName": "Order", "eventRegex": True,
                                    "eventChannelWebhook": f"https://hooks.slack.com{ORDERS}"}])),
        )  # fmt: skip
        post(gateway, [
            {"type": "identify", "userId": "user-1", "messageId": "m-identify", "traits": TRAITS},
            {"type": "track", "userId": "user-1", "event": "Order Completed",
             "messageId": "m-order", "context": {"traits": TRAITS},
             "properties": {"items": [{"sku": "A-1"}, {"sku": "B-2"}]}},
            {"type": "track", "anonymousId": "anon-7", "event": "Signed Up", "messageId": "m-up"},
            {"type": "page", "userId": "user-1", "name": "Pricing", "messageId": "m-page"},
        ])  # fmt: skip
        wait_until(lambda: len(double.messages) == 6)
        time.sleep(0.3)  # anything sent twice would arrive now

    identified = "Identified Ada &lt;Lovelace&gt;plan: pro "
    assert sorted(double.posted("#events")) == sorted(
        [identified, identified, "Anonymous user anon-7 did Signed Up",
         "Anonymous user anon-7 did Signed Up"]
    )  # fmt: skip
    # legacy: the channel row steers the message; the template (a regex row) renders it.
    assert double.posted("#sales") == ["Ada &lt;Lovelace&gt; ordered 2 items\nA-1 B-2 "]
    # modern: the channel row's own webhook; the default template (no template row there).
    assert double.posted("#orders") == ["Ada &lt;Lovelace&gt; did Order Completed"]
    for arrival in sink.delivered:
        assert arrival.header("content-type") == "application/x-www-form-urlencoded"
        [payload] = parse_qs(arrival.body.decode())["payload"]
        assert set(json.loads(payload)) <= {"text", "channel"}
    assert len(sink.arrivals) == 8 and len(sink.delivered) == 6  # two throttled, then sent
    states = attempts(workspace_config, 6)
    assert states["delivered"] == 6 and states["retry"] == 2, states
    assert sluice(workspace_config, "failed", "list", "--json") == ""


def test_refusals_abort_visibly_with_the_webhooks_masked(
    workspace_config: str, gateway: GatewayProcess, worker: WorkerProcess
) -> None:
    double = SlackDouble(HOOKS, archived=frozenset({"#orders"}), revoked=frozenset({MAIN}))
    # Read when saved, but too much work over this event's list: it fails alone, unsent.
    nested = "{{#each items}}{{#each ../items}}{{#each ../../items}}{{/each}}{{/each}}{{/each}}"
    bad_template = [{"eventName": "Broken", "eventTemplate": nested}]
    with Sink(double) as sink:
        connect_destinations(
            workspace_config,
            ("slack", "slack", slack(sink.url, incomingWebhooksType="modern",
             eventTemplateSettings=bad_template,
             eventChannelSettings=[{"eventName": "Order Completed",
                                    "eventChannelWebhook": f"https://hooks.slack.com{ORDERS}"}])),
        )  # fmt: skip
        post(gateway, [
            {"type": "identify", "userId": "user-1", "messageId": "m-identify", "traits": TRAITS},
            {"type": "track", "userId": "user-2", "event": "Order Completed",
             "messageId": "m-order"},
            {"type": "track", "userId": "user-3", "event": "Broken", "messageId": "m-broken",
             "properties": {"items": list(range(2000))}},
        ])  # fmt: skip
        listing = {f["message_id"]: f for f in wait_for_failed(workspace_config, 3)}
        time.sleep(0.3)  # a retry would arrive now
        assert len(sink.arrivals) == 2  # permanent: not retried; the broken one never sent

    revoked, archived = listing["m-identify"], listing["m-order"]
    assert (revoked["status_code"], revoked["attempts"]) == (403, 1)
    assert revoked["error"].startswith("HTTP 403: invalid_token (the webhook URL is wrong")
    assert revoked["request"]["url"] == f"{sink.url}****"
    assert (archived["status_code"], archived["attempts"]) == (410, 1)
    assert archived["error"] == "HTTP 410: channel_is_archived (the channel is archived)"
    assert archived["request"]["url"] == f"{sink.url}****"
    assert "cannot be rendered: rendering takes too long" in listing["m-broken"]["error"]
    table = sluice(workspace_config, "failed", "list", "--json")
    for secret in ("mainsecret9f31c2a7d4e8", "orderssecret5b7e20c1f9aa", "B0MAIN", "B0ORDERS"):
        assert secret not in table
    assert "****" in table
