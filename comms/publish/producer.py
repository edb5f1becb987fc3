"""What a build producer gets and gives: one `Build` in, `Files` out, alike for every producer."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TypeVar

from comms.content.models import Site
from comms.core.config import Config
from comms.publish.state import PublishState


@dataclass(frozen=True)
class Keyed:
    """How to make a file's bytes, and how to name everything they are made from (the page
    cache's key, `comms.publish.page_cache`; None when it cannot be named)."""

    key: Callable[[], str | None]
    make: Callable[[], bytes]


#: A file's bytes, or how to make them (called once, when the bytes are first read).
Body = bytes | Callable[[], bytes] | Keyed


class Files(Mapping[str, bytes]):
    """Relative POSIX path → bytes: what one build (or one producer of it) produces.

    The paths are known at once, a body may be made only when it is read: the link check
    asks which paths a build produces without rendering every page, mail and feed, and a
    body that fails to render raises where it is read (the writer, a test).
    """

    def __init__(self, bodies: Mapping[str, Body] | None = None) -> None:
        self._bodies: dict[str, Body] = dict(bodies or {})

    def __getitem__(self, path: str) -> bytes:
        body = self._bodies[path]
        if isinstance(body, Keyed):
            body = self._bodies[path] = body.make()
        elif callable(body):
            body = self._bodies[path] = body()
        return body

    def body(self, path: str) -> Body:
        """The body at `path` as it was given (bytes, or how to make them)."""
        return self._bodies[path]

    def key(self, path: str) -> str | None:
        """The cache key of the file at `path` if it has one and is not made yet, else None."""
        body = self._bodies[path]
        return body.key() if isinstance(body, Keyed) else None

    def __iter__(self) -> Iterator[str]:
        return iter(self._bodies)

    def __len__(self) -> int:
        return len(self._bodies)

    def __setitem__(self, path: str, body: Body) -> None:
        self._bodies[path] = body

    def add(self, other: Files, folder: str = "") -> None:
        """Take over the files of `other` under `folder` (a prefix), bodies still unmade."""
        for path, body in other._bodies.items():
            self._bodies[folder + path] = body


@dataclass(frozen=True)
class Build:
    """Everything a producer may read: the configuration, the site (its `sent` issues set) and
    the publishing state that keeps the feed history."""

    config: Config
    site: Site
    state: PublishState


_T = TypeVar("_T")


def per_build(make: Callable[[Build], _T]) -> Callable[[Build], _T]:
    """`make` made once per build and shared by its producers: the last build's value is
    kept, by the build's identity (a build's site and state do not change while it runs)."""
    last: list[tuple[Build, _T]] = []

    def shared(build: Build) -> _T:
        if last and last[0][0] is build:
            return last[0][1]
        made = make(build)
        last[:] = [(build, made)]
        return made

    shared.__doc__ = make.__doc__
    return shared


#: A stage that contributes files to the build (pages, feeds and calendars, editions …).
Producer = Callable[[Build], Files]
