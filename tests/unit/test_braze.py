"""The Braze mapping: settings, refusals and rules no conformance case covers, how jobs combine
within Braze's 75-object limits, the alias merge made when an identify is sent, and what
Braze's answers mean for each job of a combined request."""

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from engine import codec
from engine.destinations.base import (
    BadSettings,
    Judgement,
    Looked,
    LookupFailed,
    Request,
    Unsendable,
    Verdict,
)
from engine.destinations.braze import BRAZE, MAX_OBJECTS, PER_JOB, combine, resolve

NOW = datetime(2026, 3, 1, tzinfo=UTC)
KEY = "braze-key-5e0c"
STAMP = "2026-02-28T10:00:00.123Z"


def settings(**config: Any) -> Any:
    return BRAZE.parse_settings({"restApiKey": KEY, "dataCenter": "US-01", **config})


def made(event: dict[str, Any], **config: Any) -> list[Request]:
    return BRAZE.map(codec.decode(json.dumps(event)), settings(**config), NOW)


def body(event: dict[str, Any], **config: Any) -> dict[str, Any]:
    [request] = made(event, **config)
    found: dict[str, Any] = request.body
    return found


def order(count: int, user: str = "u1", **properties: Any) -> dict[str, Any]:
    products = [{"product_id": f"p{n}", "price": n, "quantity": 1} for n in range(count)]
    return {"type": "track", "event": "Order Completed", "userId": user, "timestamp": STAMP,
            "properties": {"currency": "EUR", "products": products, **properties}}  # fmt: skip


# Settings


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"dataCenter": "US-01"}, "restApiKey"),
        ({"restApiKey": KEY}, "dataCenter"),
        ({"restApiKey": " ", "dataCenter": "US-01"}, "restApiKey is empty"),
        ({"restApiKey": "a key", "dataCenter": "US-01"}, "restApiKey contains spaces"),
        ({"restApiKey": KEY, "dataCenter": "APAC-1"}, "is not a Braze instance"),
        ({"restApiKey": KEY, "dataCenter": "US"}, "is not a Braze instance"),
        ({"restApiKey": KEY, "dataCenter": "US-001"}, "is not a Braze instance"),
        ({"restApiKey": KEY, "dataCenter": "US-01", "endpoint": "rest.braze"}, "not an http"),
    ],
)
def test_settings_a_user_must_fix_are_refused_with_the_field_named(
    config: dict[str, Any], message: str
) -> None:
    with pytest.raises(BadSettings, match=message):
        BRAZE.parse_settings(config)


@pytest.mark.parametrize(
    ("center", "host"),
    [
        ("us-03", "https://rest.iad-03.braze.com"),
        (" EU-02 ", "https://rest.fra-02.braze.eu"),
        ("AU-01", "https://rest.au-01.braze.com"),
        ("us-1", "https://rest.iad-01.braze.com"),  # Braze's instances have two digits
    ],
)
def test_the_data_center_names_the_host(center: str, host: str) -> None:
    event = {"type": "identify", "userId": "u1", "traits": {"plan": "pro"}}
    [request] = made(event, dataCenter=center)
    assert request.url == f"{host}/users/track"
    [proxied] = made(event, dataCenter=center, endpoint="http://proxy.local/braze/")
    assert proxied.url == "http://proxy.local/braze/users/track"


def test_every_setting_has_help_and_the_key_is_secret() -> None:
    assert set(BRAZE.help) == set(BRAZE.settings.__struct_fields__)
    assert BRAZE.secrets({"restApiKey": KEY, "dataCenter": "US-01"}) == [KEY]


# Mapping rules


