"""`comms build`, which skips a build that would write the same bytes before it imports the
build or reads the site (comms.publish.build_record's stamps)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import click

from comms.core.collector import batch

from .common import State, _publish, _valid_site, cli


@cli.command()
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Output folder (default: output_dir from the configuration).",
)
@click.pass_obj
def build(state: State, out_dir: Path | None) -> None:
    """Write the web archive, feeds, calendars and e-mail previews into the output folder.

    With content errors nothing is written and the exit code is 1.
    """
    from comms.publish import build_record

    config = state.config()
    target = (out_dir or config.output_dir).resolve()
    stamps = build_record.take_stamps(config, target)
    kept = build_record.skipped(config, target, stamps) if stamps is not None else None
    if kept is not None:
        # Nothing the build reads has changed since it wrote this folder: same bytes, and the
        # same warnings about the content.
        paths, notes = kept
        for note in notes:
            click.echo(note)
        click.echo(f"Built {target}: 0 written, {len(paths)} unchanged, 0 removed")
        return
    # One batch from reading to writing: between two, the collector walked the whole site
    # just read (a tenth of a second of a cold build of the bench site).
    with batch():
        site, notes = _valid_site(config)
        if stamps is not None:
            stamps = replace(stamps, notes=tuple(notes))
        report = _publish(config, site, target, stamps=stamps).write
    click.echo(
        f"Built {target}: {len(report.written)} written, {len(report.unchanged)} unchanged, "
        f"{len(report.removed)} removed"
    )
