"""Configuration: one schema; defaults, then comms.toml, then COMMS_* variables, then flags."""

from __future__ import annotations

import hashlib
import os
import tomllib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ValidationError, ValidationInfo, field_validator

from comms.core.clock import site_now
from comms.core.database_url import database_password, resolve_database_url
from comms.core.errors import ConfigError
from comms.core.keys import key_problem
from comms.core.settings import (
    SECRETS,
    Alerts,
    Api,
    Bounces,
    Brand,
    Delivery,
    Desk,
    DeskOidc,
    Dkim,
    Feeds,
    Language,
    Log,
    Mail,
    Metrics,
    Organisation,
    Render,
    Schedule,
    Sender,
    Site,
    Smtp,
    Subscribe,
    _Section,
    check_languages,
)
from comms.core.transport_url import check_transport_url, transport_folder

CONFIG_FILE = "comms.toml"
ENV_PREFIX = "COMMS_"
#: Key names that hold secrets wherever they stand (e.g. `[smtp] password`): an error in a file.
SECRET_NAMES = frozenset({path[-1] for path in SECRETS} | {"secret", "passwd", "api_key", "token"})
#: Labels of the languages a configuration may leave unlisted (the site's own).
DEFAULT_LABELS = {"de": "Deutsch", "en": "English"}
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


