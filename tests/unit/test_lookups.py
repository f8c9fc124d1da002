"""Look-up answers given in advance (`sluice preview --lookups`, the conformance cases)."""

import pytest

from engine.destinations.base import Looked, LookupFailed, Request
from engine.pipeline.delivery.lookups import Given

ANSWERS = [
    {"method": "GET", "endpoint": "https://api.example.com/props?key=k1",
     "response": {"status": 200, "body": ["a"]}},
    {"method": "GET", "endpoint": "https://api.example.com/props", "params": {"key": "k2"},
     "response": {"status": 200, "body": ["b"]}},
    {"method": "POST", "endpoint": "https://api.example.com/search",
     "request_body": {"email": "x@y.io"}, "response": {"status": 200, "body": {"total": 1}}},
    {"method": "POST", "endpoint": "https://api.example.com/search",
     "response": {"status": 200}},
]  # fmt: skip


async def test_an_answer_is_found_by_method_address_parameters_and_body() -> None:
    given = Given(ANSWERS)
    url = "https://api.example.com/props"
    assert await given.ask(Request("GET", url, params={"key": "k1"})) == Looked(200, ["a"])
    assert await given.ask(Request("GET", f"{url}?key=k2")) == Looked(200, ["b"])
    search = "https://api.example.com/search"
    assert await given.ask(Request("POST", search, body={"email": "x@y.io"})) == Looked(
        200, {"total": 1}
    )
    assert await given.ask(Request("POST", search, body={"email": "z@y.io"})) == Looked(200, None)


async def test_a_lookup_without_an_answer_fails_naming_it_without_its_query() -> None:
    with pytest.raises(LookupFailed, match=r"^no answer given for the look-up GET "
                       r"https://api.example.com/props$"):  # fmt: skip
        await Given(ANSWERS).ask(Request("GET", "https://api.example.com/props?key=secret"))


def test_answers_not_in_the_expected_form_are_refused_with_the_reason() -> None:
    with pytest.raises(LookupFailed, match=r"expected form: .*response"):
        Given([{"method": "GET", "endpoint": "https://x"}])
