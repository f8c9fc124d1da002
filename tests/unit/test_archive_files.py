"""The archive's pure parts: grouping rows into objects, lines, and the hours a replay reads."""

from datetime import UTC, datetime, timedelta, timezone
from uuid import uuid4

from engine.control.archive_replay import _hours
from engine.pipeline.processing.archive import _groups, _line
from engine.store.ingest_log import Logged

AT = datetime(2026, 11, 28, 9, 59, 59, tzinfo=UTC)


def row(n: int, source: object, when: datetime) -> Logged:
    return Logged(n, str(n), n % 64, source, when, f"m{n}", f'{{"n":{n}}}')  # type: ignore[arg-type]


def test_rows_group_by_source_and_utc_hour_in_commit_order() -> None:
    one, two = uuid4(), uuid4()
    paris = timezone(timedelta(hours=1))
    rows = [
        row(1, one, AT), row(2, two, AT), row(3, one, AT + timedelta(seconds=1)),
        row(4, one, AT.astimezone(paris)), row(5, two, AT + timedelta(hours=1)),
    ]  # fmt: skip
    groups = [[r.id for r in group] for group in _groups(rows)]
    # (4 is the same instant as 1, written in another zone: the same UTC hour)
    assert groups == [[1, 4], [2], [3], [5]]


def test_a_payload_is_one_line_whatever_whitespace_it_was_stored_with() -> None:
    assert _line('{"a": 1,\n "b": "x"}') == b'{"a": 1,  "b": "x"}\n'
    assert _line('{"a":1}') == b'{"a":1}\n'


def test_a_replay_reads_every_hour_the_range_touches() -> None:
    since = datetime(2026, 11, 28, 9, 30, tzinfo=UTC)
    assert _hours(since, since + timedelta(hours=1)) == [
        datetime(2026, 11, 28, 9, tzinfo=UTC), datetime(2026, 11, 28, 10, tzinfo=UTC)
    ]  # fmt: skip
    assert _hours(since, since + timedelta(minutes=10)) == [datetime(2026, 11, 28, 9, tzinfo=UTC)]
