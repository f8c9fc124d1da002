"""Commit order: where a row stands among those of the ingest log, or of the jobs.

Rows are read in the order of the transactions that wrote them (`tx`, PostgreSQL's 64-bit
transaction id, then the row's `id`), and only rows of transactions older than every one still
running: so no row can later appear before a position once read past. Readers save how far
they have read as positions.
"""

from typing import Any, NamedTuple


class Position(NamedTuple):
    tx: int  # the writing transaction's id (xid8), read from SQL as text
    id: int

    @classmethod
    def of(cls, tx: str | int, id: int) -> "Position":
        """A position from a query's `tx::text` and the row id."""
        return cls(int(tx), id)

    def params(self, prefix: str = "") -> dict[str, Any]:
        """As a query takes it: `%(tx)s::text::xid8`, `%(id)s` (the names `prefix`ed)."""
        return {f"{prefix}tx": str(self.tx), f"{prefix}id": self.id}


START = Position(0, 0)  # before every row
END = Position(2**64 - 1, 0)  # after every row
