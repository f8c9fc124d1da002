"""Which strings a warehouse column takes as a time, and the instant each stands for — the way
RudderStack decides it: an ISO-8601 shape (its pattern), then what JavaScript's `Date` makes of
the string, within years 1 to 9999 (the contract: `shared/docs/warehouse.md` §6).

`Date` follows V8: a date with a `T` and a time is read strictly (two-digit seconds, an offset as
`±hh:mm` or `±hhmm`); a date followed by a space is read by V8's looser parser, which also takes
an offset of hours alone. A day past the month's end rolls over into the next month, fractions
are cut to milliseconds, and a time with no offset is local time — UTC, as RudderStack runs.
"""

import re
from datetime import UTC, datetime, timedelta

# RudderStack's pattern (JavaScript's `\d` and `\s`, spelt out: Python's reach further).
_SPACE = "\t\n\v\f\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
_SHAPE = re.compile(
    r"([+-]?[0-9]{4})-(0[1-9]|1[0-2])-([12][0-9]|0[1-9]|3[01])"
    rf"(?:([T{_SPACE}])"
    r"(?:(?:([01][0-9]|2[0-3]):([0-5][0-9]))(:[0-9]+)?)?"
    r"(?::([0-5][0-9])(\.[0-9]+)?)?"
    r"([zZ]|[+-](?:[01][0-9]|2[0-3]):?(?:[0-5][0-9])?)?)?"
)
# After the date: what V8's ISO reader takes after a `T`, and what its legacy reader takes
# after a space (each for what the pattern above lets through).
_ISO_TIME = re.compile(
    r"([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:\.([0-9]+))?)?"
    r"(?:([zZ])|([+-])(?:([0-9]{2}):([0-9]{2})|([0-9]{2})([0-9]{2})))?"
)
_LEGACY_TIME = re.compile(
    r"(?:([0-9]{2}):([0-9]{2})(?::([0-9]+))?(?::([0-9]{2})(?:\.([0-9]+))?)?)?"
    r"(?:([zZ])|([+-])([0-9]{2}):?([0-9]{2})?)?"
)
_LINE_BREAKS = "\u2028\u2029"  # white space to the pattern, not to V8's date reader
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_FIRST = -62135596800000  # 0001-01-01T00:00:00.000Z, in ms since the epoch
_LAST = 253402300799999  # 9999-12-31T23:59:59.999Z


def parse(text: str) -> str | None:
    """The instant `text` stands for as JavaScript writes it (`toISOString`: UTC, milliseconds,
    `Z`), or None when it is not a timestamp."""
    if len(text) < 10 or not (text[4] == "-" or text[5:6] == "-") or not _SHAPE.fullmatch(text):
        return None
    signed = text[0] in "+-"  # V8's ISO reader takes signed years of 6 digits only
    body = text[1:] if signed else text
    comps = int(body[0:4]), int(body[5:7]), int(body[8:10])
    separator, rest = body[10:11], body[11:]
    if (signed and separator == "T") or (separator and separator in _LINE_BREAKS):
        return None
    iso = not signed and separator in ("", "T")
    date = comps if iso else _legacy_date(*comps)
    if date is None:
        return None
    if separator == "T":
        clock = _iso_clock(rest)
    else:
        clock = _legacy_clock(rest) if separator else (0, 0, 0, 0, 0)
    if clock is None:
        return None
    hour, minute, second, millisecond, offset = clock
    instant = (_days(*date) * 86_400_000
               + ((hour * 60 + minute - offset) * 60 + second) * 1000 + millisecond)  # fmt: skip
    if not _FIRST <= instant <= _LAST:
        return None
    moment = _EPOCH + timedelta(milliseconds=instant)
    # isoformat() would not pad years before 1000 the way toISOString does.
    date_part = f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}"
    return f"{date_part}T{moment:%H:%M:%S}.{moment.microsecond // 1000:03d}Z"


def _legacy_date(first: int, second: int, third: int) -> tuple[int, int, int] | None:
    """Year, month and day as V8's legacy reader takes three numbers: year first only when the
    first cannot be a day, else month, day, year; two-digit years in 1950 to 2049."""
    if first > 31:
        year, month, day = first, second, third
    else:
        month, day, year = first, second, third
    if year <= 49:
        year += 2000
    elif year <= 99:
        year += 1900
    if not (1 <= month <= 12 and 1 <= day <= 31):
        return None
    return year, month, day


def _iso_clock(rest: str) -> tuple[int, int, int, int, int] | None:
    """Hour, minute, second, millisecond and offset (minutes east) after a `T`."""
    found = _ISO_TIME.fullmatch(rest)
    if found is None:
        return None
    hour, minute = int(found[1]), int(found[2])
    second = int(found[3] or 0)
    if hour > 24 or minute > 59 or second > 59 or (hour == 24 and (minute or second)):
        return None
    offset = 0
    if found[6]:
        tz_hour, tz_minute = (found[7], found[8]) if found[7] else (found[9], found[10])
        if int(tz_hour) > 23 or int(tz_minute) > 59:
            return None
        offset = (1 if found[6] == "+" else -1) * (int(tz_hour) * 60 + int(tz_minute))
    return hour, minute, second, _milliseconds(found[4]), offset


def _legacy_clock(rest: str) -> tuple[int, int, int, int, int] | None:
    """The same after a space, as V8's legacy reader takes it: time parts separated by `:`
    (up to four: the fourth is milliseconds, and a fraction after it is ignored), and an offset
    only after a time or a `Z`."""
    found = _LEGACY_TIME.fullmatch(rest)
    if found is None:
        return None
    parts = [int(p) for p in found.group(1, 2, 3, 4) if p is not None]
    hour, minute, second, millisecond = [*parts, 0, 0, 0, 0][:4]
    if found[5] is not None and len(parts) < 4:  # a fourth part is the milliseconds already
        millisecond = _milliseconds(found[5])
    if hour > 24 or minute > 59 or second > 59 or millisecond > 999:
        return None
    offset = 0
    if found[7]:
        if not parts:  # a sign with no time before it: V8 gives up
            return None
        offset = (1 if found[7] == "+" else -1) * (int(found[8]) * 60 + int(found[9] or 0))
    return hour, minute, second, millisecond, offset


def _milliseconds(fraction: str | None) -> int:
    """A fraction of a second as V8 reads it: its first three digits."""
    return int((fraction or "0")[:3].ljust(3, "0"))


def _days(year: int, month: int, day: int) -> int:
    """Days from 1970-01-01 to a date, a day past the month's end rolling over (MakeDay)."""
    years_before = year - (1 if month <= 2 else 0)
    era = years_before // 400
    of_era = years_before - era * 400
    of_year = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    of_era_days = of_era * 365 + of_era // 4 - of_era // 100 + of_year
    return era * 146097 + of_era_days - 719468
