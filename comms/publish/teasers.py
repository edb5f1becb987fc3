"""The web archive's item teasers, event facts and `<time>` marks, written in Python.

They were Jinja macros; a cold build writes ten thousand list entries, and each macro call
cost a few dozen `Context.call`s and escapes. The web templates call these as globals
(`{{ event_teaser(event) }}`, `{{ time(value, text) }}`) and list pages' entries through
`entry(…)` (`fragments.Entries`): this module is the one place of their markup. Every value
is escaped as `{{ value }}` escapes it and every label is translated as `{% trans %}` does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date
from typing import Any

from jinja2 import pass_context
from jinja2.runtime import Context
from markupsafe import Markup, escape

from comms.content import urls
from comms.content.models import Event, Item
from comms.content.translation_files import has_page
from comms.core.languages import Edition

#: What a teaser reads of its page: `fmt`, `root`, and where given `edition`, `asset_root`.
Page = Mapping[str, Any] | Context


def href(page: Page, item: Item, calendar: bool = False, titled: bool = True) -> Markup:
    """` href="…"` of a link from a web page to an item's page (or, with `calendar`, to an
    event's calendar file): in the page's edition where the item has one, else the
    original's at the site root, marked `hreflang` (and `lang` when the link's text is the
    item's title, `titled`) of the original's language."""
    root: str = page["root"]
    edition: Edition | None = page.get("edition")
    target = urls.event_calendar_path(item.slug) if calendar else urls.page_path(item)
    # Written out with `escape` rather than `Markup % …`: a list page has thousands of links.
    if edition is None or has_page(item, edition):
        return Markup(f' href="{escape(root + target)}"')
    site_root: str = page.get("asset_root", root)
    home = escape(edition.home)
    marks = f' href="{escape(site_root + target)}" hreflang="{home}"'
    if titled and not calendar:
        marks += f' lang="{home}"'
    return Markup(marks)


class Teasers:
    """The pieces in one language (`gettext`: its catalog's, as the templates translate)."""

    def __init__(self, gettext: Callable[[str], str]) -> None:
        self._gettext = gettext
        self._labels: dict[str, Markup] = {}

    def _(self, message: str, **variables: Any) -> Markup:
        """`{% trans %}` of `message`: the translation, its variables escaped into it."""
        if variables:
            return Markup(self._gettext(message)) % variables
        found = self._labels.get(message)
        if found is None:
            found = self._labels[message] = Markup(self._gettext(message)) % {}
        return found

    def time(self, page: Page, value: date, text: Any) -> Markup:
        """`<time datetime="…">text</time>`."""
        return Markup(f'<time datetime="{escape(page["fmt"].iso(value))}">{escape(text)}</time>')

    def event_facts(self, page: Page, event: Event, full: bool = False) -> Markup:
        """When, where, online, region (and with `full` topics and organiser) of an event."""
        fmt, _ = page["fmt"], self._
        out = [
            f'<dl class="facts">\n<dt>{_("When")}</dt>\n'
            f"<dd>{self.time(page, event.start, fmt.event_when(event))}</dd>\n"
        ]
        if event.location:
            place = event.location.address or event.location.city
            out.append(
                f"<dt>{_('Where')}</dt>\n<dd>{escape(event.location.name)}, {escape(place)}</dd>\n"
            )
        if event.online:
            online = escape(event.online)
            out.append(f'<dt>{_("Online")}</dt>\n<dd><a href="{online}">{online}</a></dd>\n')
        out.append(f"<dt>{_('Region')}</dt>\n<dd>{escape(fmt.region(event.region))}</dd>\n")
        if full:
            if event.topics:
                out.append(f"<dt>{_('Topics')}</dt>\n<dd>{escape(fmt.topics(event.topics))}</dd>\n")
            out.append(f"<dt>{_('Organiser')}</dt>\n<dd>{escape(event.organiser)}</dd>\n")
        out.append("</dl>")
        return Markup("".join(out))

    def event_teaser(self, page: Page, event: Event, level: int = 3) -> Markup:
        """An upcoming event in a list: title, status, facts, summary, registration, calendar."""
        fmt, _, title = page["fmt"], self._, escape(event.title)
        link = f"<a{href(page, event)}>{title}</a>"
        out = [f'<article class="teaser">\n<h{level}>{link}</h{level}>\n']
        if event.status != "planned":
            out.append(f'<p class="status">{escape(fmt.status(event.status))}</p>\n')
        out.append(f"{self.event_facts(page, event)}\n<p>{escape(event.summary)}</p>\n")
        out.append('<p class="actions">\n')
        if event.registration and event.status == "planned":
            registration = _("Registration: %(title)s", title=event.title)
            out.append(f'<a href="{escape(event.registration)}">{registration}</a><br>')
        calendar = _("Add to calendar: %(title)s", title=event.title)
        out.append(f"<a{href(page, event, calendar=True)}>{calendar}</a>\n</p>\n</article>")
        return Markup("".join(out))

    def past_event(self, page: Page, event: Event) -> Markup:
        """A past event's line in the list of events."""
        day = escape(page["fmt"].short_day(event.start))
        return Markup(f"<li><a{href(page, event)}>{escape(event.title)}</a> ({day})</li>")

    def practice_teaser(self, page: Page, practice: Any, level: int = 3) -> Markup:
        """A good-practice example in a list: title, organisation, place, summary."""
        region = escape(page["fmt"].region(practice.region))
        return Markup(
            f'<article class="teaser">\n'
            f"<h{level}><a{href(page, practice)}>{escape(practice.title)}</a></h{level}>\n"
            f'<p class="meta">{escape(practice.organisation)} · {escape(practice.city)}'
            f" ({region})</p>\n<p>{escape(practice.summary)}</p>\n</article>"
        )

    def award_teaser(self, page: Page, award: Any, level: int = 3) -> Markup:
        """An award in a list: title, prize money, deadline, summary."""
        fmt, _, deadline = page["fmt"], self._, award.call.deadline
        return Markup(
            f'<article class="teaser">\n'
            f"<h{level}><a{href(page, award)}>{escape(award.title)}</a></h{level}>\n"
            f'<p class="meta">{_("Prize money")}: {escape(fmt.money(award.prize_money))} · '
            f"{_('Deadline for entries')}: {self.time(page, deadline, fmt.short_day(deadline))}"
            f"</p>\n<p>{escape(award.summary)}</p>\n</article>"
        )

    def issue_teaser(self, page: Page, issue: Any, level: int = 3) -> Markup:
        """A newsletter issue in a list: subject, number, date, preheader."""
        fmt, _ = page["fmt"], self._
        number = _("No. %(number)s", number=issue.number)
        day = self.time(page, issue.date, fmt.short_day(issue.date))
        return Markup(
            f'<article class="teaser">\n'
            f"<h{level}><a{href(page, issue)}>{escape(issue.subject)}</a></h{level}>\n"
            f'<p class="meta">{number} · {day}</p>\n<p>{escape(issue.preheader)}</p>\n</article>'
        )


#: The pieces templates call as globals (with their page's context as `page`).
PIECES = (
    "time",
    "event_facts",
    "event_teaser",
    "past_event",
    "practice_teaser",
    "award_teaser",
    "issue_teaser",
)


def install(globals_: dict[str, Any], teasers: Teasers) -> None:
    """Make the pieces globals of a web environment (`{{ event_teaser(event) }}`)."""
    for name in PIECES:
        globals_[name] = _bound(getattr(teasers, name))


def _bound(piece: Callable[..., Markup]) -> Callable[..., Markup]:
    @pass_context
    def bound(context: Context, *args: Any, **kwargs: Any) -> Markup:
        return piece(context, *args, **kwargs)

    return bound
