"""Front matter value types: dates and times (errors name formats and reasons), URLs, e-mail
addresses, text for mail headers, and the German status words editors type."""

from __future__ import annotations

import calendar
import difflib
import re
import unicodedata
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from pydantic import AfterValidator, BeforeValidator, ValidationInfo

from comms.core.addresses import check_address

_DATE_RE = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")
_DE_DATE_RE = re.compile(r"^(\d{1,2})\.(\d{1,2})\.(\d{4})$")
#: HH:MM, optionally :SS with a fraction (`.123` or `,123`, as ISO 8601 tools write it).
_TIME_RE = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?$")
_OFFSET_RE = re.compile(r"^(.*?)(Z|[+-]\d{2}:?\d{2})$")


def _tz(info: ValidationInfo) -> ZoneInfo:
    context = info.context or {}
    tz = context.get("tz")
    return tz if isinstance(tz, ZoneInfo) else ZoneInfo("Europe/Berlin")


_MONTHS = (
    "January February March April May June July August September October November December"
).split()
#: What the editor may write, named in every date error.
DATE_FORMATS = "YYYY-MM-DD or DD.MM.YYYY"
DATETIME_FORMATS = "YYYY-MM-DD HH:MM or DD.MM.YYYY HH:MM"


def _impossible(year: int, month: int, day: int) -> str:
    """Why a date that has the right shape does not exist ("April has 30 days")."""
    if not 1 <= month <= 12:
        return f"there is no month {month}"
    if day < 1:
        return f"there is no day {day}"
    last = calendar.monthrange(year, month)[1] if year >= 1 else 31
    name = _MONTHS[month - 1]
    if month == 2:
        return f"February {year} has {last} days"
    return f"{name} has {last} days"


def _parse_date(text: str) -> date | str | None:
    """The date, or why a date-shaped text is impossible, or None for any other text."""
    for pattern, order in ((_DATE_RE, (0, 1, 2)), (_DE_DATE_RE, (2, 1, 0))):
        match = pattern.match(text)
        if match:
            parts = [int(g) for g in match.groups()]
            year, month, day = parts[order[0]], parts[order[1]], parts[order[2]]
            try:
                return date(year, month, day)
            except ValueError:
                return f"{text}: {_impossible(year, month, day)}"
    return None


def _bad_time(hour: int, minute: int, second: int) -> str:
    if hour > 23:
        return f"there is no hour {hour}"
    if minute > 59:
        return f"there is no minute {minute}"
    return f"there is no second {second}"


def parse_when(value: Any, tz: ZoneInfo, allow_date: bool = True) -> date | datetime:
    """Parse a date (`2020-04-16`, `16.04.2020`) or a local date-time (`2020-04-16 10:00`).

    Errors name the accepted formats and, for a well-formed impossible date or time, the
    reason ("31.04.2020: April has 30 days").
    """
    if allow_date:
        wanted = f"a date ({DATE_FORMATS}, optionally with a time HH:MM)"
    else:
        wanted = f"a date and time ({DATETIME_FORMATS})"
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=tz)
    if isinstance(value, date):
        if allow_date:
            return value
        raise ValueError(f"expected {wanted}, got '{value.isoformat()}'")
    text = str(value).strip()
    offset: str | None = None
    match = _OFFSET_RE.match(text)
    if match and ("T" in text or " " in text):
        text, offset = match.group(1).strip(), match.group(2)
    day_text, _, time_text = text.replace("T", " ", 1).partition(" ")
    day = _parse_date(day_text)
    if isinstance(day, str):
        raise ValueError(f"{day} (dates are written {DATE_FORMATS})")
    time_match = _TIME_RE.match(time_text.strip()) if time_text.strip() else None
    if day is None or (time_text.strip() and time_match is None):
        raise ValueError(f"expected {wanted}, got '{value}'")
    if time_match is None:
        if offset or not allow_date:
            raise ValueError(f"expected {wanted}, got '{value}'")
        return day
    hour, minute, second = (int(g) if g else 0 for g in time_match.groups()[:3])
    # Microseconds: the first six digits of the fraction (finer ones are dropped).
    micro = int((time_match.group(4) or "").ljust(6, "0")[:6])
    try:
        clock = time(hour, minute, second, micro)
    except ValueError:
        reason = _bad_time(hour, minute, second)
        raise ValueError(f"{time_text.strip()}: {reason} (times are written HH:MM)") from None
    if offset:
        parsed = datetime.fromisoformat(f"{day.isoformat()}T{clock.isoformat()}{offset}")
        return parsed
    return datetime.combine(day, clock, tzinfo=tz)


