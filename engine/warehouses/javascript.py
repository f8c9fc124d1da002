"""JSON values as JavaScript sees them. RudderStack's warehouse transformer is JavaScript, and
its rules leak into the tables it makes (the contract: `shared/docs/warehouse.md` §13): an
object's integer-like keys come first, `1.0` is an integer, `JSON.stringify` writes numbers its
own way, lodash's `toString` decides what is blank, and lengths count UTF-16 code units.
"""

import json
import math
import re
from typing import Any

from msgspec import Raw

# What `String.prototype.trim` removes.
SPACE = "\t\n\v\f\r \u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"  # noqa: E501
_INDEX = re.compile(r"0|[1-9][0-9]*")
_LAST_INDEX = 2**32 - 2
_SURROGATE = re.compile("[\ud800-\udfff]")


def from_json(value: Any) -> Any:
    """A decoded JSON value as JavaScript holds it: numbers kept as text (`msgspec.Raw`) read as
    doubles, and each object's keys in JavaScript's order (array indices first, ascending)."""
    if isinstance(value, dict):
        items = [(key, from_json(item)) for key, item in value.items()]
        indices = sorted((int(key), key) for key, _ in items if _is_index(key))
        if not indices:
            return dict(items)
        ordered = {key: None for _, key in indices}
        ordered.update(items)
        return ordered
    if isinstance(value, list):
        return [from_json(item) for item in value]
    if isinstance(value, Raw):
        return float(bytes(value))
    return value


def _is_index(key: str) -> bool:
    return _INDEX.fullmatch(key) is not None and int(key) <= _LAST_INDEX


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def is_integer(value: Any) -> bool:
    """`Number.isInteger`: `1.0` is an integer too."""
    if isinstance(value, float):
        return math.isfinite(value) and value.is_integer()
    return is_number(value)


def truthy(value: Any) -> bool:
    """JavaScript's truthiness: empty arrays and objects are true, `0` and `""` false."""
    if isinstance(value, list | dict):
        return True
    if isinstance(value, float) and math.isnan(value):
        return False
    return bool(value)


def number_text(value: int | float) -> str:
    """`Number.prototype.toString`: the shortest digits, written plainly from 1e-6 to 1e21."""
    if isinstance(value, int):
        return str(value)
    if not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    mantissa, _, exponent = repr(abs(value)).partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = (whole + fraction).lstrip("0")
    point = len(whole) + int(exponent or 0) - (len(whole + fraction) - len(digits))
    digits = digits.rstrip("0")
    if len(digits) <= point <= 21:
        return sign + digits + "0" * (point - len(digits))
    if 0 < point <= 21:
        return f"{sign}{digits[:point]}.{digits[point:]}"
    if -6 < point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    power = point - 1
    shown = digits if len(digits) == 1 else f"{digits[0]}.{digits[1:]}"
    return f"{sign}{shown}e{'+' if power >= 0 else '-'}{abs(power)}"


def to_string(value: Any) -> str:
    """lodash's `toString`: null is `""` at the top but `"null"` inside an array."""
    return "" if value is None else _lodash_text(value)


def _lodash_text(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(_lodash_text(item) for item in value)
    if isinstance(value, float) and value == 0 and math.copysign(1.0, value) < 0:
        return "-0"  # lodash keeps the sign that String() drops
    return string(value)


def string(value: Any) -> str:
    """`String(value)`: arrays joined by commas (null elements empty), objects opaque."""
    if isinstance(value, str):
        return value
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if is_number(value):
        return number_text(value)
    if isinstance(value, list):
        return ",".join("" if item is None else string(item) for item in value)
    return "[object Object]"


def is_blank(value: Any) -> bool:
    """RudderStack's `isBlank`: lodash's text of the value is empty (`null`, `""`, `[]`,
    `[[]]`; but not `[null]`, `0`, `false` or `{}`)."""
    return to_string(value) == ""


def trim(text: str) -> str:
    return text.strip(SPACE)


def stringify(value: Any) -> str:
    """`JSON.stringify`: compact, keys in the object's order, non-ASCII kept, numbers as
    JavaScript writes them (non-finite ones as null)."""
    if isinstance(value, str):
        return _quoted(value)
    if isinstance(value, dict):
        return "{" + ",".join(f"{_quoted(k)}:{stringify(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(stringify(item) for item in value) + "]"
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return number_text(value)


def _quoted(text: str) -> str:
    quoted = json.dumps(text, ensure_ascii=False)
    # A lone surrogate (JSON may carry one) is escaped, as well-formed JSON.stringify does.
    return _SURROGATE.sub(lambda char: f"\\u{ord(char[0]):04x}", quoted)


def length(text: str) -> int:
    """`text.length`: UTF-16 code units."""
    return len(text) + sum(1 for char in text if ord(char) > 0xFFFF)


def get(target: Any, path: str) -> Any:
    """The `get-value` package's lookup of a dotted path (a key holding the dots wins, and
    dotted keys are tried part by part); None when it is not there."""
    if not isinstance(target, dict):
        return None
    if path in target:
        return target[path]
    parts = path.split(".")
    index = 0
    while index < len(parts):
        if not isinstance(target, dict):
            return None
        key = parts[index]
        while key not in target:
            index += 1
            if index == len(parts):
                return None
            key = f"{key}.{parts[index]}"
        target = target[key]
        index += 1
    return target
