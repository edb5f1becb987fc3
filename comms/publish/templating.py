"""Jinja2 environments with Babel catalogs, and the locale-aware formatting every template uses."""

from __future__ import annotations

import hashlib
import time as timer
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from functools import cached_property, lru_cache
from importlib.resources import files
from io import BytesIO
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import babel
import jinja2
from babel import Locale
from babel.dates import format_date, format_datetime, format_interval, format_time
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_currency
from babel.support import Translations
from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateError, pass_context
from jinja2.bccache import FileSystemBytecodeCache
from jinja2.runtime import Context
from markupsafe import Markup, escape

from comms.content import urls
from comms.content.models import Event, Item, series_blocks
from comms.core.config import Config
from comms.core.errors import RenderError
from comms.core.files import read_checked, write_checked
from comms.core.languages import Edition, home_edition
from comms.publish import teasers

#: The templates ship inside the package (`comms/templates/`), so an installed wheel finds them
#: as a checkout does; pip unpacks a wheel into files, which Jinja2 and Babel read as paths.
TEMPLATES = Path(str(files("comms") / "templates"))
#: Babel message catalogs: templates/locale/<language>/LC_MESSAGES/messages.po.
LOCALES = TEMPLATES / "locale"
DOMAIN = "messages"
#: Babel locale per language (Leichte Sprache is German: its dates are worded as in German).
BABEL_LOCALES = {"de": "de_DE", "en": "en_GB", "de-x-ls": "de_DE", "ar": "ar", "fa": "fa_IR"}
#: Languages with their own templates (`templates/<folder>/<language>/…` before the shared ones).
OWN_TEMPLATES = {"de-x-ls": "ls"}
#: CLDR skeleton of a range of days: weekday, day, month, year (`Fr., 28. – So., 30. Juni 2019`).
DAYS_SKELETON = "yMMMMEEEEd"
#: Seconds a template is taken as unchanged after its file was last looked at (`_Loader`).
RECHECK = 1.0


@dataclass(frozen=True)
class Patterns:
    """House-style date and time patterns for one language (docs/requirements.md T1, T3):
    the day patterns name only fields of the date, `time` only fields of the time of day
    (`worded` relies on it)."""

    day: str
    short_day: str
    time: str
    time_suffix: str
    #: Abbreviated weekday, for terminal lines (`Di., 4. Februar 2020`).
    brief_day: str
    #: Between a day and its time (Arabic and Persian write `،`).
    comma: str = ", "


PATTERNS = {
    # DIN 5008: "16. April 2020", "09:30 Uhr" with a no-break space before "Uhr".
    "de": Patterns("EEEE, d. MMMM y", "d. MMMM y", "HH:mm", "\u00a0Uhr", "EEE, d. MMMM y"),
    "en": Patterns("EEEE, d MMMM y", "d MMMM y", "HH:mm", "", "EEE, d MMMM y"),
    # Arabic: CLDR's long date with the Arabic comma after the weekday.
    "ar": Patterns("EEEE، d MMMM y", "d MMMM y", "HH:mm", "", "EEE، d MMMM y", "، "),
    "fa": Patterns("EEEE d MMMM y", "d MMMM y", "HH:mm", "", "EEE d MMMM y", "، "),
}
PATTERNS["de-x-ls"] = PATTERNS["de"]


def babel_locale(language: str) -> str:
    """The Babel locale of a language tag (`de-x-ls` → `de_DE`; others as Babel parses them)."""
    return BABEL_LOCALES.get(language) or str(Locale.parse(language, sep="-"))


def catalog_path(language: str, domain: str = DOMAIN) -> Path:
    """The message catalog of one language (`templates/locale/<tag>/LC_MESSAGES/messages.po`;
    another domain: the office's alerts in `alerts.po`)."""
    return LOCALES / language / "LC_MESSAGES" / f"{domain}.po"


def last_day(event: Event, tz: ZoneInfo) -> date:
    """The last day an all-day event covers (its end may also be given with a time)."""
    end = event.end or event.start
    if isinstance(end, datetime):
        return end.astimezone(tz).date()
    return end


