"""The configuration's section models (site, sender, mail, delivery …) and their checks."""

from __future__ import annotations

import re
from datetime import time
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from comms.core.addresses import check_address

#: Every secret of the configuration, as its key path. Each comes only from the environment
#: (COMMS_ and the path in capitals joined by "_": COMMS_SMTP_PASSWORD), never from a file, is
#: read by the settings alone and is masked in logs (`Config.secret_values`, comms.core.logs).
SECRETS: tuple[tuple[str, ...], ...] = (
    ("secret_key",),
    ("smtp", "password"),
    ("api", "key"),
    ("bounces", "password"),
    ("bounces", "webhook_secret"),
)


def _check_email(value: str, sender: bool = False) -> str:
    """The address in email-validator's normalised form; a sender's needs an ASCII local part."""
    try:
        checked = check_address(value)
    except ValueError as exc:
        raise ValueError(f"not a valid e-mail address: {exc}") from None
    if sender and not checked.local_part.isascii():
        # Mail from it would need SMTPUTF8 of every receiving server (RFC 6531).
        raise ValueError("the part before the @ must be ASCII for an address we send from")
    return checked.normalized


def _words(value: Any) -> Any:
    """A list given as one string (from the environment: "https://a, https://b") as a list."""
    if isinstance(value, str):
        return [part for part in value.replace(",", " ").split() if part]
    return value


def _check_https(value: str) -> str:
    parts = urlsplit(value)
    local = parts.scheme == "http" and parts.hostname in ("localhost", "127.0.0.1", "::1")
    if not parts.netloc or not (parts.scheme == "https" or local):
        raise ValueError("must be an absolute https URL")
    return value


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Site(_Section):
    """The public face: name, address and locale of the site."""

    name: str = "Niedersachsen packt an"
    base_url: str = "https://newsletter.example.org"
    #: The language of the originals (`content/<kind>/<slug>.md`) and of the site's root.
    language: str = "de"
    timezone: str = "Europe/Berlin"
    description: str = (
        "Neuigkeiten, Termine und gute Beispiele aus dem Bündnis „Niedersachsen packt an“"
        " für die Integration geflüchteter Menschen."
    )

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        if urlsplit(value).path.strip("/") or urlsplit(value).query:
            # Every link in a mail must be answered by `comms serve`, which serves at the root.
            raise ValueError(
                "must be the root of a host, without a path (e.g. https://news.example.org)"
            )
        return _check_https(value).rstrip("/")

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone '{value}'") from None
        return value


#: A language tag as the configuration and the content file names write it (`de`, `de-x-ls`).
LANGUAGE_TAG = re.compile(r"^[a-z]{2,3}(?:-[a-z0-9]{1,8})*$")


class Language(_Section):
    """One language an edition may be written in: its label on pages and its direction."""

    label: str
    direction: Literal["ltr", "rtl"] = "ltr"


def check_languages(languages: dict[str, Language], site_language: str) -> None:
    """The configured languages must be tags and include the site's language."""
    for tag in languages:
        if not LANGUAGE_TAG.match(tag):
            raise ValueError(f"'{tag}' is not a language tag (lowercase, e.g. en, de-x-ls)")
    if languages and site_language not in languages:
        raise ValueError(f"must include the site language '{site_language}'")


class Sender(_Section):
    """Who the newsletter comes from."""

    name: str = "Bündnis „Niedersachsen packt an“"
    address: str = "newsletter@example.org"
    reply_to: str | None = "info@example.org"
    list_id: str = "newsletter.niedersachsen-packt-an.example.org"

    @field_validator("address", "reply_to")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        return None if value is None else _check_email(value, sender=True)

    @field_validator("list_id")
    @classmethod
    def _list_id(cls, value: str) -> str:
        labels = value.split(".")
        ok = len(labels) >= 2 and all(
            label and all(c.isascii() and (c.isalnum() or c == "-") for c in label)
            for label in labels
        )
        if not ok:
            raise ValueError("must be a dot-atom under a domain you control, e.g. news.example.org")
        return value


