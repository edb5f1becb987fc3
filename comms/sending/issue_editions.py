"""An issue's editions for sending: one render and one message factory per language, and the
builder that gives each recipient the edition recorded for them."""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field

from comms.content.models import Issue, Site
from comms.core.config import Config
from comms.core.errors import EmptyView
from comms.core.languages import Editions, site_editions
from comms.mail.message import MessageFactory, OutgoingMessage, Recipient
from comms.publish.digest_sections import Reader, sections, view_key
from comms.publish.edition_build import edition_issue
from comms.publish.render import RenderedIssue, render_issue


def content_hash(subject: str, html: str, text: str) -> str:
    """A fingerprint of what one edition sends."""
    digest = hashlib.sha256()
    for part in (subject, html, text):
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()


#: Why a reader with an empty view of a digest issue is skipped (stored with the delivery).
EMPTY_VIEW = "nothing in this digest for their regions and topics"


@dataclass(frozen=True)
class Personal:
    """A digest issue's views: each distinct set of sections rendered once per edition, on
    first use (readers of the same regions and topics share it), by the send's threads."""

    config: Config
    site: Site
    issue: Issue
    secret: str
    factories: dict[tuple[object, ...], MessageFactory] = field(default_factory=dict)
    #: The factory per stored choice, so that most recipients need no sections computed
    #: (None: the choice sees nothing, see `EmptyView`).
    chosen: dict[tuple[str, str, str], MessageFactory | None] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def factory(self, language: str, home: str, recipient: Recipient) -> MessageFactory:
        """The factory of the message this recipient's regions and topics get; `EmptyView`
        when they would get no item and no award."""
        choice = (language, recipient.regions, recipient.topics)
        if choice in self.chosen:
            found = self.chosen[choice]
        else:
            found = self.chosen[choice] = self._view(language, home, recipient)
        if found is None:
            raise EmptyView(EMPTY_VIEW)
        return found

    def _view(self, language: str, home: str, recipient: Recipient) -> MessageFactory | None:
        config, site, issue = self.config, self.site, self.issue
        reader = Reader.of(recipient.regions, recipient.topics)
        order = list(config.settings.regions)
        found_sections = sections(site, issue, config.tz, order, reader)
        if not found_sections and site.issue_award(issue) is None:
            return None
        key = (language, view_key(found_sections))
        with self.lock:
            found = self.factories.get(key)
            if found is None:
                edition = site_editions(config).for_reader(language)
                rendered = (
                    render_issue(config, site, issue, edition, reader)
                    if language == home
                    else edition_issue(config, site, issue, edition, reader)
                )
                found = self.factories[key] = MessageFactory(config, rendered, self.secret)
        return found


@dataclass(frozen=True)
class IssueEditions:
    """Every edition of one issue, rendered once each, with a message factory per edition."""

    #: The editions the site offers (the ledger records which one each person gets).
    offered: Editions
    #: Per edition language, the issue rendered in it and the factory of its messages.
    rendered: dict[str, RenderedIssue]
    factories: dict[str, MessageFactory]
    #: A digest issue's per-reader views (None: everyone gets the edition's one message).
    personal: Personal | None = None

    @property
    def home(self) -> str:
        """The language of the site's own edition."""
        return self.offered.home.language

    @property
    def fingerprint(self) -> str:
        """What the campaign sends: the site's edition's hash alone when it is the only one,
        else a hash over every edition (a new or changed translation changes it)."""
        hashes = {
            lang: content_hash(r.subject, r.html, r.text) for lang, r in self.rendered.items()
        }
        if len(hashes) == 1:
            return hashes[self.home]
        joined = "\n".join(f"{lang}:{value}" for lang, value in sorted(hashes.items()))
        return hashlib.sha256(joined.encode()).hexdigest()

    def build(self, recipient: Recipient) -> OutgoingMessage:
        """The recipient's message in their edition (`recipient.language` is the recorded one)."""
        edition = self.offered.for_reader(recipient.language)
        if self.personal is not None:
            factory = self.personal.factory(edition.language, self.home, recipient)
            return factory.build(recipient)
        return self.factories[edition.language].build(recipient)


def render_editions(config: Config, site: Site, issue: Issue) -> dict[str, RenderedIssue]:
    """`issue` rendered once in every edition the site offers, the site's first: what its
    readers get (an edition without a translation shows the original in its own frame)."""
    offered = site_editions(config)
    rendered = {offered.home.language: render_issue(config, site, issue, offered.home)}
    for edition in offered.translated:
        rendered[edition.language] = edition_issue(config, site, issue, edition)
    return rendered


def issue_editions(config: Config, site: Site, issue: Issue, secret: str) -> IssueEditions:
    """Render every offered edition of `issue` once and prepare its factory."""
    offered = site_editions(config)
    rendered = render_editions(config, site, issue)
    factories = {
        language: MessageFactory(config, one, secret) for language, one in rendered.items()
    }
    personal = Personal(config, site, issue, secret) if issue.from_digest else None
    return IssueEditions(offered, rendered, factories, personal)
