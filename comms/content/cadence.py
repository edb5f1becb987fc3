"""A digest's cadence and horizon: the small grammar editors write, and the run days it names.

Cadence: `weekly on Tuesday` or `monthly on the first Tuesday` (ordinals first to fourth and
last); German works too (`wöchentlich dienstags`, `monatlich am ersten Dienstag`). Horizon:
`6 weeks`, `42 days` (`6 Wochen`, `42 Tage`).
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator

_WEEKDAYS = {
    **{name: i for i, name in enumerate(calendar.day_name[d].lower() for d in range(7))},
    **dict.fromkeys(("montag", "montags"), 0),
    **dict.fromkeys(("dienstag", "dienstags"), 1),
    **dict.fromkeys(("mittwoch", "mittwochs"), 2),
    **dict.fromkeys(("donnerstag", "donnerstags"), 3),
    **dict.fromkeys(("freitag", "freitags"), 4),
    **dict.fromkeys(("samstag", "samstags", "sonnabend"), 5),
    **dict.fromkeys(("sonntag", "sonntags"), 6),
}
#: Ordinal words → the week of the month (-1: the last).
_ORDINALS = {
    "first": 1,
    "second": 2,
    "third": 3,
    "fourth": 4,
    "last": -1,
    "ersten": 1,
    "zweiten": 2,
    "dritten": 3,
    "vierten": 4,
    "letzten": -1,
}
_FILLERS = frozenset({"on", "the", "am", "jeden", "jedem"})
_WEEKLY = frozenset({"weekly", "wöchentlich"})
_MONTHLY = frozenset({"monthly", "monatlich"})
_HORIZON_RE = re.compile(r"^(\d{1,3})\s*(days?|weeks?|tage?n?|wochen?)$")
FORMS = "'weekly on Tuesday' or 'monthly on the first Tuesday'"


@dataclass(frozen=True)
class Cadence:
    """How often a digest runs: weekly on a weekday, or monthly on the nth (or last) weekday."""

    weekday: int
    #: None: weekly; 1–4: that week of the month; -1: the last.
    week: int | None = None
    text: str = ""

    def matches(self, day: date) -> bool:
        """True when `day` is a run day."""
        if day.weekday() != self.weekday:
            return False
        if self.week is None:
            return True
        if self.week == -1:
            return day.month != (day + timedelta(days=7)).month
        return (day.day - 1) // 7 + 1 == self.week

    def next_on_or_after(self, day: date) -> date:
        """The first run day on or after `day`."""
        for offset in range(0, 40):
            candidate = day + timedelta(days=offset)
            if self.matches(candidate):
                return candidate
        raise AssertionError("every cadence matches within 40 days")  # pragma: no cover


def parse_cadence(value: Any) -> Cadence:
    """A cadence from its text; a ValueError names the forms understood."""
    if isinstance(value, Cadence):
        return value
    if not isinstance(value, str):
        raise ValueError(f"expected text like {FORMS}")
    words = [w for w in value.strip().lower().replace(",", " ").split() if w not in _FILLERS]
    if len(words) == 2 and words[0] in _WEEKLY and words[1] in _WEEKDAYS:
        return Cadence(_WEEKDAYS[words[1]], None, value.strip())
    if len(words) == 3 and words[0] in _MONTHLY and words[1] in _ORDINALS and words[2] in _WEEKDAYS:
        return Cadence(_WEEKDAYS[words[2]], _ORDINALS[words[1]], value.strip())
    raise ValueError(f"cadence '{value.strip()}' not understood; write {FORMS}")


def parse_horizon(value: Any) -> int:
    """A horizon (`6 weeks`, `42 days`, or a number of days) as days."""
    if isinstance(value, int) and not isinstance(value, bool):
        days = value
    else:
        match = _HORIZON_RE.match(str(value).strip().lower())
        if match is None:
            raise ValueError(f"horizon '{value}' not understood; write e.g. '6 weeks' or '42 days'")
        number, unit = int(match.group(1)), match.group(2)
        days = number * 7 if unit.startswith(("week", "woche")) else number
    if not 1 <= days <= 366:
        raise ValueError(f"horizon of {days} days: give 1 day to 1 year")
    return days


CadenceField = Annotated[Cadence, BeforeValidator(parse_cadence)]
HorizonDays = Annotated[int, BeforeValidator(parse_horizon)]
