"""The error hierarchy: core code raises these, only the CLI turns them into exit codes."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


class CommsError(Exception):
    """Base class of every error the CLI reports without a traceback."""

    exit_code = 1


class ConfigError(CommsError):
    """The configuration is invalid; carries every problem found."""

    def __init__(self, problems: list[str], warnings: list[str] | None = None) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems
        #: Warnings found on the way (unknown keys), shown with the errors.
        self.warnings = warnings or []


@dataclass(frozen=True)
class ContentError:
    """One problem in one content file, at a line (1-based)."""

    path: Path
    line: int
    message: str
    field: str | None = None
    warning: bool = False

    def format(self, root: Path | None = None) -> str:
        """Render as `PATH:LINE: message`, PATH relative to `root` (even via `..`)."""
        path = self.path.as_posix()
        if root is not None:
            # Not resolve(): a symlinked content folder keeps the path the editor knows.
            path = Path(os.path.relpath(self.path.absolute(), root.absolute())).as_posix()
        prefix = "warning: " if self.warning else ""
        text = f"field '{self.field}': {self.message}" if self.field else self.message
        return f"{path}:{self.line}: {prefix}{text}"


class ContentErrors(CommsError):
    """Raised when a stage needs valid content and got errors."""

    def __init__(self, errors: list[ContentError]) -> None:
        super().__init__(f"{len(errors)} content error(s)")
        self.errors = errors


class DeliveryError(CommsError):
    """A message could not be delivered; carries the server's reply when there was one."""

    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        enhanced: str | None = None,
        ambiguous: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.enhanced = enhanced
        #: True when the server may have accepted the message (connection lost after DATA).
        self.ambiguous = ambiguous
        #: Seconds the server asked us to wait (HTTP Retry-After, 429), if any.
        self.retry_after = retry_after


class TemporaryFailure(DeliveryError):
    """Delivery failed for now; retry later (4xx, timeouts, dropped connections)."""


class PermanentFailure(DeliveryError):
    """Delivery failed for good for this recipient (5xx such as unknown user)."""


class PolicyRejection(DeliveryError):
    """The receiver rejects the sender (5.7.x): stop the campaign, do not blame the address."""


class LocalError(CommsError):
    """A fault of this machine, not of content or a server: a full disk, a read-only file
    system, a missing permission; the message names the path (`comms.core.local_faults`)."""


class EmptyView(CommsError):
    """A digest issue has nothing for this reader: no section with items, no award. The send
    skips them rather than mail an intro alone."""


class RenderError(CommsError):
    """A template or the MJML compiler failed; names the template or item."""


class BadToken(CommsError):
    """A signed token (unsubscribe, preferences, confirm) is forged, damaged or expired."""


class MessageError(CommsError):
    """A message cannot be built from the issue and configuration (e.g. CR/LF in a header)."""


class Unreachable(TemporaryFailure):
    """The mail server or API cannot be reached at all (refused, no route, connect timeout)."""


class ExpiredToken(BadToken):
    """A time-limited token (confirmation link) was genuine but is too old."""
