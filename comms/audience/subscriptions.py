"""Double opt-in, unsubscribe, preferences and self-service erasure: logic over the store."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from comms.audience.data_requests import DataRequests
from comms.audience.limits import DATABASE_DOWN, Unavailable, mail_limit
from comms.audience.mailer import DirectMailer, Postbox
from comms.audience.read_only import guard_engine, refuse_if_read_only
from comms.audience.subscriber_csv import subscriber_languages
from comms.content.urls import Urls
from comms.core.clock import now_utc
from comms.core.config import Config
from comms.core.errors import BadToken, MessageError

# Re-exported for the web pages, which talk to this package and never to comms.db.
from comms.db.counters import count_issue_event
from comms.db.health import read_health
from comms.db.people import Consent, NewSubscriber, Subscriber, SubscriberError
from comms.db.status import SubscriberStatus
from comms.db.store import Store
from comms.mail.message import OutgoingMessage, build_transactional, new_message_id
from comms.mail.tokens import make_token, read_token
from comms.publish.render import render_confirmation

#: Subscriber states, also for the web pages (they never import comms.db).
Status = SubscriberStatus
#: Waits (seconds) before a web sign-up whose background step found the database gone is
#: tried again; about four minutes in all, then it is logged as lost.
OUTAGE_RETRIES = (5.0, 15.0, 30.0, 60.0, 120.0)

log = logging.getLogger("comms.subscriptions")

#: How a person left through us: the `channel` of an unsubscribe event in the consent ledger
#: (bounces are recorded by the send ledger as `bounce` events).
CHANNELS = ("one-click", "link", "admin")


@dataclass(frozen=True)
class Visitor:
    """Who made a request; ip and user agent are kept only when `subscribe.keep_ip`."""

    source: str
    ip: str | None = None
    user_agent: str | None = None
    #: The consent ledger's channel of the request (`cli` for `comms subscribers add`).
    channel: str | None = None


@dataclass(frozen=True)
class SignUp:
    """What the sign-up form asks for; only the address is required (docs/requirements.md L5)."""

    email: str
    name: str | None = None
    topics: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    #: The person's language; the site's language when not given (the form does not ask).
    language: str | None = None


@dataclass(frozen=True)
class Requested:
    """What a sign-up request did; the web answers alike whatever it was (no enumeration)."""

    #: The person's status before: None for a new person, "suppressed" when the address may
    #: not be stored (erased, bounced, complained).
    before: str | None
    #: Whether a confirmation mail went out (or was queued).
    mailed: bool


class Subscriptions(DataRequests):
    """The subscriber's own actions, each one a method; tokens in links prove who acts."""

    def __init__(self, config: Config, store: Store, mailer: Postbox) -> None:
        self.config = config
        self.store = store
        self.mailer = mailer
        self.secret = store.secret
        self.settings = config.settings.subscribe
        mailer.on_failure = self._mail_failed
        #: Confirmation mails per mailbox (sign-ups and new-mail requests alike).
        self.mail_limit = mail_limit(store)
        # Inside `comms.audience.read_only.read_only()` (every GET and HEAD) nothing is written.
        guard_engine(store.engine)

    def _mail_failed(self, message: OutgoingMessage, error: str) -> None:
        """Record in the person's ledger that their confirmation mail could not be sent."""
        # Recorded as a bounce of the confirmation channel: the person stays pending (and is
        # purged like any unconfirmed sign-up), the record shows why no mail arrived.
        self.store.note(message.recipient, self._not_sent(message.message_id, error))

    def _not_sent(self, message_id: str, error: str) -> Consent:
        return Consent(
            "bounce",
            self.mailer.source,
            channel="confirmation",
            note=f"confirmation mail {message_id} not sent: {error}"[:500],
        )

    # -- helpers ---------------------------------------------------------------------------

    def _event(self, action: str, visitor: Visitor, **extra: Any) -> Consent:
        if visitor.channel is not None:
            extra.setdefault("channel", visitor.channel)
        if not self.settings.keep_ip:
            return Consent(action=action, source=visitor.source, **extra)
        agent = (visitor.user_agent or "")[:500] or None
        return Consent(action, visitor.source, ip=visitor.ip, user_agent=agent, **extra)

    def confirm_url(self, uid: str) -> str:
        """The link of a confirmation mail (expires after `subscribe.confirm_days`)."""
        return Urls(self.config).confirm(make_token(self.secret, "confirm", uid))

    def _confirmation(
        self, email: str, uid: str, language: str, message_id: str | None = None
    ) -> OutgoingMessage:
        """The confirmation mail in the person's language (the site's where it has no edition)."""
        config, edition = self.config, self._mail_edition(language)
        subject, html, text = render_confirmation(config, self.confirm_url(uid), edition)
        return build_transactional(
            config, email, subject, html, text, edition, message_id=message_id
        )

    def _max_age(self) -> int:
        return self.settings.confirm_days * 86400

    # -- sign-up and confirmation ----------------------------------------------------------

    def request(self, form: SignUp, visitor: Visitor, even: bool = False) -> Requested:
        """Sign-up: store a pending person and send the confirmation mail.

        Known, active and suppressed addresses get the same answer on the web (no enumeration):
        an active subscriber gets no mail, a suppressed address nothing at all; a pending or
        unsubscribed person gets a fresh confirmation mail. The result says which it was.
        `even` (the web's background work): a mailbox past its mail limit gets nothing, and a
        request that mails nobody still writes its confirmation mail (then drops it), so that
        every sign-up costs the same work (docs/requirements.md L15).
        """
        settings = self.config.settings
        topics = tuple(t for t in dict.fromkeys(form.topics) if t in settings.topics)
        regions = tuple(r for r in dict.fromkeys(form.regions) if r in settings.regions)
        allowed = subscriber_languages(self.config)
        language = form.language if form.language in allowed else self.config.home_language
        message_id = new_message_id(self.config)
        if even and self.mail_limit.hit(form.email):
            return self._unmailed(form.email, language, None, even)
        person = NewSubscriber(form.email, form.name, language, topics, regions)
        chosen = f"topics: {' '.join(topics) or '-'}; regions: {' '.join(regions) or '-'}"
        event = self._event(
            "request",
            visitor,
            consent_version=self.settings.consent_version,
            note=f"{chosen}; confirmation mail {message_id}",
        )
        known = self.store.find(form.email)
        before = None if known is None else str(known.status)
        if known is None:
            try:
                known = self.store.add_pending(person, event)
            except SubscriberError:
                # suppressed (erased, bounced, complained): no mail, same answer
                return self._unmailed(form.email, language, "suppressed", even)
        elif known.status in (Status.PENDING, Status.UNSUBSCRIBED):
            self.store.request_again(known.uid, event)
        else:  # active: nothing to do, no mail
            return self._unmailed(form.email, language, before, even)
        try:
            confirmation = self._confirmation(known.email, known.uid, language, message_id)
        except MessageError as exc:
            # No mail can be written for this address: recorded like a failed send, and the
            # visitor gets the usual answer rather than an error page.
            self.store.note(known.email, self._not_sent(message_id, str(exc)))
            return Requested(before, mailed=False)
        self._post(confirmation)
        return Requested(before, mailed=True)

    def _unmailed(self, email: str, language: str, before: str | None, even: bool) -> Requested:
        """A request that mails nobody; with `even`, after one write transaction and the mail
        it would have been (the rendering is most of a sign-up's work: without it, requests
        for active addresses were quicker, and slowed the requests that followed them less)."""
        if even:
            # In place of the person's row: a hit of a mailbox that does not exist (a keyed
            # hash in rate_hits, swept when its hour has passed).
            self.mail_limit.hit(f"{secrets.token_hex(8)}@decoy.invalid")
            try:
                self._confirmation(email, secrets.token_urlsafe(12), language)
            except MessageError:
                pass
        return Requested(before, mailed=False)

    def request_later(self, form: SignUp, visitor: Visitor) -> None:
        """Sign-up from the web: queue the request and decide in the background.

        The answer then does the same work for every address, new, pending, active or
        suppressed, and takes the same time (docs/requirements.md L15): whether an address is
        on the list is personal data. The background work is the same for every address too:
        the mailbox's mail limit counted, the person looked up, a confirmation mail written
        (`request(even=True)`), so the requests after a sign-up do not tell either.
        """
        refuse_if_read_only("a sign-up")
        self.mailer.defer(partial(self._request_quietly, form, visitor))

    def _request_quietly(self, form: SignUp, visitor: Visitor, attempt: int = 0) -> None:
        try:
            self.request(form, visitor, even=True)
        except (Unavailable, *DATABASE_DOWN) as exc:
            # The database went away after the answer said "please confirm": try again
            # while it is short, rather than lose the sign-up (kept in memory only).
            if attempt < len(OUTAGE_RETRIES):
                if attempt == 0:
                    log.warning("sign-up waits for the database: %s", type(exc).__name__)
                retry = partial(self._request_quietly, form, visitor, attempt + 1)
                self.mailer.defer(retry, OUTAGE_RETRIES[attempt])
                return
            log.error("sign-up request not recorded: the database did not come back")
        except Exception as exc:  # nobody waits for the answer; the log has it, not the address
            log.error("sign-up request not recorded: %s", type(exc).__name__)

    def pending(self, token: str) -> Subscriber | None:
        """The person a confirmation token names, if it is valid (ExpiredToken, BadToken)."""
        uid = read_token(self.secret, "confirm", token, max_age=self._max_age())
        return self.store.by_uid(uid)

    def confirm(self, token: str, visitor: Visitor) -> bool:
        """Confirm a sign-up; False (nothing changed) when already confirmed or superseded.

        An unsubscribed person is confirmed only after a new sign-up request: an old link used
        again after the unsubscribe changes nothing.
        """
        uid = read_token(self.secret, "confirm", token, max_age=self._max_age())
        person = self.store.by_uid(uid)
        if person is None:
            raise BadToken("the link is invalid")
        if person.status == Status.PENDING or (
            person.status == Status.UNSUBSCRIBED and self._last_action(person) == "request"
        ):
            event = self._event("confirm", visitor, consent_version=self.settings.consent_version)
            self.store.confirm(uid, event)
            return True
        return False

    def _last_action(self, person: Subscriber) -> str | None:
        report = self.store.report(person.email) or {}
        events = report.get("consent") or [{}]
        return str(events[-1].get("action"))

    def resend_max_age(self) -> int:
        """How old (seconds) a confirmation link may be to ask for a new mail with it: one
        confirmation window past its expiry (the expired page offers the new mail)."""
        return 2 * self._max_age()

    def check_resend(self, token: str) -> None:
        """BadToken for a forged link, ExpiredToken for one past `resend_max_age()`."""
        read_token(self.secret, "confirm", token, max_age=self.resend_max_age())

    def resend(self, token: str) -> bool:
        """A new confirmation mail for an expired link, if that sign-up is still waiting, the
        link at most `resend_max_age()` old and the mailbox within its mail limit (the same
        count as sign-ups). False when nothing was sent."""
        try:
            uid = read_token(self.secret, "confirm", token, max_age=self.resend_max_age())
        except BadToken:
            return False
        person = self.store.by_uid(uid)
        if person is None or person.status not in (Status.PENDING, Status.UNSUBSCRIBED):
            return False
        if self.mail_limit.hit(person.email):
            return False
        self._post(self._confirmation(person.email, person.uid, person.language))
        return True

    def resend_later(self, token: str) -> None:
        """`resend` from the web, in the background: the answer is the same either way."""
        refuse_if_read_only("a new confirmation mail")
        self.mailer.defer(partial(self._resend_quietly, token))

    def _resend_quietly(self, token: str) -> None:
        try:
            self.resend(token)
        except Exception as exc:  # as for sign-ups: the log has the kind, not the address
            log.error("new confirmation mail not sent: %s", type(exc).__name__)

    # -- links in every newsletter ---------------------------------------------------------

    def _subscriber(self, purpose: str, token: str) -> Subscriber | None:
        """The person behind a newsletter link; None for proofs and erased people."""
        return self.store.by_uid(read_token(self.secret, purpose, token))

    def unsubscribe(self, token: str, channel: str, visitor: Visitor, issue: str = "") -> bool:
        """Unsubscribe the person the token names; False when there was nothing to do.

        `issue` is the slug the link carried: the issue's unsubscribe counter goes up by one
        (only for an issue that was sent), and nothing links the count to the person.
        """
        if channel not in CHANNELS:
            raise ValueError(f"unknown unsubscribe channel {channel!r}")
        person = self._subscriber("unsubscribe", token)
        if person is None or person.status not in (Status.ACTIVE, Status.PENDING):
            return False
        self.store.unsubscribe(person.uid, self._event("unsubscribe", visitor, channel=channel))
        if issue:
            count_issue_event(self.store.engine, "unsubscribe", issue, "", now_utc().date())
        return True

    def profile_for_unsubscribe(self, token: str) -> Subscriber | None:
        """The person an unsubscribe link names (BadToken when forged)."""
        return self._subscriber("unsubscribe", token)

    def unsubscribe_token(self, person: Subscriber) -> str:
        """The unsubscribe token of a person (as in every newsletter)."""
        return make_token(self.secret, "unsubscribe", person.uid)

    def health(self) -> tuple[bool, dict[str, Any]]:
        """For /healthz: whether all is well, and the report (`comms.db.health`: the database,
        the scheduler's holder, live senders per campaign, stalled campaigns)."""
        stall = timedelta(minutes=self.config.settings.schedule.stall_minutes)
        report = read_health(self.store.engine, now_utc(), stall)
        return report.ok, report.as_json()

    def update(
        self, token: str, topics: list[str], regions: list[str], language: str
    ) -> Subscriber | None:
        """Save topics, regions and language; unknown slugs are ignored."""
        person = self.profile(token)
        if person is None:
            return None
        settings = self.config.settings
        chosen_topics = tuple(t for t in dict.fromkeys(topics) if t in settings.topics)
        chosen_regions = tuple(r for r in dict.fromkeys(regions) if r in settings.regions)
        lang = language if language in subscriber_languages(self.config) else person.language
        return self.store.update_preferences(person.uid, chosen_topics, chosen_regions, lang)


