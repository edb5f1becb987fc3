"""The web archive: index, list and item pages (schema.org JSON-LD), style sheet, static files."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property, partial
from json.encoder import encode_basestring
from pathlib import Path
from typing import Any, TypeVar

from markupsafe import Markup

from comms.content import urls
from comms.content.models import Award, Event, Issue, Item, Practice, Site
from comms.content.translation_files import has_page, language_of, translated_languages
from comms.core.config import Config
from comms.core.errors import RenderError
from comms.core.languages import Edition, Editions, home_edition, site_editions
from comms.publish.brand import brand_css
from comms.publish.feed_state import issue_is_public
from comms.publish.fragments import Entries, Kept, store_file
from comms.publish.page_cache import Fingerprints, Prefix, by_path
from comms.publish.page_chrome import Chrome, hole
from comms.publish.producer import Files, Keyed
from comms.publish.templating import TEMPLATES, Formatter, render_template

_POSTCODE_RE = re.compile(r"\b(\d{5})\b")
_STATUS = {
    "planned": "EventScheduled",
    "cancelled": "EventCancelled",
    "postponed": "EventPostponed",
}


def published_issues(site: Site, now: datetime) -> list[Issue]:
    """Issues the archive shows, newest first: ready ones whose time has come or that were sent.

    The same rule as the feeds (`feed_state.is_public`), so web and feeds never disagree.
    """
    public = [i for i in site.issues.values() if issue_is_public(i, site, now)]
    return sorted(public, key=lambda i: (i.date, i.number), reverse=True)


def _event_ld(config: Config, fmt: Formatter, event: Event) -> dict[str, Any]:
    data: dict[str, Any] = {
        "@type": "Event",
        "name": event.title,
        "startDate": fmt.iso(event.start),
        "eventStatus": f"https://schema.org/{_STATUS[event.status]}",
        "description": event.summary,
        "organizer": {"@type": "Organization", "name": event.organiser},
    }
    if event.end is not None:
        data["endDate"] = fmt.iso(event.end)
    places: list[dict[str, Any]] = []
    if event.location is not None:
        address: dict[str, Any] = {
            "@type": "PostalAddress",
            "addressLocality": event.location.city,
            "addressCountry": "DE",
        }
        if event.location.address:
            address["streetAddress"] = event.location.address.split(",")[0].strip()
            postcode = _POSTCODE_RE.search(event.location.address)
            if postcode:
                address["postalCode"] = postcode.group(1)
        places.append({"@type": "Place", "name": event.location.name, "address": address})
    if event.online is not None:
        places.append({"@type": "VirtualLocation", "url": event.online})
    mode = "Mixed" if len(places) == 2 else ("Online" if event.online else "Offline")
    data["eventAttendanceMode"] = f"https://schema.org/{mode}EventAttendanceMode"
    data["location"] = places[0] if len(places) == 1 else places
    if event.registration:
        data["offers"] = {"@type": "Offer", "url": event.registration, "price": 0}
    return data


def _article_ld(item: Practice | Award | Issue, fmt: Formatter) -> dict[str, Any]:
    data: dict[str, Any] = {
        "@type": "Article",
        "headline": item.title,
        "description": item.summary,
    }
    published = item.published or (item.date if isinstance(item, Issue) else None)
    if published is not None:
        data["datePublished"] = fmt.iso(published)
    if item.updated is not None:
        data["dateModified"] = fmt.iso(item.updated)
    if isinstance(item, Practice):
        data["about"] = {
            "@type": "Organization",
            "name": item.organisation,
            "address": {"@type": "PostalAddress", "addressLocality": item.city},
        }
    return data


def indented_json(value: Any, level: int = 0) -> str:
    """`json.dumps(value, ensure_ascii=False, indent=1)`, the same text: the standard library
    writes an indented document in Python, a fifth of an item page's time."""
    if isinstance(value, str):
        return encode_basestring(value)
    inner = "\n" + " " * (level + 1)
    if isinstance(value, dict) and value and all(isinstance(key, str) for key in value):
        # Text members (most of a page's) written here: a call less for each.
        members = [
            f"{encode_basestring(k)}: "
            + (encode_basestring(v) if type(v) is str else indented_json(v, level + 1))
            for k, v in value.items()
        ]
        return "{" + inner + ("," + inner).join(members) + "\n" + " " * level + "}"
    if isinstance(value, list | tuple) and value:
        items = [indented_json(member, level + 1) for member in value]
        return "[" + inner + ("," + inner).join(items) + "\n" + " " * level + "]"
    # Numbers, true, false, null, empty containers and anything rarer: as json writes them.
    return json.dumps(value, ensure_ascii=False, indent=1).replace("\n", "\n" + " " * level)


