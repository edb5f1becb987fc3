"""`comms check` on a text not saved yet: the problems the file would have if it held the text
the editor is typing (the desk asks while they type, and before it saves)."""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path

from comms.content.models import Issue, Kind, Site
from comms.content.reader import content_files, read_file, reference_problems
from comms.content.site import read_site
from comms.core.config import Config
from comms.core.errors import ContentError
from comms.publish.link_check import LinkChecker
from comms.publish.quality import check_issue


def _broken(config: Config, site: Site, problems: list[ContentError]) -> dict[tuple[str, str], str]:
    """(kind, slug) of every file with errors, and its path in the content folder (the
    reader's "events/x.md has errors; see above")."""
    failing = {problem.path for problem in problems if not problem.warning}
    files, _ = content_files(config.content_dir)
    return {
        (kind.name, path.stem): path.relative_to(config.content_dir).as_posix()
        for path, kind in files
        if path in failing and path.stem not in site.by_kind(kind.name)
    }


def draft_problems(config: Config, path: Path, kind: Kind, text: str) -> list[ContentError]:
    """Every problem `comms check` reports at the file `path` (of `kind`) if it held `text`,
    in line order; the file itself is not touched.

    The text is checked in a copy outside the content folder with the file's name (the checks
    that read the file read the copy); its problems are given at `path`. What the other files
    say about it (an issue naming a missing event) stays as it is on disk.
    """
    site, problems = read_site(config)
    settings = config.settings
    context = {"tz": config.tz, "regions": set(settings.regions), "topics": set(settings.topics)}
    with tempfile.TemporaryDirectory(prefix="comms-draft-") as folder:
        copy = Path(folder) / path.name
        copy.write_bytes(text.replace("\r\n", "\n").encode("utf-8"))
        item, found = read_file(copy, kind, context)
        items = dict(site.by_kind(kind.name))
        items.pop(path.stem, None)
        if item is not None:
            items[item.slug] = item
        drafted = replace(site)
        setattr(drafted, kind.folder, items)
        found.extend(LinkChecker(config, drafted).problems([copy]))
        if isinstance(item, Issue):
            found.extend(reference_problems(drafted, _broken(config, site, problems), item))
            found.extend(check_issue(config, drafted, item))
        own = [replace(problem, path=path) for problem in found if problem.path == copy]
    return sorted(dict.fromkeys(own), key=lambda problem: (problem.line, problem.warning))
