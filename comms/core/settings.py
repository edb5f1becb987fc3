"""The configuration's section models (site, sender, mail, delivery …) and their checks."""

from __future__ import annotations

import ast
import inspect
import re
import textwrap
from collections.abc import Collection
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
    ("alerts", "webhook"),
    ("metrics", "token"),
    ("desk_oidc", "client_secret"),
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


def settings_text(value: Any, skip: Collection[str] = (), at: str = "") -> str:
    """A text of settings (a section, a value) that changes whenever they do, for digests:
    every field by name, `repr` of each plain value, without the keys in `skip` (dotted,
    `render.workers`). Made without pydantic's serializer, for which `model_dump_json` built
    the whole schema in a process that took validated settings from var/."""
    if isinstance(value, BaseModel):
        parts = [
            f"{name}={settings_text(getattr(value, name), skip, f'{at}{name}.')}"
            for name in type(value).model_fields
            if f"{at}{name}" not in skip
        ]
        return f"{type(value).__name__}({', '.join(parts)})"
    if isinstance(value, dict):
        items = [f"{key!r}: {settings_text(item, skip, at)}" for key, item in value.items()]
        return "{" + ", ".join(items) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(settings_text(item, skip, at) for item in value) + "]"
    return repr(value)


def field_descriptions(model: type[BaseModel]) -> dict[str, str]:
    """Each field's description by name: its docstring, the string below it in the class body
    (docs/configuration.md is made from them). Read from the source only when asked: pydantic's
    `use_attribute_docstrings` read it at every start, a fifth of building the models."""
    found: dict[str, str] = {}
    for cls in reversed(model.__mro__):  # a subclass's docstring wins
        if not issubclass(cls, BaseModel) or cls is BaseModel:
            continue
        try:
            body = ast.parse(textwrap.dedent(inspect.getsource(cls))).body[0]
        except (OSError, TypeError, SyntaxError):
            continue
        statements = body.body if isinstance(body, ast.ClassDef) else []
        for node, after in zip(statements, statements[1:], strict=False):
            if (
                isinstance(node, ast.AnnAssign)
                and isinstance(node.target, ast.Name)
                and isinstance(after, ast.Expr)
                and isinstance(after.value, ast.Constant)
                and isinstance(after.value.value, str)
            ):
                found[node.target.id] = inspect.cleandoc(after.value.value)
    return {
        name: info.description or found.get(name, "") for name, info in model.model_fields.items()
    }


class _Section(BaseModel):
    # Each field's docstring is its description (`field_descriptions`). The validators are
    # built by the first validation: settings kept in var/ (comms.core.settings_memo) need
    # none.
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class Site(_Section):
    """The public face: name, address and locale of the site."""

    name: str = "Niedersachsen packt an"
    """The site's name."""
    base_url: str = "https://newsletter.example.org"
    """Absolute https URL of the public site, the root of a host without a path (http only for
    localhost)."""
    language: str = "de"
    """Language of the originals (`content/<kind>/<slug>.md`) and of the site's root."""
    timezone: str = "Europe/Berlin"
    """IANA time zone for local dates in content and output."""
    description: str = (
        "Neuigkeiten, Termine und gute Beispiele aus dem Bündnis „Niedersachsen packt an“"
        " für die Integration geflüchteter Menschen."
    )
    """One-line description used in feeds and pages."""

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
        return known_zone(value)


