"""A table's columns across events and loads: a column's type is decided once and never
changes (the contract: `shared/docs/warehouse.md` §11). Within the staged rows of a load the
first type seen for a column wins, except `text`, which replaces anything; a column the
warehouse already has keeps its type, except that `text` replaces `string` (Redshift, whose
`string` is a shorter varchar). Values of another type are converted or discarded when the
load file is written (`conversions.py`).
"""

from dataclasses import dataclass, field

Columns = dict[str, str]  # column name → type (`int`, `float`, `string`, `datetime`, …)


def stage(columns: Columns, seen: Columns) -> None:
    """Add one row's columns to what a load has seen so far."""
    for name, kind in seen.items():
        known = columns.get(name)
        if known is None or (kind == "text" and known != "text"):
            columns[name] = kind


@dataclass
class Change:
    """What a load does to a table before loading it: the columns it will have, and which of
    them must be added (all of them for a new table) or widened."""

    columns: Columns
    new_table: bool
    added: Columns = field(default_factory=dict)
    widened: list[str] = field(default_factory=list)  # string → text


def change(existing: Columns | None, staged: Columns) -> Change:
    """The table as it must be for the staged rows, given what the warehouse has."""
    if existing is None:
        return Change(dict(staged), True, dict(staged))
    columns = dict(existing)
    result = Change(columns, False)
    for name, kind in staged.items():
        known = existing.get(name)
        if known is None:
            columns[name] = result.added[name] = kind
        elif kind == "text" and known == "string":
            columns[name] = "text"
            result.widened.append(name)
    return result