class Settings(_Section):
    """The whole configuration schema; paths are relative to the config file's folder."""

    content_dir: str = "content"
    """Folder with the Markdown content, relative to the config file."""
    output_dir: str = "public"
    """Folder the build writes (web archive, feeds, calendars), relative to the config file."""
    database_url: str = "sqlite:///var/comms.db"
    """SQLAlchemy URL of the database; a relative SQLite path is relative to the config file.
    PostgreSQL: `postgresql+psycopg://…` (install `psycopg`); `postgres://…`, as hosting
    providers write it, is read as `postgresql://…`."""
    transport: str = "file://var/outbox"
    """Where mail goes: `smtp://host:port`, `smtp+starttls://…`, `smtps://…`,
    `brevo+https://api.brevo.com`, `file:///dir` (a relative `file://dir` is relative to the
    config file) or `memory://` (tests)."""
    reference_date: date | None = None
    """A date (`2020-01-15`) that comms treats as today wherever it asks what is upcoming (the demo,
    `comms new`, the archive) and whether an issue's `send_at` has come for `comms send`; unset:
    the clock."""
    site: Site = Site.model_construct()
    sender: Sender = Sender.model_construct()
    organisation: Organisation = Organisation.model_construct()
    regions: dict[str, str] = DEFAULT_REGIONS
    """Table slug → label of the regions content may use. Not settable from the environment."""
    topics: dict[str, str] = DEFAULT_TOPICS
    """Table slug → label of the topics content and subscribers may use. Not settable from the
    environment."""
    render: Render = Render.model_construct()
    brand: Brand = Brand.model_construct()
    mail: Mail = Mail.model_construct()
    smtp: Smtp = Smtp.model_construct()
    dkim: Dkim = Dkim.model_construct()
    api: Api = Api.model_construct()
    delivery: Delivery = Delivery.model_construct()
    log: Log = Log.model_construct()
    feeds: Feeds = Feeds.model_construct()
    subscribe: Subscribe = Subscribe.model_construct()
    schedule: Schedule = Schedule.model_construct()
    bounces: Bounces = Bounces.model_construct()
    desk: Desk = Desk.model_construct()
    desk_oidc: DeskOidc = DeskOidc.model_construct()
    alerts: Alerts = Alerts.model_construct()
    metrics: Metrics = Metrics.model_construct()
    languages: dict[str, Language] = {}
    """Table language tag → `label` and `direction` (`ltr` or `rtl`): every language listed gets an
    edition and needs a catalog in `comms/templates/locale/<tag>/`; must include `site.language`.
    Empty: the site's language only. Not settable from the environment."""

    @field_validator("transport")
    @classmethod
    def _transport(cls, value: str) -> str:
        return check_transport_url(value)

    @field_validator("regions", "topics")
    @classmethod
    def _slugs(cls, value: dict[str, str]) -> dict[str, str]:
        for slug in value:
            if not slug or not all(c.islower() or c.isdigit() or c == "-" for c in slug):
                raise ValueError(f"'{slug}' is not a slug (lowercase letters, digits, '-')")
        if not value:
            raise ValueError("must not be empty")
        return value

    @field_validator("languages")
    @classmethod
    def _languages(cls, value: dict[str, Language], info: ValidationInfo) -> dict[str, Language]:
        site = info.data.get("site")
        check_languages(value, site.language if site is not None else "de")
        return value

    @field_validator("subscribe")
    @classmethod
    def _separate_streams(cls, value: Subscribe, info: ValidationInfo) -> Subscribe:
        # Confirmation mails and newsletters come from different addresses (docs/requirements.md
        # E20).
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
    def secret_key_file(self) -> Path:
        """Where a generated secret key is kept when COMMS_SECRET_KEY is not set (0600)."""
        return self.root / "var" / "secret.key"

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
        return resolve_database_url(self.settings.database_url, self.root)

    def secret_values(self) -> tuple[str, ...]:
        """The value of every secret that is set (SECRETS), and a password in `database_url`:
        what no log line may show."""
        found: list[str | None] = [database_password(self.settings.database_url)]
        for path in SECRETS:
            value: Any = self if path == ("secret_key",) else self.settings
            for part in path:
                value = getattr(value, part, None)
            found.append(value)
        return tuple(v for v in found if isinstance(v, str) and v)

    @property
    def transport_url(self) -> str:
        """The transport URL; a relative `file://` folder is taken relative to the config folder."""
        folder = transport_folder(self.settings.transport, self.root)
        return self.settings.transport if folder is None else f"file://{folder}"

    @cached_property
    def host(self) -> str:
        """The host name of the site's base URL (used for ids and Message-IDs)."""
        return urlsplit(self.settings.site.base_url).hostname or "localhost"

    def url(self, path: str = "") -> str:
        """An absolute URL under the site's base URL."""
        return f"{self.settings.site.base_url}/{path.lstrip('/')}"

    def now(self) -> datetime:
        """ "Now" for the site's content (comms.core.clock.site_now): the start of
        `reference_date` if set, else the current instant, in the site's time zone."""
        return site_now(self.tz, self.settings.reference_date)

    @cached_property
    def languages(self) -> dict[str, Language]:
        """Every enabled language, the site's first (labelled by its tag when not configured)."""
        home = self.home_language
        found = dict(self.settings.languages)
        # Made without validation (a label from constants): its validators are built only
        # where settings are validated.
        first = found.pop(home, None) or Language.model_construct(
            label=DEFAULT_LABELS.get(home, home)
        )
        return {home: first, **found}

    @property
    def home_language(self) -> str:
        """The site's language: that of the originals and of the site root."""
        return self.settings.site.language

    def item_id(self, kind: str, slug: str) -> str:
        """The one stable id of an item (feed GUID, Atom id, JSON Feed id, iCalendar UID).

        A name-based UUID of host, kind and slug: no personal data, no characters that need
        escaping anywhere (a tag URI's comma must be escaped in an iCalendar UID), and the form
        RFC 7986 recommends for UIDs.
        """
        # uuid.uuid5 by hand: a build asks for every item's id, and the UUID object costs
        # five times the hash.
        name = f"https://{self.host}/{kind}/{slug}".encode()
        raw = bytearray(hashlib.sha1(_URL_NAMESPACE + name).digest()[:16])
        raw[6] = raw[6] & 0x0F | 0x50  # version 5
        raw[8] = raw[8] & 0x3F | 0x80  # the RFC 4122 variant
        h = raw.hex()
        return f"urn:uuid:{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


