"""Named SQL queries kept in `.sql` files beside the module that runs them.

A file holds blocks introduced by `-- name: <query_name>`; everything up to the next such line
is the query, with `%(named)s` placeholders. A query may put another block of its file in where
it says `{block_name}` (a fragment shared by several queries); `compose` says which block goes
where a query has a variant part. A `{name}` that names no block is left as it is, for
`psycopg.sql` to fill with an identifier (or for `filled`, where the client quotes nothing:
ClickHouse's and Snowflake's).
"""

import re
from collections.abc import Mapping
from pathlib import Path
from typing import LiteralString

_NAME = re.compile(r"^--\s*name:\s*(\w+)\s*$", re.MULTILINE)
_SLOT = re.compile(r"\{(\w+)\}")


class Queries:
    def __init__(self, path: Path) -> None:
        text = path.read_text()
        parts = _NAME.split(text)
        # parts = [preamble, name1, body1, name2, body2, ...]
        self._queries = {
            name: body.strip() for name, body in zip(parts[1::2], parts[2::2], strict=True)
        }
        self._path = path
        self._filled: dict[tuple[str, tuple[tuple[str, str], ...]], LiteralString] = {}

    def __contains__(self, name: object) -> bool:
        return name in self._queries

    def __getitem__(self, name: str) -> LiteralString:
        return self.compose(name)

    def compose(self, name: str, **parts: str) -> LiteralString:
        """The query `name`, each `{slot}` in it filled with the block `parts` names for it (by
        default the block called `slot`), recursively."""
        return self._composed(name, tuple(sorted(parts.items())))

    def _composed(self, name: str, parts: tuple[tuple[str, str], ...]) -> LiteralString:
        found = self._filled.get((name, parts))
        if found is not None:
            return found
        try:
            query = self._queries[name]
        except KeyError:
            raise KeyError(f"no query named {name!r} in {self._path.name}") from None
        chosen = dict(parts)

        def fill(slot: re.Match[str]) -> str:
            block = chosen.get(slot[1], slot[1])
            return self._composed(block, parts) if block in self._queries else slot[0]

        # The text comes from a file shipped with Sluice, never from user input.
        filled: LiteralString = _SLOT.sub(fill, query)
        self._filled[name, parts] = filled
        return filled

    def filled(self, name: str, texts: Mapping[str, str]) -> str:
        """The query `name` with each `{slot}` replaced by `texts[slot]`, for warehouses whose
        client quotes nothing itself (the caller has quoted every text)."""
        return _SLOT.sub(lambda slot: texts[slot[1]], self[name])

    @classmethod
    def beside(cls, module_file: str, filename: str) -> "Queries":
        return cls(Path(module_file).with_name(filename))
