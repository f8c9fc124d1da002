"""The COPY text the group commit sends (the PostgreSQL round trip is in the gateway tests)."""

from engine.store.ingest_log import Row, copy_text


def test_copy_lines_escape_user_text_and_double_json_backslashes() -> None:
    row = Row("s", 3, "2026-11-27T10:00:00.000Z", "id\twith\nodd\\chars\r", b'{\n\t"a":"\\"q\\""}')
    text = copy_text([row])
    assert text == (
        's\t3\t2026-11-27T10:00:00.000Z\tid\\twith\\nodd\\\\chars\\r\t{\\n\\t"a":"\\\\"q\\\\""}\n'
    )


def test_copy_line_writes_nulls_numbers_and_escaped_text() -> None:
    from uuid import UUID

    from engine.copytext import line

    assert line((UUID(int=1), 7, None, "a\tb\\")) == (
        "00000000-0000-0000-0000-000000000001\t7\t\\N\ta\\tb\\\\\n"
    )


def test_a_nul_that_postgresql_text_cannot_hold_is_replaced() -> None:
    from engine.copytext import line

    assert line(("bad\x00answer",)) == "bad\ufffdanswer\n"
