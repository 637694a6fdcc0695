"""The parse path's shortcuts give what the general code gives: RFC 822 dates read from their
fields equal the standard library's reading (every struct_time field, and the same refusals)."""

from __future__ import annotations

import random
import time
from datetime import UTC
from email.utils import parsedate_to_datetime

import pytest

from dmzwatch.poller.xmlnames import RFC822, date_value


def stdlib_date(value: str) -> time.struct_time:
    when = parsedate_to_datetime(value).astimezone(UTC)
    return time.struct_time((*when.timetuple()[:8], 0))


def outcome(read: object, value: str) -> object:
    try:
        return tuple(read(value))  # type: ignore[operator]
    except (ValueError, OverflowError) as exc:
        return type(exc).__name__


DAYS = ["Mon", "Tue", "Sun"]
MONTHS = ["Jan", "Feb", "Mar", "Apr", "Jun", "Sep", "Dec"]


def test_rfc822_fields_read_as_the_standard_library_reads_them() -> None:
    rng = random.Random(8)
    checked = 0
    for _ in range(20000):
        value = (
            f"{rng.choice(DAYS)}, {rng.randint(0, 39):02d} {rng.choice(MONTHS)} "
            f"{rng.choice([1000, 1970, 1999, 2000, 2024, 2026, 2100, 2999])} "
            f"{rng.randint(0, 29):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d} "
            f"{rng.choice(['GMT', '+0000', '-0000', '+0900', '-0330', '+1459', '-1959', '+0100'])}"
        )
        assert RFC822.match(value), value
        if value.endswith("-0000"):
            continue  # left to the standard library itself (a zone it reads as local time)
        assert outcome(date_value, value) == outcome(stdlib_date, value), value
        checked += 1
    assert checked > 15000


@pytest.mark.parametrize(
    "value",
    [
        "Sun, 29 Feb 2026 10:00:00 GMT",
        "Mon, 31 Apr 2026 10:00:00 +0100",
        "Mon, 01 Mar 2026 24:00:00 GMT",
    ],
)
def test_dates_that_do_not_exist_are_refused(value: str) -> None:
    assert outcome(date_value, value) == outcome(stdlib_date, value) == "ValueError"


def test_content_type_and_html_guess_equal_feedparsers() -> None:
    from feedparser.mixin import _FeedParserMixin

    from dmzwatch.poller.xmlnames import looks_like_html, map_content_type

    types = ["text", "TEXT", "plain", "html", "HTML", "xhtml", "XHTML", "text/html", "Text/Plain"]
    types += ["application/xhtml+xml", "image/png", "", "base64", "text/xml"]
    for value in types:
        assert map_content_type(value) == _FeedParserMixin.map_content_type(value), value
    rng = random.Random(2)
    pieces = ["a", " ", "&", "&amp;", "&nosuch;", "&#233;", "<", ">", "</b>", "<b>", "</x>", ";"]
    for _ in range(5000):
        value = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 6)))
        assert looks_like_html(value) == bool(_FeedParserMixin.looks_like_html(value)), value


def test_struct_time_equals_timetuple_on_every_day_of_leap_and_common_years() -> None:
    from datetime import datetime, timedelta

    from dmzwatch.poller.xmlnames import _struct_time

    for year in (1, 1900, 2000, 2024, 2026, 2100, 9999):
        day = datetime(year, 1, 1, 13, 5, 59)
        while day.year == year:
            assert _struct_time(day) == time.struct_time((*day.timetuple()[:8], 0)), day
            if day.month == 12 and day.day == 31:
                break
            day += timedelta(days=1)
