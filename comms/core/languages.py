"""Editions as values: one language's edition of the site, the editions a site offers, and the
one rule for which edition a reader gets (theirs if the site offers it, else the site's)."""

from __future__ import annotations

from dataclasses import dataclass

from comms.core.config import Config


@dataclass(frozen=True)
class Edition:
    """The site as readers of one language see it: the language its pages, feeds, calendars
    and mails are written in, and what follows from it."""

    language: str
    #: The site's own language: that of the originals and of the site root.
    home: str
    #: How the language is named on pages (`English`).
    label: str
    #: The writing direction (`ltr`, `rtl`): right-to-left languages mirror the layout.
    direction: str = "ltr"

    @property
    def is_home(self) -> bool:
        """True for the site's own edition (the originals, at the site root)."""
        return self.language == self.home

    @property
    def folder(self) -> str:
        """Where the edition's pages, feeds and calendars live (`en/`); the home edition's
        are at the site root ('')."""
        return "" if self.is_home else f"{self.language}/"


@dataclass(frozen=True)
class Editions:
    """The editions a site offers, the home edition first."""

    all: tuple[Edition, ...]

    @property
    def home(self) -> Edition:
        """The site's own edition."""
        return self.all[0]

    @property
    def translated(self) -> tuple[Edition, ...]:
        """The editions other than the site's, in configuration order."""
        return self.all[1:]

    @property
    def languages(self) -> tuple[str, ...]:
        """The languages the site offers editions in, the site's first."""
        return tuple(edition.language for edition in self.all)

    def get(self, language: str) -> Edition:
        """The edition in `language`; KeyError when the site offers none."""
        for edition in self.all:
            if edition.language == language:
                return edition
        raise KeyError(language)

    def for_reader(self, language: str | None) -> Edition:
        """The edition a reader of `language` gets: theirs if the site offers it, else the
        site's own. The one place this is decided (sending, the ledger's query, mails and
        subscriber pages ask here)."""
        for edition in self.all:
            if edition.language == language:
                return edition
        return self.home


def site_editions(config: Config) -> Editions:
    """The editions `config` offers: the one place Edition values are made."""
    home = config.home_language
    return Editions(
        tuple(
            Edition(tag, home, language.label, language.direction)
            for tag, language in config.languages.items()
        )
    )


def home_edition(config: Config) -> Edition:
    """The site's own edition."""
    return site_editions(config).home
