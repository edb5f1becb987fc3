"""A digest issue's sections per region, and which of them one reader sees.

Every reader gets the statewide section and the sections of the regions they chose (none
chosen: every region), each with only the items of their topics (none chosen: every topic);
a section without items has no heading. Readers who see the same items share one render
(`Reader.key`), so the send path renders each distinct view once.
"""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo

from comms.content.models import Event, Issue, Practice, Site

#: The statewide region when the issue's digest is gone (the default of `Digest.statewide`).
STATEWIDE = "landesweit"


@dataclass(frozen=True)
class Reader:
    """What a subscriber chose: regions and topics (empty: all of them)."""

    regions: frozenset[str] = frozenset()
    topics: frozenset[str] = frozenset()

    @classmethod
    def of(cls, regions: str | list[str], topics: str | list[str]) -> Reader:
        """A reader from the stored ` a b ` strings (or lists) of a subscriber."""
        split = (v.split() if isinstance(v, str) else v for v in (regions, topics))
        chosen_regions, chosen_topics = split
        return cls(frozenset(chosen_regions), frozenset(chosen_topics))


@dataclass(frozen=True)
class Section:
    """One region's items in a digest issue."""

    region: str
    events: tuple[Event, ...]
    practices: tuple[Practice, ...]

    @property
    def uids(self) -> tuple[str, ...]:
        """The items of the section, as `kind/slug`."""
        return tuple(item.uid for item in (*self.events, *self.practices))


def statewide(site: Site, issue: Issue) -> str:
    """The region whose section every reader of the digest issue gets."""
    digest = site.digests.get(issue.from_digest or "")
    return digest.statewide if digest else STATEWIDE


def _wanted(topics: list[str], reader: Reader) -> bool:
    return not reader.topics or not topics or bool(reader.topics & set(topics))


def sections(
    site: Site, issue: Issue, tz: ZoneInfo, order: list[str], reader: Reader | None = None
) -> list[Section]:
    """The sections of a digest issue, statewide first, then regions in `order` (the settings'
    table); only what `reader` sees (everything without one); no section without items."""
    home = statewide(site, issue)
    view = reader or Reader()
    shown = [home, *(r for r in order if r != home and (not view.regions or r in view.regions))]
    events = [e for e in site.issue_events(issue, tz) if _wanted(e.topics, view)]
    practices = [p for p in site.issue_practices(issue) if _wanted(p.topics, view)]
    found = []
    for region in shown:
        section = Section(
            region,
            tuple(e for e in events if e.region == region),
            tuple(p for p in practices if p.region == region),
        )
        if section.uids:
            found.append(section)
    return found


def view_key(found: list[Section]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """What a reader sees, as a cache key: readers with equal keys get equal mails."""
    return tuple((section.region, section.uids) for section in found)


@dataclass(frozen=True)
class View:
    """One distinct view of a digest issue: its sections' regions, items, and who gets it."""

    regions: tuple[str, ...]
    #: The topic choices of its readers, each sorted (empty: every topic).
    topics: tuple[tuple[str, ...], ...]
    items: int
    recipients: int


def views(
    site: Site,
    issue: Issue,
    tz: ZoneInfo,
    order: list[str],
    choices: dict[tuple[str, str], int],
) -> list[View]:
    """The distinct views of a digest issue for the readers' stored (regions, topics) choices
    and their counts, most recipients first; an empty view (no item, no award) has no regions
    and no items: the send skips its readers."""
    award = site.issue_award(issue) is not None
    grouped: dict[object, tuple[list[Section], set[tuple[str, ...]], int]] = {}
    for (regions, topics), count in choices.items():
        reader = Reader.of(regions, topics)
        found = sections(site, issue, tz, order, reader)
        key = view_key(found) if found or award else None
        _, seen, total = grouped.get(key, (found, set(), 0))
        seen.add(tuple(sorted(reader.topics)))
        grouped[key] = (found, seen, total + count)
    shown = [
        View(
            tuple(s.region for s in found),
            tuple(sorted(seen)),
            sum(len(s.uids) for s in found) + (1 if award and key is not None else 0),
            total,
        )
        for key, (found, seen, total) in grouped.items()
    ]
    return sorted(shown, key=lambda v: (-v.recipients, v.regions))
