"""Warehouse names exactly as RudderStack makes them, so that Sluice and RudderStack load the same
events into the same tables and columns (the contract: `shared/docs/warehouse.md` §4).

A user's key becomes a column name in three steps: its ASCII letter and digit runs joined by `_`,
snake-cased (lodash's word rules, in RudderStack's variant that keeps letters and digits together
unless `underscoreDivideNumbers`), then made safe for the warehouse: its casing, a `_` before a
reserved keyword, a length cut. Names are counted in UTF-16 code units, as JavaScript does.
"""

import json
import re
from functools import cache, lru_cache
from pathlib import Path
from typing import Literal

from engine.errors import ConfigError
from engine.warehouses import javascript
from engine.warehouses.errors import EventRefused

Provider = Literal["POSTGRES", "RS", "SNOWFLAKE", "BQ", "CLICKHOUSE"]
PROVIDERS: tuple[Provider, ...] = ("POSTGRES", "RS", "SNOWFLAKE", "BQ", "CLICKHOUSE")
POSTGRES_LIMIT = 63  # PostgreSQL's identifier length
LIMIT = 127  # every warehouse's, as RudderStack cuts


def provider(text: str) -> Provider:
    """A warehouse by RudderStack's destination code, in either case (`POSTGRES`, `rs`, …)."""
    for code in PROVIDERS:
        if text.upper() == code:
            return code
    raise ConfigError(
        "type", f"{text!r} is not a warehouse; expected one of {', '.join(PROVIDERS)}"
    )


_RUNS = re.compile(r"[A-Za-z0-9]+")
_LEADING = re.compile(r"^_+")
# lodash's test for "does this string need the full word rules" (`hasUnicodeWord`).
_NEEDS_RULES = re.compile(r"[a-z][A-Z]|[A-Z]{2}[a-z]|[0-9][a-zA-Z]|[a-zA-Z][0-9]|[^a-zA-Z0-9 ]")
_U, _L, _D, _B = "[A-Z]", "[a-z]", "[0-9]", "[^A-Za-z0-9]"
_WORD_RULES = [
    f"{_U}?{_L}+(?={_B}|{_U}|$)",
    f"{_U}+(?={_B}|{_U}{_L}|$)",
    f"{_U}?{_L}+",
    f"{_U}+",
    rf"{_D}*(?:1ST|2ND|3RD|(?![123]){_D}TH)(?=\b|[a-z_])",
    rf"{_D}*(?:1st|2nd|3rd|(?![123]){_D}th)(?=\b|[A-Z_])",
    f"{_D}+",
]
# Without `underscoreDivideNumbers` (newer destinations) letters and digits stay one word.
_TOGETHER = [f"{_U}?{_L}+{_D}+", f"{_U}+{_D}+", f"{_D}+{_U}?{_L}+", f"{_D}+{_U}+"]
_WORDS = {
    True: re.compile("|".join(_WORD_RULES)),
    False: re.compile("|".join(_TOGETHER + _WORD_RULES)),
}
_BLENDO = re.compile(r"[^A-Za-z0-9\\$]")


def snake_case(text: str, underscore_divide_numbers: bool) -> str:
    """lodash's `snakeCase` for a string of ASCII letters, digits and `_` (apostrophes, and
    everything else, are gone before this)."""
    if _NEEDS_RULES.search(text):
        words = _WORDS[underscore_divide_numbers].findall(text)
    else:
        words = _RUNS.findall(text)
    return "_".join(word.lower() for word in words)


@lru_cache(maxsize=1 << 16)  # events repeat their keys: a name is worked out once
def column_name(
    name: str,
    provider: Provider | None = None,
    *,
    underscore_divide_numbers: bool = False,
    blendo: bool = False,
) -> str:
    """A user's key (flattened) as a column name before the warehouse's own rules (`safe`); ""
    when nothing is left of it (the key is then dropped)."""
    if blendo:
        return blendo_column(name, provider)
    joined = "_".join(_RUNS.findall(name))
    leading = _LEADING.match(name)
    if leading:
        result = leading[0] + snake_case(joined, underscore_divide_numbers)
    else:
        result = snake_case(joined, underscore_divide_numbers)
    if result[:1].isdigit():
        result = "_" + result
    return cut(result, POSTGRES_LIMIT) if provider == "POSTGRES" else result