def json_ld(config: Config, edition: Edition, item: Item) -> str:
    """schema.org JSON-LD for an item page of `edition`, safe inside a `<script>` element."""
    fmt = Formatter(config, edition)
    if isinstance(item, Event):
        data = _event_ld(config, fmt, item)
    else:
        assert isinstance(item, Practice | Award | Issue)
        data = _article_ld(item, fmt)
    site_urls = urls.Urls(config, edition)
    data["url"] = site_urls.item(item)
    data["identifier"] = config.item_id(item.kind, item.slug)
    data["inLanguage"] = language_of(item, edition.home)
    image = getattr(item, "image", None)
    if image is not None:
        data["image"] = site_urls.asset(image.src)
    ordered = {"@context": "https://schema.org", **data}
    text = indented_json(ordered)
    # In a script element "</script" ends it and "<!--" changes how the rest is parsed; the
    # JSON escapes \u003c, \u003e and \u0026 mean the same characters and are inert in HTML.
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


#: Entries per list page (docs/rendering.md, "Web archive"). Pelican pages at 20; 25 keeps the
#: sample's lists (23 events at most) on one page each.
PAGE_SIZE = 25


@dataclass(frozen=True)
class Pager:
    """Where one page of a kind's list stands among the list's pages."""

    kind: str
    number: int
    count: int

    @property
    def path(self) -> str:
        """The page's folder (`events/`, `events/page/2/` …)."""
        return urls.list_page_path(self.kind, self.number)

    @property
    def prev_path(self) -> str | None:
        """The previous page's folder (None on the first page)."""
        return urls.list_page_path(self.kind, self.number - 1) if self.number > 1 else None

    @property
    def next_path(self) -> str | None:
        """The next page's folder (None on the last page)."""
        if self.number < self.count:
            return urls.list_page_path(self.kind, self.number + 1)
        return None

    def pages(self) -> list[Pager]:
        """Every page of the list, this one included."""
        return [Pager(self.kind, number, self.count) for number in range(1, self.count + 1)]


@dataclass(frozen=True)
class _Neighbours:
    """What a list page's layout reads of its pager: the previous and next page's folders,
    as holes (None where there is none), so one layout serves every page of a list."""

    prev_path: Markup | None
    next_path: Markup | None


T = TypeVar("T")


