"""Warehouse table and column names: RudderStack's naming tables and 299 generated names
(tests/conformance/warehouse-naming.json), its reserved keywords per warehouse, the length cuts."""

import json
from pathlib import Path
from typing import Any

import pytest

from engine.errors import ConfigError
from engine.warehouses import names
from engine.warehouses.errors import EventRefused

CONFORMANCE = Path(__file__).parents[1] / "conformance"
NAMING = json.loads((CONFORMANCE / "warehouse-naming.json").read_text())
KEYWORDS = json.loads((CONFORMANCE / "warehouse-reserved-keywords.json").read_text())


@pytest.mark.parametrize("case", NAMING["test_cases"], ids=lambda case: case["id"])
def test_naming_table(case: dict[str, Any]) -> None:
    options = case["options"]
    blendo = options["integrationOptions"]["useBlendoCasing"]
    divide = options.get("underscoreDivideNumbers", False)
    if case["function"] == "transformTableName":
        got = names.table_name(case["input"], underscore_divide_numbers=divide, blendo=blendo)
    else:
        provider = names.provider(options["provider"])
        got = names.column_name(case["input"], provider, underscore_divide_numbers=divide,
                                blendo=blendo)  # fmt: skip
    assert got == case["expected"]


@pytest.mark.parametrize("case", NAMING["generated"], ids=lambda case: case["id"])
def test_generated_names(case: dict[str, Any]) -> None:
    got = names.column_name(
        case["input"], underscore_divide_numbers=case["underscoreDivideNumbers"]
    )
    assert got == case["expected"]


def test_reserved_keywords_are_rudderstacks() -> None:
    for warehouse, code in KEYWORDS["provider_codes"].items():
        assert names.keywords(code) == frozenset(KEYWORDS["keywords"][warehouse])


@pytest.mark.parametrize(
    ("name", "provider", "expected"),
    [
        ("select", "POSTGRES", "_select"),
        ("select", "SNOWFLAKE", "_SELECT"),
        ("order", "BQ", "_order"),
        ("select", "CLICKHOUSE", "select"),  # ClickHouse escapes nothing
        ("encrypt", "RS", "encrypt"),  # listed as "ENCRYPT     " by RudderStack: never matches
        ("tracks", "SNOWFLAKE", "TRACKS"),
        ("Mixed", "POSTGRES", "mixed"),
    ],
)
def test_safe_names(name: str, provider: names.Provider, expected: str) -> None:
    assert names.safe(name, provider) == expected


def test_escaping_can_be_skipped() -> None:
    assert names.safe("select", "POSTGRES", skip_keywords=True) == "select"


def test_length_cuts_count_utf16_units() -> None:
    assert names.safe("a" * 80, "POSTGRES") == "a" * 63
    assert names.safe("a" * 200, "RS") == "a" * 127
    # An emoji is two units: one that would be cut in half goes whole.
    assert names.cut("a" * 62 + "😀", 63) == "a" * 62
    assert names.cut("a" * 61 + "😀", 63) == "a" * 61 + "😀"
    assert names.blendo_column("x😀") == "x__"


def test_empty_names_are_refused() -> None:
    with pytest.raises(EventRefused, match=r"Column name cannot be empty\."):
        names.safe("", "POSTGRES")
    assert names.column_name("@#$%") == ""  # dropped, not refused
    assert names.blendo_column("") == "_"


def test_warehouse_types_in_either_case() -> None:
    assert names.provider("snowflake") == "SNOWFLAKE"
    with pytest.raises(ConfigError, match="'mysql' is not a warehouse; expected one of POSTGRES"):
        names.provider("mysql")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        # strcase v0.3.0's own cases (Go's ToSnake, which RudderStack's schema names go through)
        ("testCase", "test_case"), ("TestCase", "test_case"), ("Test Case", "test_case"),
        ("ManyManyWords", "many_many_words"), ("AnyKind of_string", "any_kind_of_string"),
        ("numbers2and55with000", "numbers_2_and_55_with_000"), ("JSONData", "json_data"),
        ("userID", "user_id"), ("AAAbbb", "aa_abbb"), ("A1B", "a_1_b"),
        ("AB1 AB2 AB3", "ab_1_ab_2_ab_3"),
        # then RudderStack's own rules
        ("My Website", "my_website"), ("sluice-demo", "sluice_demo"), ("1A2", "_1_a_2"),
        ("select", "_select"), ("", "stringempty"), ("ûñï", "stringempty"),
    ],
)  # fmt: skip
def test_schema_names(name: str, expected: str) -> None:
    assert names.namespace(name, "POSTGRES") == expected
    assert names.namespace(name, "SNOWFLAKE") == expected.upper()