def test_known_traits_take_brazes_names() -> None:
    traits = {"email": "Ada@Example.COM", "firstName": "Ada", "lastName": "L", "gender": "Male",
              "birthday": "1990-01-02", "avatar": "https://a/b.png", "phone": None,
              "address": {"city": "Paris", "country": "FR"}, "plan": "pro", "zero": 0}  # fmt: skip
    [attributes] = body({"type": "identify", "userId": "u1", "traits": traits})["attributes"]
    assert attributes == {
        "email": "ada@example.com", "first_name": "Ada", "last_name": "L", "gender": "M",
        "dob": "1990-01-02", "image_url": "https://a/b.png", "phone": None,
        "home_city": "Paris", "country": "FR", "plan": "pro", "zero": 0, "external_id": "u1",
    }  # fmt: skip
    unknown = body({"type": "identify", "userId": "u1", "traits": {"gender": "x"}})
    assert unknown["attributes"][0]["gender"] is None


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"type": "identify", "userId": "u1", "traits": {}}, "No attributes"),
        ({"type": "identify", "userId": "u1", "traits": {"email": 5}}, "email must be text"),
        ({"type": "identify", "traits": {"plan": "pro"}}, "no userId, brazeExternalId"),
        ({"type": "track", "userId": "u1", "timestamp": STAMP}, "event name"),
        ({"type": "track", "userId": "u1", "event": "Viewed"}, "no timestamp"),
        (
            {
                **order(1),
                "properties": {"products": [{"product_id": "p", "price": 1, "quantity": 1}]},
            },
            "currency",
        ),
        (
            {**order(1), "properties": {"currency": "EUR", "products": [{"price": "x"}]}},
            "product 0 of the order has no product_id",
        ),
        ({**order(1), "properties": {"currency": "EUR"}}, "properties.products"),
        ({"type": "group", "userId": "u1"}, "groupId"),
        ({"type": "alias", "previousId": "old"}, "userId is required"),
        (
            {
                "type": "track",
                "userId": "u1",
                "event": "Big",
                "timestamp": STAMP,
                "properties": {"blob": "x" * 110_000},
            },
            "100 KB",
        ),
    ],
)
def test_events_that_cannot_become_a_valid_request_are_refused(
    event: dict[str, Any], message: str
) -> None:
    with pytest.raises(Unsendable, match=message):
        made(event)


def test_subscription_groups_need_a_state_and_a_phone_or_email() -> None:
    group = {"type": "group", "userId": "u1", "groupId": "g1"}
    with pytest.raises(Unsendable, match="subscriptionState"):
        made({**group, "traits": {"email": "a@b.c"}}, enableSubscriptionGroupInGroupCall=True)
    with pytest.raises(Unsendable, match=r"phone or traits\.email"):
        made({**group, "traits": {"subscriptionState": "subscribed"}},
             enableSubscriptionGroupInGroupCall=True)  # fmt: skip
    sent = body({**group, "traits": {"subscriptionState": "unsubscribed", "email": "a@b.c"}},
                enableSubscriptionGroupInGroupCall=True)  # fmt: skip
    assert sent == {"subscription_groups": [{"subscription_group_id": "g1",
                    "subscription_state": "unsubscribed", "external_ids": ["u1"],
                    "emails": ["a@b.c"]}]}  # fmt: skip


def test_an_anonymous_group_call_names_the_user_by_alias() -> None:
    [attributes] = body({"type": "group", "anonymousId": "a1", "groupId": "g1"})["attributes"]
    assert attributes["user_alias"] == {"alias_name": "a1", "alias_label": "rudder_id"}


def test_nested_array_operations() -> None:
    traits = {"pets": {"update": [{"identifier": "id", "id": 1, "name": "Rex"}],
                       "remove": [{"identifier": "id", "id": 2}], "add": [{"id": 3}]}}  # fmt: skip
    event = {"type": "identify", "userId": "u1", "traits": traits}
    [attributes] = body(event, enableNestedArrayOperations=True)["attributes"]
    assert attributes["pets"] == {
        "$update": [{"$identifier_key": "id", "$identifier_value": 1,
                     "$new_object": {"name": "Rex"}}],
        "$remove": [{"$identifier_key": "id", "$identifier_value": 2}],
        "$add": [{"id": 3}],
    }  # fmt: skip
    assert attributes["_merge_objects"] is False
    assert body(event)["attributes"][0]["pets"] == traits["pets"]  # off: sent as they are


def test_recommended_order_placed_keeps_other_fields_as_metadata() -> None:
    event = {"type": "track", "event": "order completed", "userId": "u1", "timestamp": STAMP,
             "channel": "mobile", "context": {"os": {"name": "iOS"}},
             "properties": {"order_id": "o1", "total": "27.5", "currency": "EUR", "coupon": "X",
                            "time": "dropped", "products": [
                                {"product_id": "p1", "name": "Mug", "quantity": "2",
                                 "price": 5, "color": "red"}]}}  # fmt: skip
    [sent] = body(event, useEcommerceRecommendedEvents=True)["events"]
    assert sent["name"] == "ecommerce.order_placed"
    assert sent["properties"] == {
        "order_id": "o1", "total_value": 27.5, "currency": "EUR", "source": "ios",
        "metadata": {"coupon": "X"},
        "products": [{"product_id": "p1", "product_name": "Mug", "variant_id": "p1",
                      "quantity": 2, "price": 5, "metadata": {"color": "red"}}],
    }  # fmt: skip


def test_purchases_carry_extra_product_fields_when_asked() -> None:
    event = order(1)
    event["properties"]["products"][0]["color"] = "red"
    assert "properties" not in body(event)["purchases"][0]
    purchase = body(event, sendPurchaseEventWithExtraProperties=True)["purchases"][0]
    assert purchase["properties"] == {"color": "red"}