def blendo_column(name: str, provider: Provider | None = None) -> str:
    """Blendo's casing (the `useBlendoCasing` integration option): every character but ASCII
    letters, digits, `\\` and `$` becomes `_`."""
    result = _BLENDO.sub(lambda char: "_" * _units(char[0]), name)
    if not (result[:1].isascii() and (result[:1].isalpha() or result[:1] == "_")):
        result = "_" + result
    if provider == "POSTGRES":
        result = cut(result, POSTGRES_LIMIT)
    return result.lower()


def table_name(name: str, *, underscore_divide_numbers: bool = False, blendo: bool = False) -> str:
    """An event name as the value of the `event` column (and the start of its table's name)."""
    if blendo:
        return javascript.trim(name).lower()
    return column_name(name, underscore_divide_numbers=underscore_divide_numbers)


@lru_cache(maxsize=1 << 16)
def safe(
    name: str, provider: Provider, *, skip_keywords: bool = False, what: str = "Column"
) -> str:
    """A table or column name as the warehouse takes it: its casing (upper on Snowflake), a `_`
    before a reserved keyword, at most 127 units (63 on PostgreSQL)."""
    if provider == "SNOWFLAKE":
        name = name.upper()
    elif provider == "POSTGRES":
        name = cut(name, POSTGRES_LIMIT).lower()
    else:
        name = name.lower()
    if not skip_keywords and name.upper() in keywords(provider):
        name = "_" + name
    name = cut(name, LIMIT)
    if not name:
        raise EventRefused(f"{what} name cannot be empty.", "TransformationError")
    return name


@cache
def keywords(provider: Provider) -> frozenset[str]:
    """The warehouse's reserved keywords, as RudderStack lists them (a few with trailing spaces,
    which therefore never match)."""
    lists = json.loads(Path(__file__).with_name("reserved_keywords.json").read_text())
    return frozenset(lists[provider])


def cut(name: str, units: int) -> str:
    """At most `units` UTF-16 code units of `name` (JavaScript's `substr(0, units)`; a character
    that would be cut in half goes whole)."""
    if len(name) <= units // 2 or name.isascii():
        return name[:units]
    total = 0
    for index, char in enumerate(name):
        total += _units(char)
        if total > units:
            return name[:index]
    return name


def _units(char: str) -> int:
    return 2 if ord(char) > 0xFFFF else 1


def namespace(name: str, provider: Provider) -> str:
    """A schema's name, from a source's name or the `namespace` setting, as RudderStack's
    loader makes it (`ToSafeNamespace`): ASCII letter and digit runs joined by `_`, snake-cased
    the way Go's `strcase.ToSnake` does, never empty, never a keyword, upper case on
    Snowflake."""
    result = _go_snake("_".join(_RUNS.findall(name)))
    if result[:1].isdigit():
        result = "_" + result
    result = result or "stringempty"
    if result.upper() in keywords(provider):
        result = "_" + result
    result = result[:LIMIT]
    return result.upper() if provider == "SNOWFLAKE" else result


def _go_snake(text: str) -> str:
    """`strcase.ToSnake` (v0.3.0) for ASCII letters, digits and `_`: a `_` where the kind of
    character changes (lower to upper, letter to digit and back), and before the last capital
    of an acronym followed by lower case (`JSONData` → `json_data`)."""
    out = []
    for index, char in enumerate(text):
        is_upper, is_lower, is_digit = char.isupper(), char.islower(), char.isdigit()
        following = text[index + 1] if index + 1 < len(text) else ""
        next_upper, next_lower = following.isupper(), following.islower()
        next_digit = following.isdigit()
        changes = (
            (is_upper and (next_lower or next_digit))
            or (is_lower and (next_upper or next_digit))
            or (is_digit and (next_upper or next_lower))
        )
        if changes:
            if is_upper and next_lower and index > 0 and text[index - 1].isupper():
                out.append("_")
            out.append(char.lower())
            if is_lower or is_digit or next_digit:
                out.append("_")
        else:
            out.append(char.lower())
    return "".join(out)
