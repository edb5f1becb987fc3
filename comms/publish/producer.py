"""What a build producer gets and gives: one `Build` in, `Files` out, alike for every producer."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from comms.content.models import Site
from comms.core.config import Config
from comms.publish.state import PublishState

#: Relative POSIX path → bytes: what one build (or one producer of it) produces.
Files = dict[str, bytes]


@dataclass(frozen=True)
class Build:
    """Everything a producer may read: the configuration, the site (its `sent` issues set) and
    the publishing state that keeps the feed history."""

    config: Config
    site: Site
    state: PublishState


#: A stage that contributes files to the build (pages, feeds and calendars, editions …).
Producer = Callable[[Build], Files]
