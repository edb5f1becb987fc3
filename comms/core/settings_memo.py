"""The validated settings kept in var/ across processes, under a digest of what made them.

Validating the settings built every section's validators and imported email-validator: a
fifth of a one-change build's start. A command that reads the same comms.toml bytes, the same
COMMS_* values and runs the same code takes them from here instead. No secret is written:
the kept settings hold none, the digest covers only which secrets are set, and each secret
is put back from the environment, through its field's own validators, when they are taken.
Settings with a URL that holds a password (a database's) are not kept at all.
"""

from __future__ import annotations

import hashlib
import pickle
import sys
from collections.abc import Mapping
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pydantic_core
from pydantic import VERSION, BaseModel, ValidationError

from comms.core.files import file_stamp, read_checked, write_checked
from comms.core.settings import known_zone

if TYPE_CHECKING:
    from comms.core.config import Settings

#: Where the settings are kept, under the configuration's folder (beside the build's records).
MEMO_FILE = Path("var") / "cache" / "build" / "settings.bin"
#: The kept file's layout; a file of another is a miss.
LAYOUT = 1
#: The code a validation's outcome depends on besides this package's settings modules.
_LIBRARIES = ("email_validator", "idna")


def _code() -> bytes:
    """A digest of the code that validates: comms.core's modules (the settings, their checks;
    they import nothing else of comms), Python's and pydantic's versions and the installed
    checkers' files."""
    versions = f"{sys.version}\0{VERSION}\0{pydantic_core.__version__}\0"
    digest = hashlib.sha256(versions.encode())
    for path in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    for name in _LIBRARIES:
        spec = find_spec(name)
        stamp = file_stamp(spec.origin) if spec is not None and spec.origin else None
        digest.update(f"{name}\0{stamp}\0".encode())
    return digest.digest()


class SettingsMemo:
    """The settings validated from one config file's bytes and one environment."""

    def __init__(
        self,
        path: Path,
        data: bytes,
        environ: Mapping[str, str],
        names: Mapping[str, tuple[str, ...]],
        secrets: frozenset[tuple[str, ...]],
        strict: bool,
    ) -> None:
        """`names`: every environment variable the settings read and its key path; `secrets`:
        the key paths whose values must not be kept."""
        self.file = path.parent / MEMO_FILE
        #: Each secret the environment sets: its key path and value (put back when taken).
        self.secrets = {
            keys: environ[name]
            for name, keys in names.items()
            if keys in secrets and name in environ
        }
        digest = hashlib.sha256(_code())
        digest.update(f"{LAYOUT}\0{strict}\0{path.name}\0".encode())
        digest.update(hashlib.sha256(data).digest())
        for name in sorted(names):
            if name not in environ:
                continue
            # A secret's value stays out of the digest: a hash of a weak password is a way to
            # guess it. Its field's validators check it again when it is put back.
            value = "" if names[name] in secrets else environ[name]
            digest.update(f"{name}\0{names[name] in secrets}\0{value}\0".encode())
        self.key = digest.hexdigest()
        #: Off when a value the settings read is a URL with a password (a database's, a
        #: transport's): neither it nor its hash may be kept, and it has no field of its own
        #: to be put back into.
        self.off = any(_url_password(environ[name]) for name in names if name in environ)

    def take(self) -> tuple[Settings, list[str]] | None:
        """The kept settings and warnings with the environment's secrets put back; None when
        none are kept for this key, or a secret fails its field's validators (then the whole
        validation names it)."""
        if self.off:
            return None
        found = read_checked(self.file, LAYOUT)
        if not isinstance(found, list) or len(found) != 3 or found[0] != self.key:
            return None
        try:
            settings = pickle.loads(found[1])
        except Exception:  # a damaged or stale pickle is only a miss
            return None
        from comms.core.config import Settings

        if not isinstance(settings, Settings):
            return None
        try:
            # Checked again on every take: a system update may remove a zone kept settings name.
            known_zone(settings.site.timezone)
            settings = _with(settings, self.secrets)
        except (ValueError, ValidationError):  # then the whole validation names the key
            return None
        return settings, [str(warning) for warning in found[2]]

    def keep(self, settings: Settings, warnings: list[str]) -> None:
        """Keep `settings`, without their secrets, for the next process with this key (a
        failure to write only costs it a validation)."""
        blank = _with(settings, dict.fromkeys(self.secrets))
        if self.off or _url_password(blank):  # one from the file: not copied into var/ either
            return
        write_checked(self.file, LAYOUT, [self.key, pickle.dumps(blank), list(warnings)])


def _url_password(value: Any) -> bool:
    """Whether `value` (settings, a section, a list, a text) holds a URL with a password."""
    if isinstance(value, BaseModel):
        return any(_url_password(getattr(value, name)) for name in type(value).model_fields)
    if isinstance(value, dict):
        return any(_url_password(item) for item in value.values())
    if isinstance(value, list | tuple):
        return any(_url_password(item) for item in value)
    if isinstance(value, str) and "://" in value:
        try:
            return urlsplit(value).password is not None
        except ValueError:  # not a URL after all (a bad port): none of its parts is kept
            return True
    return False


def _with(settings: Settings, values: Mapping[tuple[str, ...], str | None]) -> Settings:
    """`settings` with each section field in `values` set to its value; a value that is not
    None goes through the field's validators (ValidationError when it fails them)."""
    sections: dict[str, BaseModel] = {}
    for (name, field), value in values.items():
        section = sections.get(name) or getattr(settings, name).model_copy()
        if value is None:
            section = section.model_copy(update={field: None})
        else:
            # Validated into the copy in place, as an assignment is (the model is frozen).
            type(section).__pydantic_validator__.validate_assignment(section, field, value)
        sections[name] = section
    return settings.model_copy(update=sections) if sections else settings
