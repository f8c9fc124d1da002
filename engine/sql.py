"""Named SQL queries kept in `.sql` files beside the module that runs them.

A file holds blocks introduced by `-- name: <query_name>`; everything up to the next such line
is the query, with `%(named)s` placeholders.
"""

import re
from pathlib import Path
from typing import LiteralString, cast

_NAME = re.compile(r"^--\s*name:\s*(\w+)\s*$", re.MULTILINE)


class Queries:
    def __init__(self, path: Path) -> None:
        text = path.read_text()
        parts = _NAME.split(text)
        # parts = [preamble, name1, body1, name2, body2, ...]
        self._queries = {
            name: body.strip() for name, body in zip(parts[1::2], parts[2::2], strict=True)
        }
        self._path = path

    def __getitem__(self, name: str) -> LiteralString:
        try:
            # The text comes from a file shipped with Sluice, never from user input.
            return cast(LiteralString, self._queries[name])
        except KeyError:
            raise KeyError(f"no query named {name!r} in {self._path.name}") from None

    @classmethod
    def beside(cls, module_file: str, filename: str) -> "Queries":
        return cls(Path(module_file).with_name(filename))
