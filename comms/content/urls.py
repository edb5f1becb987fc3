"""Every address of the site from one place: item and list pages, feeds, calendars, assets and
the subscriber pages, as site paths (relative to the output root) and as absolute URLs."""

from __future__ import annotations

import posixpath
import re
from urllib.parse import urlencode

from comms.content.models import KINDS, Item
from comms.content.translation_files import has_page
from comms.core.config import Config
from comms.core.languages import Edition

#: Per-recipient placeholders in a rendered issue; the send step substitutes them in the bytes.
UNSUBSCRIBE_URL = "%%UNSUBSCRIBE_URL%%"
PREFERENCES_URL = "%%PREFERENCES_URL%%"
PLACEHOLDERS = (UNSUBSCRIBE_URL, PREFERENCES_URL)
#: Feed format → file name, in every feed folder.
FEED_NAMES = {"rss": "feed.xml", "atom": "atom.xml", "json": "feed.json"}
PAGE = "index.html"
STYLE = "style.css"
#: Where the MJML social icons are fetched from (our own host, no third party).
ICONS = "icons/"
SUBSCRIBE = "subscribe"
#: The folder of the resized copies of static images (comms.publish.images).
SIZED = "_sized/"
_SITE_LINK = re.compile(r'(\s(?:href|src)=")/(?!/)')


def item_path(kind: str, slug: str) -> str:
    """The folder of an item's page (`events/<slug>/`)."""
    return f"{KINDS[kind].folder}/{slug}/"


def page_path(item: Item) -> str:
    """The folder of an item's page (`events/<slug>/`)."""
    return item_path(item.kind, item.slug)


def list_path(kind: str) -> str:
    """The folder of a kind's list page (`events/`)."""
    return f"{KINDS[kind].folder}/"


def list_page_path(kind: str, number: int = 1) -> str:
    """The folder of page `number` of a kind's list (`events/`, then `events/page/2/` …)."""
    return list_path(kind) if number == 1 else f"{list_path(kind)}page/{number}/"


def event_calendar_path(slug: str) -> str:
    """The calendar file of one event (`events/<slug>.ics`)."""
    return f"{KINDS['event'].folder}/{slug}.ics"


def calendar_path(region: str | None = None) -> str:
    """The subscribed calendar of every event (`events.ics`) or of one region."""
    folder = KINDS["event"].folder
    return f"{folder}.ics" if region is None else f"{folder}-{region}.ics"


def feed_folder(kind: str | None = None, region: str | None = None) -> str:
    """The folder of a feed: the root (everything), a kind's, or a region's upcoming events."""
    if region is not None:
        return f"{list_path('event')}region/{region}/"
    return "" if kind is None else list_path(kind)


def feed_path(folder: str, fmt: str) -> str:
    """One file of a feed folder (`fmt` is rss, atom or json)."""
    return folder + FEED_NAMES[fmt]


def subscribe_path(edition: Edition) -> str:
    """The sign-up page in one edition (`subscribe?lang=en`; the site's own: `subscribe`)."""
    return SUBSCRIBE if edition.is_home else f"{SUBSCRIBE}?lang={edition.language}"


def confirm_path(token: str) -> str:
    """The double opt-in page of one token."""
    return f"confirm/{token}"


def unsubscribe_path(token: str = "") -> str:
    """The unsubscribe page of a token (without one: the prefix the token is appended to)."""
    return f"unsubscribe/{token}"


#: The query parameter of an unsubscribe link that names the issue the mail carried: the
#: report counts unsubscribes per issue, never per person (docs/reports.md).
ISSUE_PARAMETER = "issue"


def issue_query(slug: str) -> str:
    """The query string that names the issue a link came with (`?issue=<slug>`)."""
    return "?" + urlencode({ISSUE_PARAMETER: slug})


def click_path(slug: str, link: str) -> str:
    """The counting redirect of one link of an issue (`r/<slug>/<link id>`)."""
    return f"r/{slug}/{link}"


def preferences_path(token: str = "") -> str:
    """The preferences page of a token (without one: the prefix the token is appended to)."""
    return f"preferences/{token}"