def known_zone(value: str) -> str:
    """`value` if this machine knows it as a time zone, else ValueError (the check depends on
    the machine's zone data, not only on the text)."""
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
    """Name of the language in language switches and forms."""
    direction: Literal["ltr", "rtl"] = "ltr"
    """Writing direction: `ltr` or `rtl`."""


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
    """Display name in `From`."""
    address: str = "newsletter@example.org"
    """The newsletter's `From` address. The part before the `@` must be ASCII (mail from a UTF-8
    address needs SMTPUTF8 of every receiving server); an internationalised domain is fine and
    goes out as A-labels."""
    reply_to: str | None = "info@example.org"
    """`Reply-To`: a mailbox that reads replies."""
    list_id: str = "newsletter.niedersachsen-packt-an.example.org"
    """`List-Id`: a dot-atom under a domain you control."""

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
    """Imprint: organisation name."""
    street: str = "Musterstraße 1"
    """Imprint: street and number."""
    postcode: str = "30159"
    """Imprint: postcode."""
    city: str = "Hannover"
    """Imprint: city."""
    email: str = "info@example.org"
    """Imprint: contact e-mail."""
    phone: str | None = None
    """Imprint: phone number."""
    imprint_url: str = "https://example.org/impressum"
    """Link to the imprint page (https)."""
    privacy_url: str = "https://example.org/datenschutz"
    """Link to the privacy notice (https)."""

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

    static_dir: str = "static"
    """Folder whose files the build copies unchanged into the output (images referred to as
    `/images/…`)."""
    embed_hosts: list[str] = []
    """Hosts besides the site's own that e-mails and pages may load images and other embedded
    resources from (e.g. `["cdn.example.org"]`); `comms check` reports an image from any other
    host as an error, because every reader's mail client would contact that third party. From the
    environment as one string: `COMMS_RENDER_EMBED_HOSTS="cdn.example.org, img.example.org"`."""
    workers: int = Field(default=0, ge=0)
    """Processes that read the content (any command that reads the site) and make the files of
    a build when there are many (500 content files not read before, 2,000 files to make), as
    in a cold build or the first after an upgrade: 0 one per core the command may use, at most
    4 (on Linux; elsewhere 1), 1 all in the command's own process. The result is the same
    either way. Each process costs memory (about 80 MB more for 2,600 items); a command beside
    other threads (`comms serve`, `comms preview`, the scheduler) does all in its own
    process."""

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


