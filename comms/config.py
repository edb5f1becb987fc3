"""Configuration: one schema; defaults, then comms.toml, then COMMS_* variables, then flags."""

from __future__ import annotations

import os
import re
import tomllib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from email_validator import EmailNotValidError, validate_email
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from .errors import ConfigError

CONFIG_FILE = "comms.toml"
ENV_PREFIX = "COMMS_"
#: Values that may only come from the environment, never from a file in the repository.
SECRETS = ("secret_key",)
#: Key names that hold secrets wherever they stand (e.g. `[smtp] password`): an error in a file.
SECRET_NAMES = frozenset({"secret_key", "secret", "password", "passwd", "api_key", "key", "token"})
#: The transports `transport` may name (comms.transports builds them).
TRANSPORT_SCHEMES = (
    "smtp",
    "smtp+starttls",
    "smtps",
    "file",
    "memory",
    "brevo+https",
    "brevo+http",
)

DEFAULT_REGIONS = {
    "landesweit": "Landesweit",
    "braunschweig": "Braunschweig",
    "leine-weser": "Leine-Weser",
    "lueneburg": "Lüneburg",
    "weser-ems": "Weser-Ems",
}
DEFAULT_TOPICS = {
    "sprache": "Sprache",
    "arbeit": "Arbeit und Ausbildung",
    "bildung": "Schule und Bildung",
    "wohnen": "Wohnen und Leben",
    "engagement": "Bürgerschaftliches Engagement",
    "frauen": "Frauen",
    "kultur": "Kultur und Begegnung",
    "gesundheit": "Gesundheit",
    "teilhabe": "Gesellschaftliche Teilhabe",
}
_LOCAL_HOSTS = ("localhost", "127.0.0.1", "[::1]")


def _check_email(value: str) -> str:
    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise ValueError(f"not a valid e-mail address: {exc}") from None


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
    language: Literal["de", "en"] = "de"
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


class Sender(_Section):
    """Who the newsletter comes from."""

    name: str = "Bündnis „Niedersachsen packt an“"
    address: str = "newsletter@example.org"
    reply_to: str | None = "info@example.org"
    list_id: str = "newsletter.niedersachsen-packt-an.example.org"

    @field_validator("address", "reply_to")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        return None if value is None else _check_email(value)

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
    """Optional headers of every newsletter message (STANDARDS E7, E11, E12)."""

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


class Delivery(_Section):
    """How `comms send` paces, retries and gives up (STANDARDS S6, S9)."""

    concurrency: int = Field(default=4, ge=1, le=64)
    rate: float = Field(default=0.0, ge=0)
    batch_size: int = Field(default=500, ge=1, le=10_000)
    retry_attempts: int = Field(default=2, ge=0, le=10)
    retry_backoff_seconds: float = Field(default=2.0, ge=0)
    retry_interval_minutes: float = Field(default=30.0, gt=0)
    retry_max_interval_hours: float = Field(default=4.0, gt=0)
    give_up_after_hours: float = Field(default=96.0, gt=0)
    lease_seconds: int = Field(default=300, ge=10)