#: The namespace of `Config.item_id`'s name-based UUIDs: URLs (RFC 4122, appendix C).
_URL_NAMESPACE = uuid.NAMESPACE_URL.bytes


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
        elif key not in ("regions", "topics", "languages"):
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
    keep: bool = False,
) -> Config:
    """Load and validate the configuration; raise ConfigError listing every problem.

    `keep`: take the settings validated by an earlier process from var/ when the file's bytes,
    the COMMS_* values and the code are the same, and keep them there after a validation
    (comms.core.settings_memo; never with overrides). Anything else validates as without.
    """
    environ = os.environ if environ is None else environ
    explicit = path is not None
    path = Path(path) if path is not None else Path.cwd() / CONFIG_FILE
    data: bytes | None = None
    if path.is_file():
        data = path.read_bytes()
    elif explicit:
        raise ConfigError([f"{path}: config file not found"])
    memo = None
    if keep and data is not None and not overrides:
        from comms.core.settings_memo import SettingsMemo

        secrets = frozenset(keys for keys in SECRETS if len(keys) == 2)
        memo = SettingsMemo(path, data, environ, env_names(), secrets, strict)
    found = memo.take() if memo is not None else None
    if found is not None:
        settings: Settings | None = found[0]
        warnings, problems = found[1], list[str]()
    else:
        settings, warnings, problems = _validate(path.name, data, environ, overrides or {})
    secret_key = environ.get(f"{ENV_PREFIX}SECRET_KEY") or None
    weak = key_problem(secret_key) if secret_key is not None else None
    if weak is not None:
        problems.append(f"environment {ENV_PREFIX}SECRET_KEY: {weak}")
    hook = settings.bounces.webhook_secret if settings is not None else None
    weak_hook = key_problem(hook) if hook else None
    if weak_hook is not None:
        # The token lets its holder unsubscribe and suppress anyone: as strong as the key.
        problems.append(f"environment {ENV_PREFIX}BOUNCES_WEBHOOK_SECRET: {weak_hook}")
    if strict:
        problems.extend(f"{w} (--strict)" for w in warnings)
    if problems or settings is None:
        raise ConfigError(problems, [] if strict else warnings)
    if memo is not None and found is None:
        memo.keep(settings, warnings)
    return Config(
        settings=settings,
        root=path.parent.resolve(),
        path=path if data is not None else None,
        warnings=warnings,
        secret_key=secret_key,
    )


def _validate(
    label: str, data: bytes | None, environ: Mapping[str, str], overrides: Mapping[str, Any]
) -> tuple[Settings | None, list[str], list[str]]:
    """The settings from the file's bytes (None: no file), the environment and the overrides,
    with the warnings and problems, each naming its key and where it came from."""
    problems: list[str] = []
    raw: dict[str, Any] = {}
    if data is not None:
        try:
            # As read_text reads it: every line end a "\n".
            text = data.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")
            raw = tomllib.loads(text)
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError([f"{label}: invalid TOML: {exc}"]) from None
    for keys in _secret_keys(raw):
        problems.append(
            f"{label}: '{'.'.join(keys)}': secrets come only from the environment "
            f"({ENV_PREFIX}{'_'.join(keys).upper()}), never from a file"
        )
        section = raw if len(keys) == 1 else raw[keys[0]]
        section.pop(keys[-1])
    known, warnings = _split_unknown(raw, label)
    env = _from_env(environ)
    merged = _merge(_merge(known, env), overrides)
    settings: Settings | None = None
    try:
        settings = Settings.model_validate(merged)
    except ValidationError as exc:
        for error in exc.errors():
            loc = tuple(error["loc"])
            dotted = ".".join(str(p) for p in loc)
            problems.append(f"{_source_of(loc, env, label)}: '{dotted}': {_message(error)}")
    return settings, warnings, problems
