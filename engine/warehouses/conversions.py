"""A value whose type is not its column's: a column's type never changes once it exists, so a
value of another type is converted where the column can hold it, or else discarded — the column
is left empty in that row and the value goes to `rudder_discards` (the contract:
`shared/docs/warehouse.md` §11, and `shared/conformance/warehouse-schema-change.json`).

String columns take anything as its text; float columns take ints, int columns take floats
(cut to an integer); JSON columns take numbers and booleans as their text, arrays as they are
and anything else as a JSON string. Every other pair is incompatible.
"""

import json
from typing import Any

from engine.errors import SluiceError
from engine.warehouses import javascript

_TEXTS = ("string", "text")


class Refused(SluiceError):
    """The column cannot hold the value; the message is the discard's reason."""


class Incompatible(Refused):
    def __init__(self, existing: str, inferred: str) -> None:
        super().__init__(f"incompatible schema conversion from {existing} to {inferred}")


class OutOfRange(Refused):
    def __init__(self, value: Any, kind: str) -> None:
        super().__init__(f"{value} is out of range for a column of type {kind}")


def convert(value: Any, existing: str, inferred: str) -> Any:
    """`value`, inferred as `inferred`, as a column of type `existing` holds it."""
    if existing == inferred:
        return value
    if existing in _TEXTS:
        return value if inferred in (*_TEXTS, "json") else text(value)
    if existing == "float" and inferred == "int" and javascript.is_number(value):
        return float(value)
    if existing == "int" and inferred == "float" and isinstance(value, float):
        return int(value)
    if existing == "json":
        if inferred in ("int", "float", "boolean"):
            return text(value)
        if isinstance(value, list):
            return value
        return json.dumps(text(value), ensure_ascii=False)
    raise Incompatible(existing, inferred)


def text(value: Any) -> str:
    """A value as a string column holds it: numbers and booleans as JavaScript writes them,
    arrays and objects as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, list | dict):
        return javascript.stringify(value)
    if value is None:
        return ""
    return javascript.string(value)
