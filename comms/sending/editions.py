"""An issue's editions for sending: one render and one message factory per language, and the
builder that gives each recipient the edition recorded for them."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from comms.content.models import Issue, Site
from comms.core.config import Config
from comms.db.targets import Editions
from comms.mail.message import MessageFactory, OutgoingMessage, Recipient
from comms.publish.editions import edition_issue
from comms.publish.render import RenderedIssue, render_issue


def content_hash(subject: str, html: str, text: str) -> str:
    """A fingerprint of what one edition sends."""
    digest = hashlib.sha256()
    for part in (subject, html, text):
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()


@dataclass(frozen=True)
class IssueEditions:
    """Every edition of one issue, rendered once each, with a message factory per edition."""

    home: str
    rendered: dict[str, RenderedIssue]
    factories: dict[str, MessageFactory]

    @property
    def languages(self) -> Editions:
        """The editions as the ledger records them."""
        return Editions(tuple(self.factories), self.home)

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

    def edition(self, language: str) -> str:
        """The edition a person of `language` gets: theirs, else the site's."""
        return language if language in self.factories else self.home

    def build(self, recipient: Recipient) -> OutgoingMessage:
        """The recipient's message in their edition (`recipient.language` is the recorded one)."""
        return self.factories[self.edition(recipient.language)].build(recipient)


def edition_languages(config: Config) -> Editions:
    """The enabled languages as the ledger records editions."""
    return Editions(tuple(config.languages), config.home_language)


def issue_editions(config: Config, site: Site, issue: Issue, secret: str) -> IssueEditions:
    """Render every enabled language's edition of `issue` once and prepare its factory."""
    home = config.home_language
    rendered = {home: render_issue(config, site, issue)}
    for language in config.languages:
        if language != home:
            rendered[language] = edition_issue(config, site, issue, language)
    factories = {
        language: MessageFactory(config.edition(language), one, secret)
        for language, one in rendered.items()
    }
    return IssueEditions(home, rendered, factories)
