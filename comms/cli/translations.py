"""Translation commands: start a translation beside its original, record its original's digest."""

from __future__ import annotations

from pathlib import Path

import click

from comms.content.models import KINDS
from comms.core.errors import CommsError

from .common import State, cli


@cli.group()
def translation() -> None:
    """Translations beside their originals: content/<kind>/<slug>.<lang>.md."""


@translation.command("new")
@click.argument("kind", type=click.Choice(sorted(KINDS)))
@click.argument("slug")
@click.argument("language")
@click.pass_obj
def new_translation(state: State, kind: str, slug: str, language: str) -> None:
    """Create content/<kind>/<slug>.<language>.md from the original (never overwrites)."""
    from comms.content.translation_files import skeleton
    from comms.core.languages import site_editions

    config = state.config()
    translated = [edition.language for edition in site_editions(config).translated]
    if language not in translated:
        others = ", ".join(translated)
        raise CommsError(f"'{language}' is not an enabled edition language (enabled: {others})")
    folder = config.content_dir / KINDS[kind].folder
    original = folder / f"{slug}.md"
    if not original.is_file():
        raise CommsError(f"no original {original.relative_to(config.root).as_posix()}")
    target = folder / f"{slug}.{language}.md"
    if target.exists():
        raise CommsError(f"{target.relative_to(config.root).as_posix()} already exists")
    try:
        text = skeleton(original, language)
    except ValueError as exc:
        raise CommsError(str(exc)) from None
    with target.open("x", encoding="utf-8") as handle:
        handle.write(text)
    click.echo(f"created {target.relative_to(config.root).as_posix()}")


@translation.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
def stamp(files: tuple[Path, ...]) -> None:
    """Record the current digest of each translation's original (after updating it)."""
    from comms.content.reader import TRANSLATION_NAME
    from comms.content.translation_files import digest, with_digest

    for path in files:
        match = TRANSLATION_NAME.match(path.name)
        original = path.with_name(f"{match['slug']}.md") if match else None
        if original is None or not original.is_file():
            raise CommsError(f"{path}: not a translation beside its original (<slug>.<lang>.md)")
        try:
            text = with_digest(path.read_text("utf-8"), digest(original))
        except ValueError as exc:
            raise CommsError(f"{path}: {exc}") from None
        path.write_text(text, "utf-8")
        click.echo(f"{path}: {digest(original)}")