class Organisation(_Section):
    """The imprint data every mail footer carries (§ 5 DDG)."""

    name: str = "Niedersächsische Staatskanzlei – Geschäftsstelle „Niedersachsen packt an“"
    street: str = "Musterstraße 1"
    postcode: str = "30159"
    city: str = "Hannover"
    email: str = "info@example.org"
    phone: str | None = None
    imprint_url: str = "https://example.org/impressum"
    privacy_url: str = "https://example.org/datenschutz"

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        return _check_email(value)

    @field_validator("imprint_url", "privacy_url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _check_https(value)


class Render(_Section):
    """How e-mails and archive pages look, and where static files (images) come from."""

    accent_color: str = "#00566b"
    logo: str | None = None
    static_dir: str = "static"
    #: Hosts besides the site's own that e-mails and pages may load images and media from.
    embed_hosts: list[str] = []

    @field_validator("embed_hosts", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        return _words(value)

    @field_validator("embed_hosts")
    @classmethod
    def _hosts(cls, value: list[str]) -> list[str]:
        for host in value:
            if not re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?", host):
                raise ValueError(f"'{host}' is not a host name (write e.g. cdn.example.org)")
        return [host.lower() for host in value]

    @field_validator("accent_color")
    @classmethod
    def _colour(cls, value: str) -> str:
        if not re.fullmatch(r"#[0-9a-fA-F]{6}", value):
            raise ValueError("must be a colour like #00566b")
        if contrast(value, "#ffffff") < 4.5:
            raise ValueError("too light: needs a contrast of at least 4.5:1 against white")
        return value.lower()


def contrast(first: str, second: str) -> float:
    """WCAG 2 contrast ratio of two #rrggbb colours."""

    def luminance(colour: str) -> float:
        channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
        linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    light, dark = sorted((luminance(first), luminance(second)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


class Mail(_Section):
    """Optional headers of every newsletter message (docs/requirements.md E7, E11, E12)."""

    feedback_id: str | None = None
    unsubscribe_mailto: str | None = None
    precedence: Literal["bulk", "list", "none"] = "bulk"

    @field_validator("feedback_id")
    @classmethod
    def _feedback_id(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"([^:\s]+:){0,3}[A-Za-z0-9]{5,15}", value):
            raise ValueError("must look like 'a:b:c:SenderId' (SenderId 5–15 letters/digits)")
        return value

    @field_validator("unsubscribe_mailto")
    @classmethod
    def _mailto(cls, value: str | None) -> str | None:
        return None if value is None else _check_email(value)


class Smtp(_Section):
    """SMTP transport settings; the password comes only from COMMS_SMTP_PASSWORD."""

    timeout: Annotated[float, Field(gt=0)] = 30.0
    max_messages_per_connection: Annotated[int, Field(ge=1)] = 100
    ca_file: str | None = None
    username: str | None = None
    helo_name: str | None = None
    pipelining: bool = True
    password: str | None = Field(default=None, repr=False)


class Dkim(_Section):
    """Optional DKIM signing: all three keys or none; the key file lives outside the repo."""

    selector: str | None = None
    domain: str | None = None
    key_file: str | None = None

    @model_validator(mode="after")
    def _all_or_none(self) -> Dkim:
        given = [self.selector, self.domain, self.key_file]
        if any(given) and not all(given):
            raise ValueError("set selector, domain and key_file together (or none of them)")
        return self


class Api(_Section):
    """HTTP e-mail API transport settings; the key comes only from COMMS_API_KEY."""

    timeout: Annotated[float, Field(gt=0)] = 30.0
    max_attempts: Annotated[int, Field(ge=1)] = 3
    max_wait: Annotated[float, Field(ge=0)] = 60.0
    key: str | None = Field(default=None, repr=False)


class Delivery(_Section):
    """How `comms send` paces, retries and gives up (docs/requirements.md S6, S9)."""

    concurrency: int = Field(default=4, ge=1, le=64)
    rate: float = Field(default=0.0, ge=0)
    batch_size: int = Field(default=500, ge=1, le=10_000)
    retry_attempts: int = Field(default=2, ge=0, le=10)
    retry_backoff_seconds: float = Field(default=300.0, ge=0)
    retry_interval_minutes: float = Field(default=30.0, gt=0)
    retry_max_interval_hours: float = Field(default=4.0, gt=0)
    give_up_after_hours: float = Field(default=96.0, gt=0)
    lease_seconds: int = Field(default=300, ge=10)
    #: Four eyes: `comms send` and the scheduler send only a version someone approved.
    require_approval: bool = False


class Feeds(_Section):
    """Feeds and calendars: WebSub hubs to notify, feed length, calendar look-back."""

    hubs: list[str] = []
    max_items: int = 50
    calendar_past_days: int = 180

    @field_validator("hubs", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        return _words(value)

    @field_validator("hubs")
    @classmethod
    def _hubs(cls, value: list[str]) -> list[str]:
        return [_check_https(hub) for hub in value]

    @field_validator("max_items")
    @classmethod
    def _max_items(cls, value: int) -> int:
        if value < 1:
            raise ValueError("must be at least 1")
        return value

    @field_validator("calendar_past_days")
    @classmethod
    def _past_days(cls, value: int) -> int:
        if value < 0:
            raise ValueError("must not be negative")
        return value


class Subscribe(_Section):
    """Sign-up, double opt-in and the subscriber pages (docs/requirements.md L1–L6, L15)."""

    confirm_days: Annotated[int, Field(ge=1, le=30)] = 7
    purge_pending_days: Annotated[int, Field(ge=1, le=30)] = 7
    #: Days after which an ended subscription is reduced to the proof of consent.
    retention_days: Annotated[int, Field(ge=1, le=3650)] = 30
    #: Minutes a mailed export or erasure link works (once).
    data_link_minutes: Annotated[int, Field(ge=5, le=1440)] = 60
    rate_limit: Annotated[int, Field(ge=1)] = 10
    rate_window: Annotated[int, Field(ge=1)] = 600
    keep_ip: bool = False
    confirm_address: str = "bestaetigung@example.org"
    consent_version: str = "2026-11"
    consent_text: str = (
        "Ja, ich möchte den Newsletter des Bündnisses „Niedersachsen packt an“ per E-Mail "
        "erhalten. Meine Einwilligung kann ich jederzeit widerrufen, zum Beispiel über den "
        "Abmeldelink in jedem Newsletter."
    )

    @field_validator("confirm_address")
    @classmethod
    def _email(cls, value: str) -> str:
        return _check_email(value, sender=True)

    @field_validator("consent_version", "consent_text")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value.strip()


class Schedule(_Section):
    """What `comms serve` runs by itself: sends, refresh, retries, housekeeping, the lease."""

    stale_after_hours: float = Field(default=6.0, gt=0)
    refresh_minutes: float = Field(default=15.0, gt=0)
    retry_minutes: float = Field(default=5.0, gt=0)
    housekeeping_time: time = time(2, 30)
    lease_seconds: int = Field(default=60, ge=10)


class Bounces(_Section):
    """Bounces and complaints: the VERP envelope sender, the bounce mailbox, the soft-bounce rule.

    The IMAP password (`COMMS_BOUNCES_PASSWORD`) and the webhook secret
    (`COMMS_BOUNCES_WEBHOOK_SECRET`) come only from the environment.
    """

    verp: bool = True
    domain: str | None = None
    local_part: str = "bounces"
    mailbox: str | None = None
    ca_file: str | None = None
    processed_folder: str = "Processed"
    soft_limit: int = Field(default=3, ge=1, le=100)
    soft_days: int = Field(default=90, ge=1, le=3650)
    fetch_minutes: float = Field(default=5.0, gt=0)
    password: str | None = Field(default=None, repr=False)
    webhook_secret: str | None = Field(default=None, repr=False)

    @field_validator("domain")
    @classmethod
    def _domain(cls, value: str | None) -> str | None:
        if value is None:
            return None
        labels = value.strip().rstrip(".").split(".")
        try:
            ascii_labels = [label.encode("idna").decode("ascii") for label in labels]
        except UnicodeError:
            ascii_labels = []
        ok = len(labels) >= 2 and all(
            label and re.fullmatch(r"[A-Za-z0-9-]{1,63}", label) for label in ascii_labels
        )
        if not ok:
            raise ValueError("must be a domain name, e.g. bounces.example.org")
        return value.strip().rstrip(".").lower()

    @field_validator("local_part")
    @classmethod
    def _local_part(cls, value: str) -> str:
        if not re.fullmatch(r"[a-z0-9][a-z0-9._-]{0,29}", value):
            raise ValueError("must be 1–30 lowercase letters, digits, '.', '_' or '-' (no '+')")
        return value

    @field_validator("mailbox")
    @classmethod
    def _mailbox(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme == "imaps" and parts.hostname and parts.username:
            if parts.password is not None:
                raise ValueError("the password comes only from COMMS_BOUNCES_PASSWORD")
            return value
        if parts.scheme == "maildir" and value.removeprefix("maildir://").strip("/"):
            return value
        raise ValueError("must be imaps://USER@HOST[:PORT]/FOLDER or maildir:///PATH")

    @field_validator("processed_folder")
    @classmethod
    def _folder(cls, value: str) -> str:
        if not value.strip() or not value.isascii() or "/" in value:
            raise ValueError("must be a plain ASCII folder name")
        return value.strip()