def test_an_identify_with_both_ids_carries_the_merge_to_make_as_hints_never_sent() -> None:
    [request] = made({"type": "identify", "userId": "u1", "anonymousId": "a1",
                      "traits": {"plan": "pro"}})  # fmt: skip
    assert request.hints == {"external_id": "u1", "alias_name": "a1", "alias_label": "rudder_id"}
    # Not in the URL the request is shown and sent with, nor in what a batch sends.
    assert request.params == {}
    sent = combine([request])
    assert sent.params == {} and sent.hints == {}
    [alone] = made({"type": "identify", "userId": "u1", "traits": {"plan": "pro"}})
    assert alone.hints == {} and alone.params == {}


@pytest.mark.parametrize(
    ("alias", "expected"),
    [
        ({"alias_name": "n1", "alias_label": "crm"}, {"alias_name": "n1", "alias_label": "crm"}),
        ({"alias_name": 42, "alias_label": "crm"}, {"alias_name": "42", "alias_label": "crm"}),
        # Braze takes text only: an object is no alias, and the anonymousId names the user.
        ({"alias_name": {"$ne": 1}, "alias_label": "crm"},
         {"alias_name": "a1", "alias_label": "rudder_id"}),
    ],
)  # fmt: skip
def test_a_custom_alias_is_text(alias: dict[str, Any], expected: dict[str, Any]) -> None:
    event = {"type": "identify", "anonymousId": "a1", "traits": {"plan": "pro"},
             "integrations": {"Braze": {"alias": alias}}}  # fmt: skip
    assert body(event)["attributes"][0]["user_alias"] == expected


# Batching within Braze's limits


def test_small_jobs_combine_and_large_orders_go_alone() -> None:
    [small] = made(order(PER_JOB))
    [large] = made(order(PER_JOB + 1))
    assert BRAZE.batch_key(small) is not None
    assert BRAZE.batch_key(large) is None
    # A full batch of the heaviest jobs that combine stays within Braze's limits.
    jobs = [made(order(PER_JOB, user=f"u{n}"))[0] for n in range(BRAZE.batch_size)]
    assert len({BRAZE.batch_key(job) for job in jobs}) == 1
    combined = combine(jobs)
    assert len(combined.body["purchases"]) == MAX_OBJECTS
    assert len({p["external_id"] for p in combined.body["purchases"]}) <= MAX_OBJECTS


def test_an_order_of_more_than_75_products_is_sent_in_several_requests() -> None:
    event = order(80)
    event["context"] = {"traits": {"plan": "pro"}}
    first, second = made(event)
    assert len(first.body["purchases"]) == MAX_OBJECTS and first.body["attributes"]
    assert len(second.body["purchases"]) == 5 and "attributes" not in second.body


def test_subscriptions_of_one_group_and_state_merge() -> None:
    def subscribe(user: str, state: str, **traits: Any) -> Request:
        event = {"type": "group", "userId": user, "groupId": "g1",
                 "traits": {"subscriptionState": state, **traits}}  # fmt: skip
        [request] = made(event, enableSubscriptionGroupInGroupCall=True)
        return request

    combined = combine([subscribe("u1", "subscribed", phone="1"),
                        subscribe("u2", "subscribed", phone="1"),
                        subscribe("u3", "unsubscribed", email="c@d.e")])  # fmt: skip
    assert combined.body == {"subscription_groups": [
        {"subscription_group_id": "g1", "subscription_state": "subscribed",
         "external_ids": ["u1", "u2"], "phones": ["1"]},
        {"subscription_group_id": "g1", "subscription_state": "unsubscribed",
         "external_ids": ["u3"], "emails": ["c@d.e"]},
    ]}  # fmt: skip


# The alias merge


class Asked:
    def __init__(self, answer: Looked | None) -> None:
        self.answer = answer
        self.asked: list[tuple[Request, float, bool]] = []

    async def ask(self, request: Request, keep: float = 0.0, writes: bool = False) -> Looked:
        self.asked.append((request, keep, writes))
        if self.answer is None:
            raise LookupFailed("look-up POST /users/identify: HTTP 503")
        return self.answer


@pytest.mark.parametrize(
    "answer", [Looked(201, {"message": "success"}), Looked(400, {"message": "bad"}), None]
)
async def test_the_merge_is_made_before_the_identify_which_is_sent_whatever_its_answer(
    answer: Looked | None,
) -> None:
    [stored] = made({"type": "identify", "userId": "u1", "anonymousId": "a1",
                     "traits": {"plan": "pro"}})  # fmt: skip
    asked = Asked(answer)
    sent = await resolve(stored, settings(), asked)
    assert sent.params == {} and sent.hints == {}
    assert sent.body == stored.body and sent.url == stored.url
    [(merge, keep, writes)] = asked.asked
    assert merge.url == "https://rest.iad-01.braze.com/users/identify" and keep > 0 and writes
    assert merge.headers["Authorization"] == f"Bearer {KEY}"
    assert merge.body == {"aliases_to_identify": [{"external_id": "u1", "user_alias": {
        "alias_name": "a1", "alias_label": "rudder_id"}}], "merge_behavior": "merge"}  # fmt: skip


