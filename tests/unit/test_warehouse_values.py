"""Values in warehouse rows: which strings are times (against what JavaScript's `Date` said for
each), JavaScript's numbers and blanks, and what a column of another type does with a value
(tests/conformance/warehouse-schema-change.json, rudder-server's own cases)."""

import json
from pathlib import Path
from typing import Any

import pytest

from engine.warehouses import conversions, javascript, timestamps

SCHEMA_CHANGES = json.loads(
    (Path(__file__).parents[1] / "conformance/warehouse-schema-change.json").read_text()
)["cases"]

# Each string's `new Date(s).toISOString()` under RudderStack's pattern and year range, as
# Node 18 (V8) printed it.
TIMES = [
    ("2020-01-24T11:59:02.403+05:30", "2020-01-24T06:29:02.403Z"),
    ("2020-01-24T06:29:02.364Z", "2020-01-24T06:29:02.364Z"),
    ("2023-02-30", "2023-03-02T00:00:00.000Z"),
    ("2021-04-31T10:00:00Z", "2021-05-01T10:00:00.000Z"),
    ("2020-01-01T10:00:00.123456Z", "2020-01-01T10:00:00.123Z"),
    ("2020-01-01T24:00:00Z", None),
    ("2020-01-01T24:00", None),
    ("+2020-01-01T00:00:00Z", None),
    ("+2020-01-01", "2020-01-01T00:00:00.000Z"),
    ("-0001-12-31", "2031-01-12T00:00:00.000Z"),
    ("0001-01-01T00:00:00Z", "0001-01-01T00:00:00.000Z"),
    ("0000-12-31T23:59:59Z", None),
    ("9999-12-31T23:59:59.999Z", "9999-12-31T23:59:59.999Z"),
    ("9999-12-31T23:59:59.999-01:00", None),
    ("2020-01-01", "2020-01-01T00:00:00.000Z"),
    ("2020-01-01T10:00", "2020-01-01T10:00:00.000Z"),
    ("2020-01-01T10:00+0530", "2020-01-01T04:30:00.000Z"),
    ("2020-01-01T10:00+05", None),
    ("2020-01-01T10:00:1", None),
    ("2020-01-01 10:00", "2020-01-01T10:00:00.000Z"),
    ("2020-01-01 10:00+05", "2020-01-01T05:00:00.000Z"),
    ("2020-01-01 10:00+05:", "2020-01-01T05:00:00.000Z"),
    ("2020-01-01 10:00:1:05", "2020-01-01T10:00:01.005Z"),
    ("2020-01-01 10:00:1:00.5Z", "2020-01-01T10:00:01.000Z"),
    ("2020-01-01 10:00:59.9999+05:30", "2020-01-01T04:30:59.999Z"),
    ("2020-01-01\t10:00", "2020-01-01T10:00:00.000Z"),
    ("2020-01-01\u202810:00", None),
    ("2020-01-01\u00a010:00Z", "2020-01-01T10:00:00.000Z"),
    ("0049-02-29", "0049-03-01T00:00:00.000Z"),
    ("0012-01-01", "0012-01-01T00:00:00.000Z"),
    ("0050-01-01", "0050-01-01T00:00:00.000Z"),
    ("2020-13-01", None),
    ("2020-00-10", None),
    ("2020-01-32", None),
    ("2020-01-01T10:60", None),
    ("2020-01-01Tnope", None),
    ("20200101", None),
    ("2020-1-1", None),
    ("2020-01-01T10:00:00ZZ", None),
    ("not a date", None),
    ("", None),
]


@pytest.mark.parametrize(("text", "expected"), TIMES)
def test_times_as_javascript_reads_them(text: str, expected: str | None) -> None:
    assert timestamps.parse(text) == expected


@pytest.mark.parametrize(
    ("number", "text"),
    [(1e21, "1e+21"), (1e-7, "1e-7"), (0.000001, "0.000001"), (1.5, "1.5"), (-0.0, "0"),
     (100.0, "100"), (1e16, "10000000000000000"), (-2.5e-7, "-2.5e-7"), (5e-324, "5e-324"),
     (1.7976931348623157e308, "1.7976931348623157e+308"), (0.1 + 0.2, "0.30000000000000004"),
     (float("inf"), "Infinity"), (12, "12")],
)  # fmt: skip
def test_numbers_as_javascript_writes_them(number: float, text: str) -> None:
    assert javascript.number_text(number) == text


def test_stringify_is_json_stringify() -> None:
    value = {"b": [1.0, None, True, float("nan")], "é": 'a"b\n\x01', "s": "\ud800"}
    assert (
        javascript.stringify(value)
        == '{"b":[1,null,true,null],"é":"a\\"b\\n\\u0001","s":"\\ud800"}'
    )


@pytest.mark.parametrize(
    ("value", "lodash", "string"),
    [(None, "", "null"), ([None], "null", ""), ([[]], "", ""), ([1, [2, None]], "1,2,null", "1,2,"),
     ({}, "[object Object]", "[object Object]"), (False, "false", "false"), (1.0, "1", "1"),
     (-0.0, "-0", "0")],
)  # fmt: skip
def test_to_string(value: Any, lodash: str, string: str) -> None:
    assert javascript.to_string(value) == lodash
    assert javascript.string(value) == string


def test_get_value_lookups() -> None:
    message = {"context": {"ip": "1.1.1.1", "a.b": {"c": 1}}, "x.y": 2, "s": "text"}
    assert javascript.get(message, "context.ip") == "1.1.1.1"
    assert javascript.get(message, "context.a.b.c") == 1
    assert javascript.get(message, "x.y") == 2
    assert javascript.get(message, "s.length") is None
    assert javascript.get(message, "context.missing") is None


@pytest.mark.parametrize("case", SCHEMA_CHANGES, ids=lambda case: case["id"])
def test_schema_change(case: dict[str, Any]) -> None:
    if "expected_error" in case:
        with pytest.raises(conversions.Incompatible) as refused:
            conversions.convert(case["value"], case["existing_type"], case["inferred_type"])
        assert str(refused.value) == case["expected_error"]
        return
    got = conversions.convert(case["value"], case["existing_type"], case["inferred_type"])
    assert got == case["expected_value"]
    assert type(got) is type(case["expected_value"])