def instant(when: date | datetime, tz: ZoneInfo, end: bool = False) -> datetime:
    """A date or date-time as an aware instant; a date that ends something ends at midnight
    after it (an all-day event on 1 June lasts until 2 June, 00:00)."""
    if isinstance(when, datetime):
        return when
    return datetime.combine(when + timedelta(days=1 if end else 0), time(), tzinfo=tz)


def _when(value: Any, info: ValidationInfo) -> date | datetime:
    return parse_when(value, _tz(info))


def _moment(value: Any, info: ValidationInfo) -> datetime:
    parsed = parse_when(value, _tz(info), allow_date=False)
    assert isinstance(parsed, datetime)
    return parsed


def _day(value: Any, info: ValidationInfo) -> date:
    parsed = parse_when(value, _tz(info))
    if isinstance(parsed, datetime):
        raise ValueError(f"expected a date without a time, got '{value}'")
    return parsed


def _url(value: Any) -> str:
    text = str(value).strip()
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        close = difflib.get_close_matches(parts.scheme.lower(), ("http", "https"), n=1)
        hint = f"; did you mean '{close[0]}:'?" if parts.scheme and close else ""
        raise ValueError(f"expected an absolute http(s) URL, got '{value}'{hint}")
    return text


def _text(value: Any) -> Any:
    # YAML turns `title: 2019` into an int; a title may well be a number.
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


_LINE_BREAKS = frozenset("\r\n\v\f\x1c\x1d\x1e\x85\u2028\u2029")


def _one_line(value: str) -> str:
    """Text that goes into a mail header: one line, no control characters."""
    for char in value:
        if char in _LINE_BREAKS:
            raise ValueError("contains a line break; it goes into a mail header: keep it one line")
        if unicodedata.category(char) == "Cc":
            raise ValueError(
                f"contains the control character U+{ord(char):04X}; it goes into a mail header"
            )
    return value


def _email(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        # The same check as every other address (email-validator, no DNS, strict).
        check_address(value.strip())
    except ValueError as exc:
        raise ValueError(f"'{value.strip()}' is not a valid e-mail address: {exc}") from None
    return value


#: German status words editors type, understood as the English values the code uses.
GERMAN_STATUS = {
    "geplant": "planned",
    "abgesagt": "cancelled",
    "verschoben": "postponed",
    "entwurf": "draft",
    "bereit": "ready",
}


def status_word(value: Any) -> Any:
    """A status as the code names it: a German word an editor typed becomes its English value."""
    if isinstance(value, str):
        word = value.strip().lower()
        return GERMAN_STATUS.get(word, word)
    return value


_SERIES_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


def _series(value: Any) -> Any:
    """The name of a series of events: a short name, the same in every event of the series."""
    if isinstance(value, str) and not _SERIES_RE.match(value.strip()):
        raise ValueError(
            f"expected the short name of a series in lowercase letters, digits and hyphens "
            f"(like 'integrationsdialog'), got '{value}'"
        )
    return value


When = Annotated[date | datetime, BeforeValidator(_when)]
Moment = Annotated[datetime, BeforeValidator(_moment)]
Day = Annotated[date, BeforeValidator(_day)]
Url = Annotated[str, BeforeValidator(_url)]
Text = Annotated[str, BeforeValidator(_text)]
HeaderText = Annotated[str, BeforeValidator(_text), AfterValidator(_one_line)]
Email = Annotated[str, BeforeValidator(_email)]
SeriesName = Annotated[str, BeforeValidator(_text), AfterValidator(_series)]
EventStatus = Annotated[Literal["planned", "cancelled", "postponed"], BeforeValidator(status_word)]