class Feeds(_Section):
    """Feeds and calendars: WebSub hubs to notify, feed length, calendar look-back."""

    hubs: list[str] = []
    max_items: int = 50
    calendar_past_days: int = 180

    @field_validator("hubs", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        # From the environment the list arrives as one string: "https://a, https://b".
        if isinstance(value, str):
            return [part for part in value.replace(",", " ").split() if part]
        return value

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
    """Sign-up, double opt-in and the subscriber pages (STANDARDS L1–L6, L15)."""

    confirm_days: Annotated[int, Field(ge=1, le=30)] = 7
    purge_pending_days: Annotated[int, Field(ge=1, le=30)] = 7
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
        return _check_email(value)

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


class Settings(_Section):
    """The whole configuration schema; paths are relative to the config file's folder."""

    content_dir: str = "content"
    output_dir: str = "public"
    database_url: str = "sqlite:///var/comms.db"
    transport: str = "file://var/outbox"
    reference_date: date | None = None
    site: Site = Site()
    sender: Sender = Sender()
    organisation: Organisation = Organisation()
    regions: dict[str, str] = DEFAULT_REGIONS
    topics: dict[str, str] = DEFAULT_TOPICS
    render: Render = Render()
    mail: Mail = Mail()
    smtp: Smtp = Smtp()
    dkim: Dkim = Dkim()
    api: Api = Api()
    delivery: Delivery = Delivery()
    feeds: Feeds = Feeds()
    subscribe: Subscribe = Subscribe()
    schedule: Schedule = Schedule()

    @field_validator("transport")
    @classmethod
    def _transport(cls, value: str) -> str:
        scheme, sep, rest = value.partition("://")
        if not sep or scheme not in TRANSPORT_SCHEMES or not rest:
            known = ", ".join(f"{s}://" for s in TRANSPORT_SCHEMES)
            raise ValueError(f"must be a transport URL ({known}), got '{value}'")
        try:
            urlsplit(value).port  # noqa: B018 - raises for a bad host or port
        except ValueError as exc:
            raise ValueError(f"not a valid URL: {exc}") from None
        return value

    @field_validator("regions", "topics")
    @classmethod
    def _slugs(cls, value: dict[str, str]) -> dict[str, str]:
        for slug in value:
            if not slug or not all(c.islower() or c.isdigit() or c == "-" for c in slug):
                raise ValueError(f"'{slug}' is not a slug (lowercase letters, digits, '-')")
        if not value:
            raise ValueError("must not be empty")
        return value

    @field_validator("subscribe")
    @classmethod
    def _separate_streams(cls, value: Subscribe, info: ValidationInfo) -> Subscribe:
        # STANDARDS E20: confirmation mails and newsletters come from different addresses.
        sender = info.data.get("sender")
        if sender is not None and value.confirm_address == sender.address:
            raise ValueError("confirm_address must differ from sender.address (separate streams)")
        return value


@dataclass(frozen=True)
class Config:
    """Validated settings plus where they came from."""

    settings: Settings
    root: Path
    path: Path | None
    warnings: list[str] = field(default_factory=list)
    secret_key: str | None = None

    @property
    def content_dir(self) -> Path:
        """The content folder, absolute (symlinks kept, so messages show the editor's path)."""
        return Path(os.path.normpath(self.root / self.settings.content_dir))

    @property
    def output_dir(self) -> Path:
        """The output folder, absolute."""
        return Path(os.path.normpath(self.root / self.settings.output_dir))

    @property
    def tz(self) -> ZoneInfo:
        """The site's time zone."""
        return ZoneInfo(self.settings.site.timezone)

    @property
    def database_url(self) -> str:
        """The database URL; a relative SQLite path is taken relative to the config folder."""
        url = self.settings.database_url
        prefix = "sqlite:///"
        if url.startswith(prefix) and not url.startswith(prefix + "/") and url != "sqlite://":
            rest = url[len(prefix) :]
            if rest and rest != ":memory:":
                return prefix + str((self.root / rest).resolve())
        return url

    @property
    def transport_url(self) -> str:
        """The transport URL; a relative `file://` folder is taken relative to the config folder."""
        url = self.settings.transport
        if url.startswith("file://") and not url.startswith("file:///"):
            return "file://" + str((self.root / url[len("file://") :]).resolve())
        return url

    @cached_property
    def host(self) -> str:
        """The host name of the site's base URL (used for ids and Message-IDs)."""
        return urlsplit(self.settings.site.base_url).hostname or "localhost"

    def url(self, path: str = "") -> str:
        """An absolute URL under the site's base URL."""
        return f"{self.settings.site.base_url}/{path.lstrip('/')}"

    def now(self) -> datetime:
        """ "Now" in the site's time zone: the start of `reference_date` if set, else the clock."""
        if self.settings.reference_date is not None:
            return datetime.combine(self.settings.reference_date, time(), tzinfo=self.tz)
        return datetime.now(self.tz)

    def item_id(self, kind: str, slug: str) -> str:
        """The one stable id of an item (feed GUID, Atom id, JSON Feed id, iCalendar UID).

        A name-based UUID of host, kind and slug: no personal data, no characters that need
        escaping anywhere (a tag URI's comma must be escaped in an iCalendar UID), and the form
        RFC 7986 recommends for UIDs.
        """
        return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'https://{self.host}/{kind}/{slug}')}"