@lru_cache(maxsize=8)
def interval_pattern(locale: str) -> str:
    """CLDR's pattern for two dates that no interval format covers (`{0} – {1}`, thin spaces)."""
    return str(Locale.parse(locale).interval_formats.get(None, "{0} – {1}"))


@lru_cache(maxsize=8)
def translations(language: str, domain: str = DOMAIN) -> Translations:
    """The compiled catalog of one language (compiled from the shipped .po file, or kept
    compiled from the same bytes: `_compiled`)."""
    source = catalog_path(language, domain).read_bytes()
    return Translations(BytesIO(_compiled(source, language, domain)), domain=domain)


def _compiled(source: bytes, language: str, domain: str) -> bytes:
    """The .mo bytes of the .po `source`, kept beside the compiled templates (`_bytecode`)
    under the digest of all they are made from: compiling the four catalogs cost every
    process that renders a page of each a thirtieth of a second."""
    made_from = f"{babel.__version__}\0{language}\0{domain}\0".encode() + source
    cache = _bytecode("catalogs")
    kept = None
    if cache is not None:
        name = hashlib.sha256(made_from).hexdigest()
        kept = Path(cache.directory) / f"__comms_catalog_{name}.bin"
        found = read_checked(kept, 1)
        if isinstance(found, bytes):
            return found
    catalog = read_po(BytesIO(source), locale=babel_locale(language), domain=domain)
    buffer = BytesIO()
    write_mo(buffer, catalog)
    if kept is not None:
        write_checked(kept, 1, buffer.getvalue())  # a failure only costs the next process
    return buffer.getvalue()


@lru_cache(maxsize=4)
def _bytecode(folder: str) -> FileSystemBytecodeCache | None:
    """Compiled templates of one folder's environments, shared by every language and process.

    Compiling the templates was most of a warm `comms check`, and each language compiled
    them again. Jinja keys an entry by the template's file and checks its source's digest,
    writes it atomically, and keeps it in a folder of this user's (0700); the pattern holds
    what else changes the compiled code: the folder's options and Jinja's version.
    """
    pattern = f"__comms_{folder}_{jinja2.__version__}_%s.cache"
    try:
        return FileSystemBytecodeCache(pattern=pattern)
    except (OSError, RuntimeError):
        return None  # no usable temporary folder: compile in memory as before


class _Loader(FileSystemLoader):
    """Jinja's file loader, whose templates look at their file at most once a `RECHECK`:
    with Jinja's `auto_reload`, every `get_template` (each `extends` and `import` of every
    page) read the file's time, ten thousand times in a cold build, while a running
    `serve` sees an edited template within a second still."""

    def get_source(
        self, environment: Environment, template: str
    ) -> tuple[str, str, Callable[[], bool]]:
        source, filename, uptodate = super().get_source(environment, template)
        return source, filename, _rechecked(uptodate)


def _rechecked(uptodate: Callable[[], bool]) -> Callable[[], bool]:
    """`uptodate`, asked at most once a `RECHECK` (its answer kept in between)."""
    last = [timer.monotonic(), True]

    def fresh() -> bool:
        now = timer.monotonic()
        if now - last[0] >= RECHECK:
            last[:] = [now, uptodate()]
        return bool(last[1])

    return fresh


@lru_cache(maxsize=16)
def environment(folder: str, language: str) -> Environment:
    """The Jinja2 environment for `templates/<folder>/` (email, text, web) in one language."""
    own = [str(TEMPLATES / folder / OWN_TEMPLATES[language])] if language in OWN_TEMPLATES else []
    env = Environment(
        loader=_Loader([*own, str(TEMPLATES / folder), str(TEMPLATES)]),
        # E-mail (MJML) and web templates produce markup; text templates do not.
        autoescape=folder != "text",
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        # Text templates keep their block tags at column 0; indentation there is content.
        lstrip_blocks=folder != "text",
        keep_trailing_newline=True,
        undefined=StrictUndefined,
        bytecode_cache=_bytecode(folder),
    )
    env.install_gettext_translations(translations(language), newstyle=True)  # type: ignore[attr-defined]
    env.globals["gettext"] = _kept(env.globals["gettext"])
    # Site paths for links (`{{ root }}{{ paths.page_path(item) }}`), in every template.
    env.globals["paths"] = urls
    # Events of one series as one table of dates (`series_blocks(events, fmt.tz)`).
    env.globals["series_blocks"] = series_blocks
    # Links to items' pages in the page's edition, or the original's (`item_href(event)`).
    env.globals["item_href"] = item_href
    if folder == "web":
        # Teasers, event facts and `<time>` marks (`teasers`: Python, not macros).
        teasers.install(env.globals, pieces(language))
    return env


