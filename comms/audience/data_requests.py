"""Links by purpose: the revocable preferences link, and export and erasure confirmed through
a short-lived, single-use link mailed to the address (a forwarded newsletter hands out none)."""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

from comms.audience.mailer import Postbox
from comms.audience.read_only import refuse_if_read_only
from comms.content.urls import Urls
from comms.core.clock import now_utc
from comms.core.config import Config
from comms.core.errors import BadToken, ExpiredToken, MessageError
from comms.core.languages import Edition, site_editions
from comms.core.settings import Subscribe
from comms.core.transport_url import transport_folder
from comms.db.people import Subscriber
from comms.db.store import Store
from comms.mail.message import OutgoingMessage, build_transactional, sendable_address
from comms.mail.tokens import Link, make_token, read_link
from comms.mail.transports import FileTransport
from comms.publish.render import render_link_mail

#: Export and erasure links mailed per person and hour, at most; further requests get the
#: same page and no mail (a forwarded settings link must not flood the owner's mailbox).
LINKS_PER_HOUR = 3
#: What a mailed data link may do.
DATA_PURPOSES = ("export", "erase")


class UsedLink(BadToken):
    """A single-use link was used before (or closed by "log out all links")."""


class RevokedLink(BadToken):
    """A revocable link was made before the person logged out all links."""


class DataRequests:
    """The preferences link and the data rights behind it; mixed into `Subscriptions`."""

    config: Config
    store: Store
    mailer: Postbox
    secret: str
    settings: Subscribe

    # -- the preferences link --------------------------------------------------------------

    def preferences_token(self, person: Subscriber) -> str:
        """The preferences token of a person (as in every newsletter), of their key version."""
        return make_token(self.secret, "preferences", person.uid, person.link_version)

    def profile(self, token: str) -> Subscriber | None:
        """The person a preferences link names (BadToken when forged, RevokedLink)."""
        return self._current(read_link(self.secret, "preferences", token))

    def _current(self, link: Link) -> Subscriber | None:
        person = self.store.by_uid(link.uid)
        if person is not None and person.link_version != link.version:
            raise RevokedLink("the link is no longer valid")
        return person

    def _mail_edition(self, language: str) -> Edition:
        """The edition a mail to a person of `language` is written in."""
        return site_editions(self.config).for_reader(language)

    def _mail(self, person: Subscriber, kind: str, url: str, minutes: int | None = None) -> None:
        config, edition = self.config, self._mail_edition(person.language)
        subject, html, text = render_link_mail(config, kind, url, minutes, edition)
        self._post(build_transactional(config, person.email, subject, html, text, edition))

    def _post(self, message: OutgoingMessage) -> None:
        """Hand `message` to the mailer; never inside a request that may only read."""
        refuse_if_read_only("a mail")
        self.mailer.submit(message)

    def revoke_links(self, token: str) -> Subscriber | None:
        """Log out all links of the person and mail them a new preferences link.

        Every preferences link and open export or erasure link made before stops working;
        the one-click unsubscribe in mails already sent keeps working.
        """
        person = self.profile(token)
        if person is None:
            return None
        version = self.store.links.revoke(person.id, now_utc())
        fresh = make_token(self.secret, "preferences", person.uid, version)
        self._mail(person, "preferences", Urls(self.config).preferences(fresh))
        return person

    # -- export and erasure ----------------------------------------------------------------

    def request_data_link(self, token: str, purpose: str) -> Subscriber | None:
        """Mail a single-use `purpose` link (export, erase) to the address of the preferences
        link `token`; nothing changes until it is used. None when the link names nobody."""
        if purpose not in DATA_PURPOSES:
            raise ValueError(f"unknown data request {purpose!r}")
        person = self.profile(token)
        if person is None:
            return None
        now = now_utc()
        if self.store.links.opened_since(person.id, now - timedelta(hours=1)) >= LINKS_PER_HOUR:
            return person
        minutes = self.settings.data_link_minutes
        nonce = secrets.token_urlsafe(16)
        self.store.links.open(person.id, purpose, nonce, now, now + timedelta(minutes=minutes))
        link = make_token(self.secret, purpose, person.uid, person.link_version, nonce)
        self._mail(person, purpose, Urls(self.config).data(link), minutes)
        return person

    def data_link(self, token: str) -> tuple[str, Subscriber, Link]:
        """(purpose, person, link) of a mailed link that may still be used.

        BadToken when forged or the person is gone, ExpiredToken when too old, RevokedLink,
        UsedLink when it was used before.
        """
        max_age = self.settings.data_link_minutes * 60
        for purpose in DATA_PURPOSES:
            try:
                link = read_link(self.secret, purpose, token, max_age=max_age)
            except ExpiredToken:
                raise
            except BadToken:
                continue  # the salt is the purpose: try the other one
            person = self._current(link)
            if person is None:
                raise BadToken("the link is invalid")
            if not self.store.links.is_open(person.id, purpose, link.nonce, now_utc()):
                raise UsedLink("the link has been used")
            return purpose, person, link
        raise BadToken("the link is invalid")

    def use_data_link(self, token: str) -> tuple[str, dict[str, Any] | None]:
        """Use a mailed link once: ("export", everything stored) or ("erase", None)."""
        purpose, person, link = self.data_link(token)
        if not self.store.links.use(person.id, purpose, link.nonce, now_utc()):
            raise UsedLink("the link has been used")
        if purpose == "erase":
            # Only the suppression hash stays (docs/requirements.md L12).
            erase_person(self.config, self.store, person.email)
            return purpose, None
        return purpose, self.report(person)

    def report(self, person: Subscriber) -> dict[str, Any] | None:
        """Everything stored about the person (GDPR Art. 15/20), with the consent text."""
        report = self.store.report(person.email)
        if report is None:
            return None
        versions = {row.get("consent_version") for row in report.get("consent", [])}
        if self.settings.consent_version in versions:
            report["consent_text"] = {self.settings.consent_version: self.settings.consent_text}
        return report


def erase_person(config: Config, store: Store, email: str) -> dict[str, int]:
    """Erase a person (GDPR Art. 17) wherever comms keeps them: their records, of which only
    the suppression hash stays (`Store.erase`), and their mails in the configured file outbox,
    which carry the address and live links (`outbox` in the counts)."""
    person = store.find(email)
    removed = store.erase(email)
    folder = transport_folder(config.transport_url, config.root)
    removed["outbox"] = 0
    if person is not None and folder is not None:
        try:
            address = sendable_address(person.email)
        except MessageError:  # never sendable, so never written either
            return removed
        removed["outbox"] = FileTransport(folder).forget(person.uid, address)
    return removed