def data_path(token: str) -> str:
    """The page of a mailed export or erasure link."""
    return f"my-data/{token}"


def sized_image_path(site_path: str, width: int) -> str:
    """A resized copy of a static image, `width` px wide (`_sized/images/x-552w.jpg`)."""
    stem, dot, suffix = site_path.rpartition(".")
    if not dot or "/" in suffix:
        stem, suffix = site_path, ""
    return f"{SIZED}{stem}-{width}w{'.' + suffix if suffix else ''}"


def relative(target: str, folder: str) -> str:
    """A site path as a link from a page in `folder` (`events/x.ics` from `events/x/`)."""
    link = posixpath.relpath(target or ".", folder or ".")
    return link + "/" if target.endswith("/") and link != "." else link


def link(site_path: str, root: str) -> str:
    """A site path (or an absolute URL, unchanged) as a link from a page `root` levels deep."""
    return site_path if "://" in site_path else root + site_path.lstrip("/")


def webcal(url: str) -> str:
    """The `webcal://` form of a calendar URL, which calendar apps subscribe to."""
    return re.sub(r"^https?://", "webcal://", url)


class Urls:
    """The absolute URLs of one site, under its base URL, for one edition's pages (the site's
    own by default)."""

    def __init__(self, config: Config, edition: Edition | None = None) -> None:
        self.config = config
        self.edition = edition
        #: Where the pages, feeds and calendars of the edition live ('' for the site's own).
        self.folder = edition.folder if edition is not None else ""

    def _own(self, item: Item) -> str:
        """The folder holding `item`'s files as linked from this edition: its own, or the
        site's ('') where the item has none in it (`translation_files.has_page`)."""
        if self.edition is None or has_page(item, self.edition):
            return self.folder
        return ""

    def absolute(self, site_path: str = "") -> str:
        """An absolute URL for a site path."""
        return self.config.url(site_path)

    def in_edition(self, site_path: str = "", edition: Edition | None = None) -> str:
        """An absolute URL for a site path of an edition (this one's by default)."""
        folder = self.folder if edition is None else edition.folder
        return self.absolute(folder + site_path)

    def home(self) -> str:
        """The start page (of this edition)."""
        return self.in_edition("")

    def item(self, item: Item, edition: Edition | None = None) -> str:
        """An item's page: in `edition` if given, else in this edition where it has one there,
        else the original's."""
        if edition is not None:
            return self.in_edition(page_path(item), edition)
        return self.absolute(self._own(item) + page_path(item))

    def event_calendar(self, item: Item) -> str:
        """The calendar file of one event (this edition's where it has one, else the site's)."""
        return self.absolute(self._own(item) + event_calendar_path(item.slug))

    def calendar(self, region: str | None = None) -> str:
        """The subscribed calendar of every event or of one region."""
        return self.in_edition(calendar_path(region))

    def feed(self, folder: str, fmt: str) -> str:
        """One file of a feed folder."""
        return self.in_edition(feed_path(folder, fmt))

    def asset(self, src: str) -> str:
        """An image or other asset: site paths become absolute, absolute URLs stay."""
        return src if "://" in src else self.absolute(src)

    def icons(self) -> str:
        """Where the e-mail's social icons live."""
        return self.absolute(ICONS)

    def subscribe(self) -> str:
        """The sign-up page."""
        return self.absolute(SUBSCRIBE)

    def confirm(self, token: str) -> str:
        """The double opt-in link of one token."""
        return self.absolute(confirm_path(token))

    def unsubscribe(self, token: str = "") -> str:
        """The unsubscribe link of one token (without one: its prefix)."""
        return self.absolute(unsubscribe_path(token))

    def preferences(self, token: str = "") -> str:
        """The preferences link of one token (without one: its prefix)."""
        return self.absolute(preferences_path(token))

    def data(self, token: str) -> str:
        """A mailed export or erasure link."""
        return self.absolute(data_path(token))

    def absolute_links(self, html: str) -> str:
        """Make site-relative links (`href="/x"`, `src="/x"`) absolute: mail clients and feed
        readers have no base URL."""
        return _SITE_LINK.sub(lambda m: m.group(1) + self.absolute(""), html)