@lru_cache(maxsize=16)
def pieces(language: str) -> teasers.Teasers:
    """The web archive's teasers, event facts and `<time>` marks in one language."""
    return teasers.Teasers(translations(language).gettext)


def _kept(gettext: Any) -> Any:
    """The environment's `gettext` with each message without variables translated once per
    autoescape mode (a page asks for the same labels hundreds of times: a call into the
    catalog and a `Markup %` each)."""
    made: dict[tuple[bool, str], Any] = {}

    @pass_context
    def kept(context: Context, message: str, **variables: Any) -> Any:
        if variables:
            return gettext(context, message, **variables)
        key = (context.eval_ctx.autoescape, message)
        found = made.get(key)
        if found is None:
            found = made[key] = gettext(context, message)
        return found

    return kept


@pass_context
def item_href(context: Context, item: Item, calendar: bool = False, titled: bool = True) -> Markup:
    """` href="…"` of a link from a web page to an item's page or calendar file
    (`teasers.href`, with the page's context)."""
    return teasers.href(context, item, calendar, titled)


def render_template(folder: str, name: str, language: str, **context: Any) -> str:
    """Render `templates/<folder>/<name>` with the site's language; RenderError names it."""
    try:
        return environment(folder, language).get_template(name).render(**context)
    except TemplateError as exc:
        where = f"templates/{folder}/{name}"
        raise RenderError(f"{where}: {type(exc).__name__}: {exc}") from None


def translate(language: str, message: str) -> str:
    """Translate one interface string from Python code."""
    return str(translations(language).gettext(message))


@lru_cache(maxsize=8192)
def worded(local: date | time, pattern: str, locale: str) -> str:
    """A local date (or time of day) in a date-only (time-only) pattern. Kept: one call into
    Babel costs a fifth of a millisecond, and a site words the same days and the same times
    of day thousands of times (pages, feeds and mails of every edition)."""
    if isinstance(local, time):
        return format_time(local, pattern, locale=_parsed(locale))
    return format_date(local, pattern, locale=_parsed(locale))


@lru_cache(maxsize=64)
def _parsed(locale: str) -> Locale:
    """Babel's `Locale` of a locale name, parsed once (Babel parses a name on every call:
    a third of a day worded on a miss of `worded`)."""
    return Locale.parse(locale)