def _section_model(name: str) -> type[BaseModel] | None:
    annotation = Settings.model_fields[name].annotation
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _split_unknown(raw: Mapping[str, Any], source: str) -> tuple[dict[str, Any], list[str]]:
    """Drop keys the schema does not know, returning them as warnings that name the key."""
    known: dict[str, Any] = {}
    warnings: list[str] = []
    for key, value in raw.items():
        if key not in Settings.model_fields:
            warnings.append(f"{source}: '{key}': unknown key")
            continue
        section = _section_model(key)
        if section is not None and isinstance(value, Mapping):
            inner = {}
            for sub, subvalue in value.items():
                if sub in section.model_fields:
                    inner[sub] = subvalue
                else:
                    warnings.append(f"{source}: '{key}.{sub}': unknown key")
            known[key] = inner
        else:
            known[key] = value
    return known, warnings


def env_names() -> dict[str, tuple[str, ...]]:
    """Every environment variable the schema reads, mapped to its key path."""
    names: dict[str, tuple[str, ...]] = {}
    for key in Settings.model_fields:
        section = _section_model(key)
        if section is not None:
            for sub in section.model_fields:
                names[f"{ENV_PREFIX}{key}_{sub}".upper()] = (key, sub)
        elif key not in ("regions", "topics"):
            names[f"{ENV_PREFIX}{key}".upper()] = (key,)
    return names


def _from_env(environ: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, path in env_names().items():
        if name in environ:
            target = out
            for part in path[:-1]:
                target = target.setdefault(part, {})
            target[path[-1]] = environ[name]
    return out


def _secret_keys(raw: Mapping[str, Any]) -> list[tuple[str, ...]]:
    """The key paths in a config file that hold secrets (top level and one section deep)."""
    found: list[tuple[str, ...]] = []
    for key, value in raw.items():
        if key in SECRET_NAMES:
            found.append((key,))
        elif isinstance(value, Mapping):
            found.extend((key, sub) for sub in value if sub in SECRET_NAMES)
    return found


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _source_of(loc: tuple[Any, ...], env: Mapping[str, Any], file_label: str) -> str:
    target: Any = env
    for part in loc:
        if not isinstance(target, Mapping) or part not in target:
            return file_label
        target = target[part]
    return "environment " + ENV_PREFIX + "_".join(str(p) for p in loc).upper()


def _message(error: Mapping[str, Any]) -> str:
    kind = error["type"]
    if kind == "missing":
        return "required"
    if kind == "literal_error":
        expected = error.get("ctx", {}).get("expected", "")
        return f"must be one of {expected}"
    msg = str(error["msg"])
    return msg.removeprefix("Value error, ")


def load_config(
    path: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    strict: bool = False,
) -> Config:
    """Load and validate the configuration; raise ConfigError listing every problem."""
    environ = os.environ if environ is None else environ
    explicit = path is not None
    path = Path(path) if path is not None else Path.cwd() / CONFIG_FILE
    problems: list[str] = []
    raw: dict[str, Any] = {}
    label = path.name
    if path.is_file():
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError([f"{label}: invalid TOML: {exc}"]) from None
    elif explicit:
        raise ConfigError([f"{path}: config file not found"])
    for keys in _secret_keys(raw):
        problems.append(
            f"{label}: '{'.'.join(keys)}': secrets come only from the environment "
            f"({ENV_PREFIX}{'_'.join(keys).upper()}), never from a file"
        )
        section = raw if len(keys) == 1 else raw[keys[0]]
        section.pop(keys[-1])
    known, warnings = _split_unknown(raw, label)
    env = _from_env(environ)
    merged = _merge(_merge(known, env), overrides or {})
    settings: Settings | None = None
    try:
        settings = Settings.model_validate(merged)
    except ValidationError as exc:
        for error in exc.errors():
            loc = tuple(error["loc"])
            dotted = ".".join(str(p) for p in loc)
            problems.append(f"{_source_of(loc, env, label)}: '{dotted}': {_message(error)}")
    if strict:
        problems.extend(f"{w} (--strict)" for w in warnings)
    if problems or settings is None:
        raise ConfigError(problems, [] if strict else warnings)
    return Config(
        settings=settings,
        root=path.parent.resolve(),
        path=path if path.is_file() else None,
        warnings=warnings,
        secret_key=environ.get(f"{ENV_PREFIX}SECRET_KEY") or None,
    )
