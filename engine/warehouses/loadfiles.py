"""A table's rows as the delimited text a warehouse's bulk load reads (ClickHouse's
TabSeparated; the gzipped CSV files Redshift and Snowflake copy in): each value written by its
column type's writer, a null as the format says, a piece of about `size` characters at a time."""

import gzip
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

Writer = Callable[[Any], str]


def pieces(rows: Iterable[Sequence[Any]], kinds: Sequence[str], writers: Mapping[str, Writer],
           text: Writer, *, separator: str, null: str | Sequence[str], size: int, end: str = ""
           ) -> Iterator[str]:  # fmt: skip
    """`rows` (values in the order of `kinds`) as lines; `text` writes the types `writers`
    has no writer for; `null` is a null, or each column's; `end` is added to every line
    (values the same for every row)."""
    written = [writers.get(kind, text) for kind in kinds]
    nulls = [null] * len(kinds) if isinstance(null, str) else null
    pending: list[str] = []
    length = 0
    for row in rows:
        values = (empty if value is None else write(value)
                  for write, empty, value in zip(written, nulls, row, strict=True))  # fmt: skip
        line = separator.join(values) + end + "\n"
        pending.append(line)
        length += len(line)
        if length >= size:
            yield "".join(pending)
            pending, length = [], 0
    if pending:
        yield "".join(pending)


def _quoted(value: Any) -> str:
    return '"' + str(value).replace('"', '""') + '"'


_CSV: Mapping[str, Writer] = {
    "int": str,
    "float": repr,
    "boolean": lambda value: "true" if value else "false",
    "datetime": str,
}


def csv_files(rows: Iterable[Sequence[Any]], kinds: Sequence[str], size: int) -> Iterator[bytes]:
    """Rows as gzipped CSV files of about `size` bytes of CSV each: a null an empty field,
    text always quoted (so an empty text is `""`), booleans `true`/`false`, times ISO 8601."""
    for piece in pieces(rows, kinds, _CSV, _quoted, separator=",", null="", size=size):
        yield gzip.compress(piece.encode(), compresslevel=1)