def paged(kind: str, entries: Sequence[T]) -> list[tuple[Pager, Sequence[T]]]:
    """The pages of a kind's list: `PAGE_SIZE` entries each, in order, at least one page
    (an empty list has one, which says so)."""
    count = max(1, -(-len(entries) // PAGE_SIZE))
    return [
        (Pager(kind, number, count), entries[(number - 1) * PAGE_SIZE : number * PAGE_SIZE])
        for number in range(1, count + 1)
    ]


class _Pages:
    """Renders the archive pages of one site with shared context."""

    def __init__(
        self,
        config: Config,
        edition: Edition,
        site: Site,
        base: dict[str, Any],
        prints: Fingerprints | None,
    ) -> None:
        self.config = config
        self.edition = edition
        self.site = site
        self.base = base
        self.files = Files()
        self.now: datetime = config.now()
        self.prints = prints
        #: The list pages' kept entries, each file read once (`fragments`).
        self.kept = Kept()
        #: The pages' layouts, by template, roots, languages and neighbours (`page_chrome`).
        self.chromes: dict[tuple[Any, ...], Chrome | None] = {}
        #: The entries' files of each list's pages, by kind and page count (`_list_files`).
        self.list_files: dict[tuple[str, int], tuple[Path, ...]] = {}

    @cached_property
    def editions(self) -> Editions:
        """The site's editions (asked for every page)."""
        return site_editions(self.config)

    @cached_property
    def base_key(self) -> str | None:
        """What every page shares, described once (None: the pages are not cached)."""
        return None if self.prints is None else self.prints.key_or_none(self.base)

    @cached_property
    def entry_base(self) -> dict[str, Any]:
        """What a list page's entries may read of the shared context: all but the items an
        edition shows untranslated, which change with every item added (an entry's own item
        is in its key)."""
        return {name: value for name, value in self.base.items() if name != "untranslated"}

    @cached_property
    def entry_base_key(self) -> str | None:
        """`entry_base` described once (None: the entries are not kept)."""
        return None if self.prints is None else self.prints.key_or_none(self.entry_base)

    def alternates(self, path: str, item: Item | None) -> list[tuple[str, str, str]]:
        """The languages a page is in, as (tag, label, URL): an item's translations, or every
        language for an edition's list pages (the site's own list pages name none)."""
        editions, site_urls = self.editions, urls.Urls(self.config, self.edition)
        if item is not None:
            found = {editions.home.language, *translated_languages(self.site, item)}
        else:
            found = set(editions.languages) if not self.edition.is_home else set()
        if len(found) < 2:
            return []
        page = path.removesuffix(urls.PAGE)
        return [
            (edition.language, edition.label, site_urls.in_edition(page, edition))
            for edition in editions.all
            if edition.language in found
        ]

    def page(self, path: str, template: str, item: Item | None = None, **context: Any) -> None:
        """Add the page at `path` of the edition; it is rendered when it is read (under the
        key of everything it shows, with the build's fingerprints)."""
        folder = urls.Urls(self.config, self.edition).folder
        make = partial(self._html, path, template, item, context)
        if self.prints is None:
            self.files[folder + path] = make
        else:
            key = partial(self._key, path, template, item, context)
            self.files[folder + path] = Keyed(key, make)

    def _key(
        self, path: str, template: str, item: Item | None, context: dict[str, Any]
    ) -> str | None:
        """The page cache's key of a page: everything `_html` reads beside the configuration."""
        if self.key_prefix is None:
            return None
        alternates = self.alternates(path, item)
        return self.key_prefix.key_or_none(path, template, item, context, alternates)

    @cached_property
    def key_prefix(self) -> Prefix | None:
        """What every page's key begins with (the shared context, the edition), described
        once (None: the pages are not cached)."""
        if self.prints is None or self.base_key is None:
            return None
        return self.prints.prefix(self.base_key, self.edition)

    def _html(self, path: str, template: str, item: Item | None, context: dict[str, Any]) -> bytes:
        depth = path.count("/")
        site_urls = urls.Urls(self.config, self.edition)
        canonical = site_urls.in_edition(path.removesuffix(urls.PAGE))
        if item is not None:
            context = {"item": item, "json_ld": json_ld(self.config, self.edition, item), **context}
        # An edition's pages live under its folder (`en/`): links among them stay in it,
        # the style sheet and static files are the root's.
        roots = {
            "root": "../" * depth,
            "asset_root": "../" * (depth + site_urls.folder.count("/")),
        }
        page: dict[str, Any] = {**self.base, **roots, "path": path, "canonical": canonical}
        variables = {**page, "alternates": self.alternates(path, item), **context}
        if item is not None:
            return self._spliced(template, roots, variables).encode("utf-8")
        # A list page: its entries are rendered once and kept (fragments).
        pager = context.get("pager")
        entries = variables["entry"] = self._entries(site_urls.folder + path, roots, pager)
        html = self._spliced(template, roots, variables)
        entries.save()
        return html.encode("utf-8")

    def _spliced(self, template: str, roots: dict[str, str], variables: dict[str, Any]) -> str:
        """A page in its layout (`page_chrome`), rendered once per template, roots, languages
        and (list pages) whether there is a previous and a next page; the page's blocks, URL,
        languages' URLs and neighbours' folders put into it."""
        alternates = variables["alternates"]
        languages = tuple((code, label) for code, label, _ in alternates)
        pager: Pager | None = variables.get("pager")
        prev, after = (None, None) if pager is None else (pager.prev_path, pager.next_path)
        shape = (pager is not None, prev is not None, after is not None)
        key = (template, roots["root"], roots["asset_root"], languages, shape)
        if key not in self.chromes:
            shared = {
                **self.base,
                **roots,
                "canonical": hole("canonical"),
                "alternates": [
                    (code, label, hole(f"alternate{index}"))
                    for index, (code, label) in enumerate(languages)
                ],
            }
            if pager is not None:
                shared["pager"] = _Neighbours(
                    None if prev is None else hole("prev"), None if after is None else hole("next")
                )
            self.chromes[key] = Chrome.make("web", template, self.edition.language, shared)
        chrome = self.chromes[key]
        if chrome is None:
            return render_template("web", template, self.edition.language, **variables)
        holes = {f"alternate{index}": href for index, (_, _, href) in enumerate(alternates)}
        holes.update(canonical=variables["canonical"], prev=prev, next=after)
        return chrome.render(variables, holes)

    def _entries(self, output_path: str, roots: dict[str, str], pager: Pager | None) -> Entries:
        """The entries of the list page at `output_path` (`fragments.Entries`), kept between
        builds when the build keys its pages."""
        key = partial(self._entry_key, None)
        page = {**self.entry_base, **roots}
        if self.prints is None or self.entry_base_key is None:
            return Entries(self.edition.language, page, key)
        prefix = self.prints.key_or_none("entry", self.entry_base_key, self.edition, roots)
        if prefix is None:
            return Entries(self.edition.language, page, key)
        file = store_file(self.config.root, output_path)
        key = partial(self._entry_key, prefix)
        return Entries(self.edition.language, page, key, file, self._list_files(pager), self.kept)

    def _list_files(self, pager: Pager | None) -> tuple[Path, ...]:
        """The files that keep the entries of every page of `pager`'s list (named once per
        list: each of its pages asks)."""
        if pager is None:
            return ()
        found = self.list_files.get((pager.kind, pager.count))
        if found is None:
            folder = urls.Urls(self.config, self.edition).folder
            found = tuple(
                store_file(self.config.root, folder + page.path + urls.PAGE)
                for page in pager.pages()
            )
            self.list_files[(pager.kind, pager.count)] = found
        return found

    def _entry_key(
        self, prefix: str | None, macro: str, args: tuple[Any, ...], item: Item
    ) -> str | None:
        """The key of a list page's entry (`fragments.Entries`): what the page's entries share
        (`prefix`: the page's shared inputs, edition and roots), the macro, its arguments and
        the item."""
        if prefix is None or self.prints is None:
            return None
        own = self.prints.key_or_none(item)
        if own is None:
            return None
        return hashlib.sha256(f"{prefix}\0{macro}\0{args!r}\0{own}".encode()).hexdigest()

    def item(self, item: Item, template: str, **context: Any) -> None:
        """Add an item's page, if it has one in the edition (`translation_files.has_page`)."""
        if has_page(item, self.edition):
            self.page(urls.page_path(item) + urls.PAGE, template, item, **context)


def archive_files(
    config: Config,
    site: Site,
    base: dict[str, Any],
    edition: Edition | None = None,
    prints: Fingerprints | None = None,
) -> Files:
    """Every archive page of `edition` (the site's own by default; `base` is its template
    context), and for the site's own the style sheet and the static files, by output path;
    with `prints` each page is keyed for the page cache."""
    edition = edition or home_edition(config)
    pages = _Pages(config, edition, site, base, prints)
    issues = published_issues(site, pages.now)
    upcoming = site.upcoming_events(pages.now)
    coming = {event.slug for event in upcoming}
    past = sorted(
        (event for event in site.events.values() if event.slug not in coming),
        key=lambda event: (event.start_at(config.tz), event.slug),
        reverse=True,
    )
    featured: dict[str, list[Issue]] = {}
    for issue in issues:
        for event in site.issue_events(issue, config.tz):
            featured.setdefault(f"event/{event.slug}", []).append(issue)
        for practice in site.issue_practices(issue):
            featured.setdefault(f"practice/{practice.slug}", []).append(issue)
        award = site.issue_award(issue)
        if award is not None:
            featured.setdefault(f"award/{award.slug}", []).append(issue)
    pages.page(urls.PAGE, "index.html.j2", issues=issues, upcoming=upcoming[:10])
    for pager, issues_here in paged("issue", issues):
        pages.page(pager.path + urls.PAGE, "issues.html.j2", pager=pager, issues=issues_here)
    # Upcoming events first (soonest first), then past ones (newest first), in one sequence.
    timeline = [(True, event) for event in upcoming] + [(False, event) for event in past]
    for pager, events_here in paged("event", timeline):
        coming_here = [event for is_coming, event in events_here if is_coming]
        past_here = [event for is_coming, event in events_here if not is_coming]
        pages.page(
            pager.path + urls.PAGE,
            "events.html.j2",
            pager=pager,
            upcoming=coming_here,
            past=past_here,
        )
    practices = sorted(site.practices.values(), key=lambda p: (p.title, p.slug))
    for pager, practices_here in paged("practice", practices):
        pages.page(
            pager.path + urls.PAGE, "practices.html.j2", pager=pager, practices=practices_here
        )
    awards = sorted(site.awards.values(), key=lambda a: (a.year, a.slug), reverse=True)
    for pager, awards_here in paged("award", awards):
        pages.page(pager.path + urls.PAGE, "awards.html.j2", pager=pager, awards=awards_here)
    for issue in issues:
        pages.item(
            issue,
            "issue.html.j2",
            events=site.issue_events(issue, config.tz),
            practices=site.issue_practices(issue),
            award=site.issue_award(issue),
        )
    for kind, template in (("event", "event"), ("practice", "practice"), ("award", "award")):
        for item in site.by_kind(kind).values():
            # Asked first: another edition has pages for its few translated items only.
            if has_page(item, edition):
                pages.item(item, f"{template}.html.j2", issues=featured.get(item.uid, []))
    if not edition.is_home:
        return pages.files  # a translated edition: the style sheet and static files are the root's
    style = TEMPLATES / "web" / urls.STYLE
    sheet = Files({urls.STYLE: lambda: style.read_bytes() + brand_css(config).encode()})
    pages.files.add(by_path(prints, sheet, "style"))
    static = by_path(prints, static_files(config), "static")
    for path in static:
        if path in pages.files:
            folder = config.settings.render.static_dir
            raise RenderError(f"{folder}/{path} would replace a generated page; rename it")
    pages.files.add(static)
    return pages.files


def static_files(config: Config) -> Files:
    """The files of `render.static_dir` (images …), copied unchanged; hidden files skipped."""
    folder = (config.root / config.settings.render.static_dir).resolve()
    files = Files()
    if not folder.is_dir():
        return files
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if path.is_file() and not any(part.startswith(".") for part in relative.parts):
            files[Path(relative).as_posix()] = path.read_bytes
    return files