class Formatter:
    """Dates, times, periods, money and labels as the site's readers expect them: the one
    place that words them, for mail, web pages, feeds and calendars alike."""

    def __init__(self, config: Config, edition: Edition | None = None) -> None:
        self.config = config
        #: The edition's language (the site's own by default).
        self.language = (edition or home_edition(config)).language
        self.locale = babel_locale(self.language)
        self.patterns = PATTERNS.get(self.language, PATTERNS["en"])
        self.tz = config.tz
        self._interval = interval_pattern(self.locale)

    def _(self, message: str) -> str:
        return translate(self.language, message)

    def _local(self, value: datetime) -> datetime:
        """`value` in the site's time zone (a naive one taken as UTC, as Babel does)."""
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(self.tz)

    def _date(self, value: date) -> date:
        """The day of `value`, a datetime taken in the site's time zone."""
        return self._local(value).date() if isinstance(value, datetime) else value

    def day(self, value: date) -> str:
        """`Donnerstag, 16. April 2020` (a datetime is taken in the site's time zone)."""
        return worded(self._date(value), self.patterns.day, self.locale)

    def short_day(self, value: date) -> str:
        """`16. April 2020`."""
        return worded(self._date(value), self.patterns.short_day, self.locale)

    def clock(self, value: datetime) -> str:
        """`09:30` in the site's time zone, without the suffix."""
        local = self._local(value).time().replace(tzinfo=None)
        return worded(local, self.patterns.time, self.locale)

    def moment(self, value: date) -> str:
        """`Donnerstag, 16. April 2020, 10:00 Uhr`, or the day alone for a date."""
        if not isinstance(value, datetime):
            return self.day(value)
        comma = self.patterns.comma
        return f"{self.day(value)}{comma}{self.clock(value)}{self.patterns.time_suffix}"

    def brief(self, value: date) -> str:
        """`Di., 4. Februar 2020, 09:00 Uhr` (or the day alone): the command line's wording."""
        if not isinstance(value, datetime):
            return format_date(value, self.patterns.brief_day, locale=self.locale)
        day = format_datetime(value, self.patterns.brief_day, tzinfo=self.tz, locale=self.locale)
        suffix = self.patterns.time_suffix.replace("\u00a0", " ")
        return f"{day}{self.patterns.comma}{self.clock(value)}{suffix}"

    def span(self, first: str, last: str) -> str:
        """Two worded dates or moments as one period, with the locale's interval pattern
        (CLDR: `first – last` with thin spaces); HTML markup in both stays markup."""
        if isinstance(first, Markup) and isinstance(last, Markup):
            return Markup(escape(self._interval)).format(first, last)
        return self._interval.format(first, last)

    def period(self, first: date, last: date) -> str:
        """`13. Mai 2019 – 31. Juli 2019`: a period of whole days, both ends in full."""
        return self.span(self.short_day(first), self.short_day(last))

    def event_when(self, event: Event) -> str:
        """When an event takes place, in every output (mail, web, feeds, calendars):
        `Donnerstag, 16. April 2020, 09:30–16:30 Uhr`; several days as Babel's interval
        `Fr., 28. – So., 30. Juni 2019`, or two moments for timed events over several days."""
        tz = self.tz
        if event.all_day:
            first, last = event.start_at(tz).date(), last_day(event, tz)
            if last <= first:
                return self.day(first)
            return format_interval(first, last, DAYS_SKELETON, locale=self.locale)
        start = event.start_at(tz).astimezone(tz)
        end = event.end_at(tz).astimezone(tz) if event.end is not None else start
        if end == start:
            return self.moment(start)
        if end.date() == start.date():
            times = f"{self.clock(start)}\u2013{self.clock(end)}{self.patterns.time_suffix}"
            return f"{self.day(start)}{self.patterns.comma}{times}"
        return self.span(self.moment(start), self.moment(end))

    def iso(self, value: date) -> str:
        """ISO 8601 for `datetime=` attributes and JSON-LD (local time with its offset)."""
        if isinstance(value, datetime):
            return value.astimezone(self.tz).isoformat()
        return value.isoformat()

    def money(self, euros: int) -> str:
        """`6.000 €` (whole euros, no cents)."""
        return format_currency(
            euros, "EUR", format="#,##0\u00a0¤", locale=self.locale, currency_digits=False
        )

    def region(self, slug: str) -> str:
        """The label of a region slug."""
        return self.config.settings.regions.get(slug, slug)

    def topic(self, slug: str) -> str:
        """The label of a topic slug."""
        return self.config.settings.topics.get(slug, slug)

    def topics(self, slugs: list[str]) -> str:
        """The labels of topic slugs, comma-separated."""
        return ", ".join(self.topic(slug) for slug in slugs)

    def status(self, status: str) -> str:
        """A readable label for an event status other than planned ("" for planned)."""
        labels = {"cancelled": self._("Cancelled"), "postponed": self._("Postponed")}
        return labels.get(status, "")

    @cached_property
    def organisation_lines(self) -> list[str]:
        """The imprint block: name, street, postcode and city (§ 5 DDG)."""
        org = self.config.settings.organisation
        return [org.name, org.street, f"{org.postcode} {org.city}"]