async def test_requests_without_a_merge_are_sent_as_stored() -> None:
    [stored] = made(order(1))
    asked = Asked(None)
    assert await resolve(stored, settings(), asked) is stored
    assert asked.asked == []


# Answers


def _track(*arrays: tuple[str, int]) -> Request:
    objects = {name: [{"n": n} for n in range(count)] for name, count in arrays}
    return Request("POST", "https://b/users/track", body=objects)


def answer(status: int, value: Any) -> tuple[int, bytes]:
    return status, json.dumps(value).encode()


def test_refused_objects_fail_the_jobs_that_brought_them() -> None:
    sent = [_track(("attributes", 1), ("events", 1)), _track(("purchases", 3)),
            _track(("events", 1))]  # fmt: skip
    errors = [{"type": "'currency' is invalid", "input_array": "purchases", "index": 1},
              {"type": "bad name", "input_array": "events", "index": 1},
              {"type": "unplaceable", "input_array": "events", "index": 9}]  # fmt: skip
    judged = BRAZE.judge(*answer(201, {"message": "success", "errors": errors}), sent)
    assert judged == [
        Judgement(Verdict.DELIVERED),
        Judgement(Verdict.ABORT, "Braze refused purchases[1]: 'currency' is invalid "
                                 "(its 2 other object(s) were processed)"),
        Judgement(Verdict.ABORT, "Braze refused events[0]: bad name"),
    ]  # fmt: skip
    twice = [{"type": "first", "input_array": "purchases", "index": 1},
             {"type": "second", "input_array": "purchases", "index": 1}]  # fmt: skip
    judged = BRAZE.judge(*answer(201, {"message": "success", "errors": twice}), sent)
    assert judged == [
        Judgement(Verdict.DELIVERED),
        Judgement(Verdict.ABORT, "Braze refused purchases[1]: first "
                                 "(its 2 other object(s) were processed)"),
        Judgement(Verdict.DELIVERED),
    ]  # fmt: skip
    unplaceable = [{"type": "?", "input_array": "attributes", "index": 5}]
    assert BRAZE.judge(*answer(201, {"message": "success", "errors": unplaceable}), sent) == (
        Verdict.DELIVERED
    )


def test_errors_in_answers_other_than_users_track_refuse_nothing() -> None:
    subscription = Request("POST", "https://b/v2/subscription/status/set", body={
        "subscription_groups": [{"subscription_group_id": "g1", "phones": ["+1"]}]})  # fmt: skip
    errors = [{"type": "?", "input_array": "subscription_groups", "index": 0}]
    raw = answer(201, {"message": "success", "errors": errors})
    assert BRAZE.judge(*raw, [subscription, subscription]) == Verdict.DELIVERED


def test_a_batch_braze_refuses_whole_is_split_and_each_job_judged_alone() -> None:
    """Braze's 400 names no object: the router sends the jobs again one by one (a whole
    verdict at a `split_on` status), and a job alone fails with Braze's words."""
    assert 400 in BRAZE.split_on and 401 not in BRAZE.split_on
    refused = answer(400, {"message": "Invalid phone number"})
    assert BRAZE.judge(*refused, [_track(("events", 1))] * 2) == Verdict.ABORT
    assert BRAZE.judge(*refused, [_track(("events", 1))]) == [
        Judgement(Verdict.ABORT, "Invalid phone number")
    ]


@pytest.mark.parametrize(
    ("status", "value", "expected"),
    [
        (201, {"message": "success"}, Verdict.DELIVERED),
        (202, {"message": "success"}, Verdict.DELIVERED),
        (201, {"message": "failure"}, [Judgement(Verdict.ABORT, "failure")] * 2),
        (200, "not json", [Judgement(Verdict.ABORT, "Braze's answer does not say success")] * 2),
        (401, {"message": "Invalid API key"}, [Judgement(Verdict.ABORT, "Invalid API key")] * 2),
        (404, None, Verdict.ABORT),
        (413, {"message": "too large"}, Verdict.RETRY),
        (429, {"message": "API rate limit exceeded"}, Verdict.RETRY),
        (503, None, Verdict.RETRY),
    ],
)
def test_answers(status: int, value: Any, expected: Any) -> None:
    raw = b"<html>" if value == "not json" else json.dumps(value).encode()
    sent = [_track(("events", 1)), _track(("events", 1))]
    assert BRAZE.judge(status, raw, sent) == expected
