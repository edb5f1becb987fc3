"""The transports a URL may name: one registry of schemes, and the folder of a `file://` URL.

The settings check `transport` against it; `comms.mail.transports` opens each kind from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit

from comms.core.logs import shown_url

Kind = Literal["smtp", "api", "file", "memory"]


@dataclass(frozen=True)
class Scheme:
    """One transport URL scheme: what opens it and how it is secured."""

    kind: Kind
    #: For SMTP: plain, STARTTLS (required) or implicit TLS; for the HTTP API: http or https.
    security: Literal["plain", "starttls", "tls"] = "plain"
    default_port: int | None = None


#: Every transport URL scheme, in the order the help lists them.
SCHEMES: dict[str, Scheme] = {
    "smtp": Scheme("smtp", "plain", 25),
    "smtp+starttls": Scheme("smtp", "starttls", 587),
    "smtps": Scheme("smtp", "tls", 465),
    "file": Scheme("file"),
    "memory": Scheme("memory"),
    "brevo+https": Scheme("api", "tls"),
    "brevo+http": Scheme("api", "plain"),
}


def known_schemes() -> str:
    """The schemes for a message: 'smtp://, smtp+starttls://, …'."""
    return ", ".join(f"{name}://" for name in SCHEMES)


def scheme_of(url: str) -> str:
    """The scheme of a transport URL ('' without `://`)."""
    scheme, sep, _ = url.partition("://")
    return scheme if sep else ""


def without_credentials(url: str) -> str:
    """A transport URL as a record shows where mail went: user and password dropped."""
    scheme, sep, rest = url.partition("://")
    return f"{scheme}://{rest.rpartition('@')[2]}" if sep and rest else url


def check_transport_url(value: str) -> str:
    """`value` if it is a transport URL of a known scheme, else a ValueError saying why."""
    scheme, _, rest = value.partition("://")
    if scheme_of(value) not in SCHEMES or not rest:
        raise ValueError(f"must be a transport URL ({known_schemes()}), got '{shown_url(value)}'")
    try:
        urlsplit(value).port  # noqa: B018 - raises for a bad host or port
    except ValueError as exc:
        raise ValueError(f"not a valid URL: {exc}") from None
    return value


def transport_folder(url: str, root: Path) -> Path | None:
    """The folder of a `file://` URL, absolute (`file://dir` is relative to `root`, the config
    file's folder); None for another scheme or a URL without a folder."""
    if scheme_of(url) != "file":
        return None
    rest = unquote(url[len("file://") :])
    if not rest:
        return None
    path = Path(rest)
    return path if path.is_absolute() else (root / path).resolve()