def purge_unconfirmed(
    config: Config, store: Store, now: datetime | None = None, days: int | None = None
) -> int:
    """Delete sign-ups unconfirmed after `subscribe.purge_pending_days` (docs/requirements.md L4).

    Counts from the person's latest request; returns how many were deleted. The scheduler
    runs it daily; `comms subscribers purge` runs it by hand.
    """
    now = now or now_utc()
    days = config.settings.subscribe.purge_pending_days if days is None else days
    return store.purge_pending(now - timedelta(days=days))


def reduce_ended(
    config: Config, store: Store, now: datetime | None = None, days: int | None = None
) -> int:
    """Reduce subscriptions ended more than `subscribe.retention_days` ago to the proof of
    consent and its withdrawal plus the suppression hash (see comms.db.privacy); returns how
    many. The scheduler runs it daily with the purge."""
    now = now or now_utc()
    days = config.settings.subscribe.retention_days if days is None else days
    return store.reduce_ended(now - timedelta(days=days))


def sign_up_by_admin(config: Config, store: Store, person: NewSubscriber) -> Requested:
    """Sign a person up on their behalf: pending, with the confirmation mail sent at once.

    The same double opt-in as the web form, recorded with channel `cli`; MailNotSent when the
    transport fails (the person stays pending and the failure is in their consent ledger).
    """
    source = "comms subscribers add"
    subscriptions = Subscriptions(config, store, DirectMailer(config, source))
    form = SignUp(person.email, person.name, person.topics, person.regions, person.language)
    return subscriptions.request(form, Visitor(source, channel="cli"))


def revoke_links_by_admin(store: Store, email: str) -> int:
    """Log out all links of a person on their behalf (a leaked link); the new key version.

    No mail goes out: the next newsletter carries links of the new version.
    """
    person = store.find(email)
    if person is None:
        raise SubscriberError(f"{email} is not a subscriber")
    return store.links.revoke(person.id, now_utc())


def unsubscribe_by_admin(store: Store, email: str, note: str | None = None) -> Subscriber:
    """Unsubscribe a person on their behalf (a letter, a phone call): channel `admin`."""
    person = store.find(email)
    if person is None:
        raise SubscriberError(f"{email} is not a subscriber")
    if person.status not in (Status.ACTIVE, Status.PENDING):
        raise SubscriberError(f"{email} is already {person.status}")
    event = Consent("unsubscribe", "comms subscribers unsubscribe", channel="admin", note=note)
    return store.unsubscribe(person.uid, event)