def contrast(first: str, second: str) -> float:
    """WCAG 2 contrast ratio of two #rrggbb colours."""

    def luminance(colour: str) -> float:
        channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
        linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    light, dark = sorted((luminance(first), luminance(second)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def _colour(value: str) -> str:
    if not re.fullmatch(r"#[0-9a-fA-F]{6}", value):
        raise ValueError("must be a colour like #00566b")
    return value.lower()


#: The least contrast WCAG 2 AA asks of normal text (1.4.3).
AA_CONTRAST = 4.5


class Partner(_Section):
    """One partner in the footer's partners row: its logo, or its name as text."""

    name: str
    """The partner's name: the logo's alternative text, or the text shown where there is no
    logo."""
    logo: str | None = None
    """Site-relative path of the partner's logo (SVG or PNG, from `render.static_dir`), shown
    120 px wide; without it the row shows the name."""
    alt: str | None = None
    """Alternative text of the logo, when it should say more than `name`."""
    url: str | None = None
    """Where the partner's logo or name links to (absolute https URL)."""

    @field_validator("url")
    @classmethod
    def _https(cls, value: str | None) -> str | None:
        return None if value is None else _check_https(value)


class Brand(_Section):
    """How the alliance looks in every e-mail and archive page: logo, colours, header, partners."""

    logo: str | None = None
    """Site-relative path of the logo (an SVG, e.g. `images/brand/logo.svg`, from
    `render.static_dir`) shown at the top of every e-mail and page. E-mails show PNG copies
    rendered from it at 1× and 2× (most mail clients show no SVG); a PNG or JPEG is used as it
    is."""
    logo_alt: str | None = None
    """Alternative text of the logo (required with `logo`), e.g. the alliance's name."""
    logo_width: int = Field(default=200, ge=40, le=552)
    """Width of the logo in CSS px."""
    header: Literal["logo", "image"] = "logo"
    """The top of every mail: `logo` (the logo on a bar of the primary colour; draw the logo
    light so that it stands out on it, in light and in dark mode) or `image` (`header_image`
    across the column, the logo above it)."""
    header_image: str | None = None
    """Site-relative path of the header image (required with `header = "image"`)."""
    header_image_alt: str | None = None
    """Alternative text of the header image (required with `header_image`)."""
    background: str = "#ffffff"
    """Background of the mail's column and the pages (`#rrggbb`)."""
    text: str = "#1f1f1f"
    """Colour of the text (`#rrggbb`); needs a contrast of 4.5:1 (WCAG AA) on `background`."""
    primary: str = "#00566b"
    """The brand colour (`#rrggbb`): links, buttons and the logo bar; needs 4.5:1 on
    `background` (links) and with `button_text` (buttons)."""
    button_text: str = "#ffffff"
    """Colour of a button's label (`#rrggbb`), on `primary`."""
    accent: str = "#e2a400"
    """The second brand colour (`#rrggbb`): the edge of highlighted cards (the special prize)
    and of quotes; decorative, so no contrast is asked of it."""
    partners: list[Partner] = []
    """The footer's partners row, in order: `[[brand.partners]]` tables with `name` and
    optionally `logo`, `alt` and `url`."""

    @field_validator("background", "text", "primary", "button_text", "accent")
    @classmethod
    def _colours(cls, value: str) -> str:
        return _colour(value)

    @property
    def card(self) -> str:
        """Background of a highlighted card (the special prize): the accent, much lightened
        towards the background."""
        return mix(self.accent, self.background, 0.12)

    @model_validator(mode="after")
    def _readable(self) -> Brand:
        pairs = (
            ("text", self.text, "background", self.background),
            ("text", self.text, "accent (the cards' tint of it)", self.card),
            ("primary", self.primary, "background", self.background),
            ("button_text", self.button_text, "primary", self.primary),
        )
        for key, colour, other, ground in pairs:
            ratio = contrast(colour, ground)
            if ratio < AA_CONTRAST:
                raise ValueError(
                    f"brand.{key} {colour} on brand.{other} {ground} has a contrast of "
                    f"{ratio:.2f}:1; WCAG AA needs at least {AA_CONTRAST}:1: make one darker "
                    "or the other lighter"
                )
        if self.logo and not self.logo_alt:
            raise ValueError("brand.logo needs brand.logo_alt (the logo's alternative text)")
        if self.header == "image" and not self.header_image:
            raise ValueError('brand.header = "image" needs brand.header_image')
        if self.header_image and not self.header_image_alt:
            raise ValueError("brand.header_image needs brand.header_image_alt")
        return self


def mix(first: str, second: str, share: float) -> str:
    """`share` of the #rrggbb colour `first` mixed into `second`."""
    channels = (
        round(int(first[i : i + 2], 16) * share + int(second[i : i + 2], 16) * (1 - share))
        for i in (1, 3, 5)
    )
    return "#" + "".join(f"{c:02x}" for c in channels)


class Mail(_Section):
    """Optional headers of every newsletter message (docs/requirements.md E7, E11, E12)."""

    feedback_id: str | None = None
    """`Feedback-ID` header for Gmail's feedback loop, e.g. `newsletter:nspa2020` (constant per
    stream; SenderId 5–15 letters or digits)."""
    unsubscribe_mailto: str | None = None
    """Adds `<mailto:ADDR?subject=Abmelden>` to `List-Unsubscribe`; set it only if people read that
    mailbox and unsubscribe senders within 48 hours (no inbound mail handler exists)."""
    precedence: Literal["bulk", "list", "none"] = "bulk"
    """`Precedence` header (`bulk`, `list` or `none`): keeps out-of-office replies away."""
    count_clicks: bool = False
    """Count clicks per link and day, never per person: the HTML part's links then lead through
    `/r/<issue>/<link>` on `comms serve`, which adds one to that link's counter of the day and
    redirects (no uid, IP address or cookie; docs/reports.md). Off: the links go straight to
    their targets and nothing is counted."""

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
    """Seconds for every SMTP socket operation."""
    max_messages_per_connection: Annotated[int, Field(ge=1)] = 100
    """Messages per SMTP session, then QUIT and reconnect."""
    ca_file: str | None = None
    """PEM file of a private CA to trust (certificates are always verified)."""
    username: str | None = None
    """SMTP login (or `smtp+starttls://user@host`); the password comes only from
    `COMMS_SMTP_PASSWORD`."""
    helo_name: str | None = None
    """Name sent with EHLO; unset: the machine's fully qualified domain name."""
    pipelining: bool = True
    """Use SMTP PIPELINING (RFC 2920) when the server offers it: MAIL, RCPT and DATA go in one
    write, and `comms send` reads the reply to a message's final "." behind the next message's
    commands (one wait for the server per message instead of two)."""
    password: str | None = Field(default=None, repr=False)
    """SMTP password; only from the environment (`COMMS_SMTP_PASSWORD`), never from a file."""


class Dkim(_Section):
    """Optional DKIM signing: all three keys or none; the key file lives outside the repo."""

    selector: str | None = None
    """DKIM selector (`selector._domainkey.DOMAIN` holds the public key); DKIM is on when all three
    `dkim.*` keys are set."""
    domain: str | None = None
    """DKIM signing domain `d=`; align it with the `From` domain."""
    key_file: str | None = None
    """PEM RSA private key (2048 bit), relative to the config file; keep it outside the
    repository."""

    @model_validator(mode="after")
    def _all_or_none(self) -> Dkim:
        given = [self.selector, self.domain, self.key_file]
        if any(given) and not all(given):
            raise ValueError("set selector, domain and key_file together (or none of them)")
        return self


class Api(_Section):
    """HTTP e-mail API transport settings; the key comes only from COMMS_API_KEY."""

    timeout: Annotated[float, Field(gt=0)] = 30.0
    """Seconds per HTTP API request."""
    max_attempts: Annotated[int, Field(ge=1)] = 3
    """POSTs per message on 429, 5xx and timeouts, all with the same idempotency key."""
    max_wait: Annotated[float, Field(ge=0)] = 60.0
    """Longest wait in seconds (Retry-After or backoff) inside one send; a longer one is left to the
    send ledger."""
    key: str | None = Field(default=None, repr=False)
    """HTTP e-mail API key; only from the environment (`COMMS_API_KEY`), never from a file."""


class Delivery(_Section):
    """How `comms send` paces, retries and gives up (docs/requirements.md S6, S9)."""

    concurrency: int = Field(default=4, ge=1, le=64)
    """SMTP connections (threads) `comms send` uses; `--concurrency` overrides."""
    rate: float = Field(default=0.0, ge=0)
    """Messages per second over all connections and all workers of a campaign, 0 = unlimited;
    `--rate` overrides. Set it to what your relay or provider allows: the run adapts below it,
    never above."""
    batch_size: int = Field(default=500, ge=1, le=10_000)
    """Deliveries claimed from the ledger at a time (fewer with a low `rate`: no more than a quarter
    of a lease can send)."""
    retry_attempts: int = Field(default=2, ge=0, le=10)
    """Short retries of a temporary failure (a greylisted or otherwise deferred recipient), each
    waiting `retry_backoff_seconds`, doubled each time; a wait of at most 60 s is kept within the
    run, a longer one is left to the next run or the scheduler's retry pass."""
    retry_backoff_seconds: float = Field(default=300.0, ge=0)
    """Wait before the first retry of a deferred recipient (doubled for the next, ± 20 % jitter):
    five minutes, so that typical greylisting (Postgrey's default is 300 s) has passed; the run
    sends everyone else meanwhile."""
    retry_interval_minutes: float = Field(default=30.0, gt=0)
    """First wait after the `retry_attempts` short retries; doubled each time (± 10 % jitter)."""
    retry_max_interval_hours: float = Field(default=4.0, gt=0)
    """Longest wait between two retries."""
    give_up_after_hours: float = Field(default=96.0, gt=0)
    """After this long since the campaign started, a temporary failure becomes `failed`."""
    lease_seconds: int = Field(default=300, ge=10)
    """How long a claimed delivery belongs to a run on another machine before others may take it."""
    require_approval: bool = False
    """Four eyes: `comms send` and the scheduler send an issue only when its current version was
    approved with `comms approve ISSUE` (every edition); any edit after the approval needs a new
    one, and an issue with a `send_at` is published only when its send starts."""


class Desk(_Section):
    """The editor's desk: who may approve an issue (`comms approve`), and the desk in the
    browser at `/desk/`."""

    approvers: list[str] = []
    """The names that may approve (`comms approve --by NAME`, else the login name), compared
    without regard to case and spacing; empty: anyone. Either way the approver must differ
    from whoever changed the issue last (its git author, else who sent its last proof)."""
    enabled: bool = False
    """Serve the desk in the browser at `/desk/` (`comms serve`, `comms desk`): accounts from
    `comms users`, roles editor, approver and admin. Off: `/desk/…` does not exist (404)."""
    session_minutes: int = Field(default=480, ge=5, le=7 * 24 * 60)
    """A desk login lasts at most this many minutes, then the account logs in again."""
    idle_minutes: int = Field(default=60, ge=5, le=7 * 24 * 60)
    """A desk login ends after this many minutes without a request."""
    lockout_after: int = Field(default=5, ge=1, le=100)
    """Failed logins (password or code) in a row after which an account is locked."""
    lockout_minutes: int = Field(default=15, ge=1, le=24 * 60)
    """How long a locked account stays locked (`comms users reset` unlocks it at once)."""
    login_limit: int = Field(default=20, ge=1, le=10000)
    """Login attempts one IP address may make per 15 minutes, over every account (counted
    in the database by every `comms serve`)."""


class DeskOidc(_Section):
    """Single sign-on to the desk over OpenID Connect (authorization code flow with PKCE): the
    identity provider vouches for who someone is, the desk account decides what they may do.
    Nobody without an enabled desk account gets in; no TOTP code is asked after it (the
    provider does the second factor). The client secret (`COMMS_DESK_OIDC_CLIENT_SECRET`)
    comes only from the environment."""

    issuer: str | None = None
    """The provider's issuer URL (https; its `/.well-known/openid-configuration` is read);
    unset: no single sign-on, the desk's own login only."""
    client_id: str = ""
    """The desk's client id at the provider; its redirect URI there is
    `https://HOST/desk/sso/callback`."""
    client_secret: str | None = Field(default=None, repr=False)
    """The desk's client secret; only from the environment (`COMMS_DESK_OIDC_CLIENT_SECRET`)."""
    claim: str = "email"
    """The ID token's claim that names the person (`email` needs `email_verified`)."""
    match: Literal["email", "name"] = "email"
    """What the claim's value is compared with: the desk account's address or its name."""
    label: str = "Mit Single Sign-on anmelden"
    """The login page's button text (e.g. the provider's name)."""

    @field_validator("issuer")
    @classmethod
    def _issuer(cls, value: str | None) -> str | None:
        return None if not value else _check_https(value).rstrip("/")

    @model_validator(mode="after")
    def _client(self) -> DeskOidc:
        if self.issuer and not self.client_id:
            raise ValueError("client_id is required with issuer")
        return self


class Feeds(_Section):
    """Feeds and calendars: WebSub hubs to notify, feed length, calendar look-back."""

    hubs: list[str] = []
    """WebSub hubs (https URLs) to notify of changed feeds; feeds advertise them with `rel="hub"`.
    From the environment as one string: `COMMS_FEEDS_HUBS="https://a, https://b"`."""
    max_items: int = 50
    """Newest items in the site-wide and per-kind feeds (the upcoming-event feeds are complete and
    never cut)."""
    calendar_past_days: int = 180
    """`events.ics` and the region calendars keep events that ended up to this many days ago."""

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
    """Days a confirmation link works; an expired link offers a new mail."""
    purge_pending_days: Annotated[int, Field(ge=1, le=30)] = 7
    """Unconfirmed sign-ups are deleted this many days after their latest request
    (docs/requirements.md L4)."""
    retention_days: Annotated[int, Field(ge=1, le=3650)] = 30
    """An ended subscription (unsubscribed, bounced, complained) is reduced to the proof of consent
    this many days after it ended."""
    data_link_minutes: Annotated[int, Field(ge=5, le=1440)] = 60
    """Minutes a mailed export or erasure link works, once."""
    rate_limit: Annotated[int, Field(ge=1)] = 10
    """Sign-ups (and requests for a new confirmation mail) per client (an IPv4 address, an
    IPv6 /64) within `subscribe.rate_window`; more get 429."""
    rate_window: Annotated[int, Field(ge=1)] = 600
    """Seconds of the sliding rate-limit window."""
    keep_ip: bool = False
    """Store the visitor's IP address and user agent with sign-up and confirmation events
    (docs/requirements.md L3, L13); off by default: justify it and keep retention short."""
    confirm_address: str = "bestaetigung@example.org"
    """`From` of the confirmation mail; must differ from `sender.address` (separate streams,
    docs/requirements.md E20)."""
    consent_version: str = "2026-11"
    """Version of the consent text, stored with every sign-up and confirmation; change it whenever
    the text changes."""
    consent_text: str = (
        "Ja, ich möchte den Newsletter des Bündnisses „Niedersachsen packt an“ per E-Mail "
        "erhalten. Meine Einwilligung kann ich jederzeit widerrufen, zum Beispiel über den "
        "Abmeldelink in jedem Newsletter."
    )
    """The consent text shown above the sign-up button; keep every version you used (e.g. in git):
    an export shows the current text next to events that carry its version."""

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


class Log(_Section):
    """Log lines on stderr: `comms serve` and `comms worker` log from INFO up, other commands
    their warnings and errors only."""

    format: Literal["text", "json"] = "text"
    """`text`: one line per record, `2026-03-01T09:00:00.123Z INFO comms worker[4242]
    comms.worker: 2026-03-newsletter: 5 sent, …` (time in UTC, level, command and process id,
    logger, message); `json`: one JSON object per line (JSON Lines: `time`, `level`, `process`,
    `pid`, `logger`, `message`, and `campaign`, `counts`, `fault` where they apply), for a log
    collector. A fault is one line
    either way; its traceback only with `comms --debug`. Tokens, addresses and secrets are masked
    in both."""


class Schedule(_Section):
    """What `comms serve` runs by itself: sends, refresh, retries, housekeeping, the lease."""

    stale_after_hours: float = Field(default=6.0, gt=0)
    """A scheduled send more than this late (the process was down, the machine slept) does not go
    out by itself: it is held and shown by `comms status` until an editor runs `comms send
    ISSUE`."""
    refresh_minutes: float = Field(default=15.0, gt=0)
    """The scheduler runs `comms refresh` this often, then re-reads the scheduled sends from the
    content; a web-only `comms serve` standing by rebuilds its own output folder this often too.
    Every `comms serve` also rebuilds at once after a send started on any host."""
    watch_seconds: float = Field(default=10.0, gt=0, le=60)
    """How often the scheduler looks for changed files in the content folder (a cheap walk of
    their sizes and times); a change re-reads the scheduled sends at once, so that an issue made
    ready or moved is picked up within this many seconds, not at the next refresh."""
    retry_minutes: float = Field(default=5.0, gt=0)
    """How often the retry pass runs (deliveries whose retry time has come, in every campaign)."""
    housekeeping_time: time = time(2, 30)
    """Local time of the daily housekeeping: purge of unconfirmed sign-ups, reduction of ended
    subscriptions, deletion of expired mailed links."""
    lease_seconds: int = Field(default=60, ge=10)
    """The scheduler lease: renewed every quarter of this; another process may take over this long
    after the last heartbeat (at once when the holder was a process on the same machine that is
    gone)."""
    stall_minutes: float = Field(default=15.0, gt=0)
    """`/healthz` and `comms status --health` call a campaign stalled (and answer 503), and the
    office gets an alert (`[alerts]`), when it has deliveries claimed or due now but none of its
    deliveries changed for this long: no sender is alive, or one hangs. Keep it above
    `retry_minutes`."""


class Bounces(_Section):
    """Bounces and complaints: the VERP envelope sender, the bounce mailbox, the soft-bounce rule.

    The IMAP password (`COMMS_BOUNCES_PASSWORD`) and the webhook secret
    (`COMMS_BOUNCES_WEBHOOK_SECRET`) come only from the environment.
    """

    verp: bool = True
    """Give every delivery its own signed envelope sender `LOCAL+ID-SIGNATURE@DOMAIN` (VERP), so
    each bounce names its delivery."""
    domain: str | None = None
    """Domain of the VERP envelope sender; its mail server must deliver `bounces+…@` to the bounce
    mailbox. Unset: the domain of `sender.address`."""
    local_part: str = "bounces"
    """Local part before the `+` of the VERP address (lowercase letters, digits, `.`, `_`, `-`)."""
    mailbox: str | None = None
    """The bounce mailbox `comms bounces fetch` and the scheduler read:
    `imaps://USER@HOST[:PORT]/FOLDER` (port 993, folder `INBOX` by default; write `@` in USER as
    `%40`) or `maildir:///path` / `maildir://dir` (relative to the config file)."""
    ca_file: str | None = None
    """PEM file of a private CA to trust for the IMAP server (certificates are always verified),
    relative to the config file."""
    processed_folder: str = "Processed"
    """Folder handled messages are moved to (IMAP `MOVE`, else copy and expunge; in a Maildir the
    Maildir++ subfolder `.Processed`); created when missing."""
    soft_limit: int = Field(default=3, ge=1, le=100)
    """Soft bounces within `bounces.soft_days` that suppress a person."""
    soft_days: int = Field(default=90, ge=1, le=3650)
    """The window for `bounces.soft_limit`, in days: with monthly issues, 3 in 90 days means three
    issues in a row did not arrive."""
    fetch_minutes: float = Field(default=5.0, gt=0)
    """How often the scheduler reads `bounces.mailbox` (no job without a mailbox)."""
    password: str | None = Field(default=None, repr=False)
    """IMAP password of `bounces.mailbox`; only from the environment (`COMMS_BOUNCES_PASSWORD`)."""
    webhook_secret: str | None = Field(default=None, repr=False)
    """Token of `/webhooks/brevo`; only from the environment (`COMMS_BOUNCES_WEBHOOK_SECRET`).
    Without it the endpoint does not exist. As strong as the secret key (32 random bytes)."""
    webhook_user: str = "brevo"
    """The user name `/webhooks/brevo` expects with HTTP Basic credentials (the password is
    `bounces.webhook_secret`); a Bearer token needs none."""

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


class Alerts(_Section):
    """Alerts to the office: a scheduled send refused or failed, a send finished, a campaign
    that stalls, a bounce or complaint rate above its threshold, the database unreachable, the
    scheduler lease lost. Each alert goes out once (its key is recorded in the database), in the
    site's language, by mail through `transport` and optionally to a webhook."""

    to: str | None = None
    """The office address alerts are mailed to (plain mail from `sender.address`: no list
    headers, no unsubscribe link); unset: no alert mails."""
    webhook: str | None = Field(default=None, repr=False)
    """URL each alert is also POSTed to as JSON (`kind`, `key`, `subject`, `text`, `at`); only
    from the environment (`COMMS_ALERTS_WEBHOOK`), because chat webhook URLs carry their
    credential in the path."""
    hard_bounce_percent: float = Field(default=2.0, gt=0, le=100)
    """Alert when more than this share of a campaign's finished deliveries bounced hard
    (refused at RCPT, given up, or a hard bounce report); mailbox providers act above 2 %."""
    complaint_percent: float = Field(default=0.1, gt=0, le=100)
    """Alert when more than this share of a campaign's sent messages drew a complaint (spam
    report); mailbox providers act above 0.1 %."""
    min_deliveries: int = Field(default=100, ge=1)
    """Rates are judged once a campaign has at least this many sent or failed deliveries, so
    that one bounce among ten is no alert."""

    @field_validator("to")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        return None if value is None else _check_email(value)

    @field_validator("webhook")
    @classmethod
    def _webhook(cls, value: str | None) -> str | None:
        return None if value is None else _check_https(value)


class Metrics(_Section):
    """`/metrics` for Prometheus on `comms serve`."""

    token: str | None = Field(default=None, repr=False)
    """Bearer token a scraper must send (`Authorization: Bearer TOKEN`): 401 without one, 403
    with a wrong one. Only from the environment (`COMMS_METRICS_TOKEN`); unset: `/metrics` does
    not exist (404)."""
