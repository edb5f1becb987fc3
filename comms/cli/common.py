"""What every command module shares: the click group, its state and the printing helpers."""

from __future__ import annotations

import importlib
import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from comms import __version__
from comms.core.errors import CommsError, ContentError

# Each command imports what it uses when it runs (here: in the helper that needs it), so that
# `comms --help` and a command start without loading the rest of comms.
if TYPE_CHECKING:
    from comms.content.models import Site
    from comms.core.config import Config
    from comms.core.shutdown import Shutdown
    from comms.db.incidents import SendProblem
    from comms.db.store import Store
    from comms.publish.build_record import Stamps
    from comms.publish.refresh import Publication
    from comms.publish.state import PublishState
    from comms.schedule.runner import Overview


class State:
    """What the group options leave for the commands."""

    def __init__(self, config_path: Path | None, debug: bool) -> None:
        self.config_path = config_path
        self.debug = debug

    def config(self, strict: bool = False, **overrides: Any) -> Config:
        """Load the configuration, printing its warnings."""
        from comms.core.config import load_config
        from comms.core.logs import configure_logging

        config = load_config(self.config_path, overrides=overrides, strict=strict, keep=True)
        for warning in config.warnings:
            click.echo(f"warning: {warning}", err=True)
        # Every command's log lines alike (`[log] format`); the long-running ones log INFO.
        ctx = click.get_current_context(silent=True)
        daemon = ctx is not None and ctx.info_name in LONG_RUNNING
        configure_logging(
            secrets=config.secret_values(),
            level=logging.INFO if daemon else logging.WARNING,
            style=config.settings.log.format,
            debug=self.debug,
            process=ctx.command_path if ctx is not None else "comms",
        )
        return config


#: Commands that run until stopped: their log (stderr, or the journal) is their report.
LONG_RUNNING = frozenset({"serve", "worker"})


#: `comms --help` lists the commands in the order of an editor's work, by section.
SECTIONS: dict[str, tuple[str, ...]] = {
    "Editing": ("new", "translation", "digest", "list", "check", "preview", "build", "refresh"),
    "Sending": ("send", "proof", "approve", "status", "report", "schedule", "worker"),
    "Subscribers": ("subscribers", "bounces"),
    "Server": ("serve", "desk", "users", "backup", "restore"),
    "Trying it out": ("demo",),
}


#: The module of comms.cli that defines each top-level command: a command's module is imported
#: only when it runs (or when a listing needs every command). A command missing here still
#: runs, after every module is imported.
MODULES: dict[str, str] = {
    **dict.fromkeys(("new", "demo", "preview", "refresh", "list"), "content"),
    "build": "building",
    "check": "checking",
    "translation": "translations",
    "digest": "digest",
    **dict.fromkeys(("send", "proof", "status", "schedule"), "sending"),
    **dict.fromkeys(("approve", "desk"), "approve"),
    "report": "reporting",
    **dict.fromkeys(("worker", "backup", "restore"), "operating"),
    "subscribers": "subscribers",
    "bounces": "bounces",
    "serve": "serving",
    "users": "users",
}


def load_commands(names: list[str] | None = None) -> None:
    """Import the modules that define the commands `names` (every command by default); each
    registers its commands on `cli` as it is imported."""
    wanted = MODULES if names is None else [name for name in names if name in MODULES]
    for module in dict.fromkeys(MODULES[name] for name in wanted):
        importlib.import_module(f"comms.cli.{module}")


def summary(command: click.Command) -> str:
    """A command's one-line help: its short_help, else its docstring's first paragraph, whole
    (click's own cuts at the first '. ', which splits "GDPR Art. 15", and at a width)."""
    if command.short_help:
        return command.short_help
    text = (command.help or "").strip().split("\n\n")[0]
    return " ".join(text.replace("\b", "").split())


class Sectioned(click.Group):
    """A group whose help lists its commands in SECTIONS order (others in definition order),
    each with its whole first paragraph; subgroups inherit the class."""

    group_class = type

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """The command `cmd_name`, its module imported first if the group is `comms`."""
        if self is cli and cmd_name not in self.commands:
            load_commands([cmd_name])
            if cmd_name not in self.commands:
                # Not in MODULES (or a typo): found all the same, at the cost of every module.
                load_commands()
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Commands in the order of SECTIONS, then the rest as they were defined."""
        if self is cli:
            load_commands()
        sections = SECTIONS.values() if ctx.parent is None else ()
        ordered = [name for names in sections for name in names if name in self.commands]
        return ordered + [name for name in self.commands if name not in ordered]

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """One block per section (a subgroup has one block, "Commands")."""
        shown = {
            name: command
            for name in self.list_commands(ctx)
            if (command := self.get_command(ctx, name)) is not None and not command.hidden
        }
        sections = SECTIONS.items() if ctx.parent is None else ()
        blocks = [(title, [name for name in names if name in shown]) for title, names in sections]
        rest = [name for name in shown if not any(name in names for _, names in blocks)]
        blocks = [(title, names) for title, names in blocks if names]
        blocks.append(("Other commands" if blocks else "Commands", rest))
        # One width for every block, so that the summaries line up across sections.
        width = max((len(name) for name in shown), default=0)
        for title, names in blocks:
            if names:
                with formatter.section(title):
                    formatter.write_dl(
                        [(name.ljust(width), summary(shown[name])) for name in names]
                    )


@click.group(cls=Sectioned, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Configuration file (default: ./comms.toml; built-in defaults if there is none).",
)
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.version_option(__version__, prog_name="comms")
@click.pass_context
def cli(ctx: click.Context, config_path: Path | None, debug: bool) -> None:
    """comms: newsletter, web archive, feeds and calendars from Markdown content."""
    ctx.obj = State(config_path, debug)


def _lines(errors: list[ContentError], root: Path) -> list[str]:
    """Content problems as PATH:LINE: message, in the order they are printed."""
    # Issues last: their "events/x.md has errors; see above" refers to lines printed before.
    ordered = sorted(
        errors, key=lambda e: ("issues" in e.path.parent.parts, str(e.path), e.line, e.message)
    )
    return [error.format(root) for error in ordered]


def _report(errors: list[ContentError], root: Path, strict: bool) -> tuple[int, int]:
    """Print content problems as PATH:LINE: message; return (errors, warnings)."""
    for line in _lines(errors, root):
        click.echo(line)
    return _counts(errors, strict)


def _counts(errors: list[ContentError], strict: bool) -> tuple[int, int]:
    """(errors, warnings) among content problems; with `strict` every warning is an error."""
    failures = sum(1 for e in errors if not e.warning or strict)
    return failures, len(errors) - failures


def _valid_site(config: Config) -> tuple[Site, list[str]]:
    """The valid content and its warnings, printed (the lines); on errors print every problem
    and exit 1.

    For the commands that write the output folder: then nothing is written.
    """
    from comms.content.site import InvalidContent, load_valid_site

    try:
        site, warnings = load_valid_site(config)
    except InvalidContent as exc:
        failures, _ = _report(exc.problems, config.root, strict=False)
        click.echo(f"{failures} error(s); nothing written", err=True)
        sys.exit(1)
    _report(warnings, config.root, strict=False)
    return site, _lines(warnings, config.root)


def _when(value: date, config: Config) -> str:
    from comms.publish.templating import Formatter

    return Formatter(config).brief(value)


def _publish(
    config: Config,
    site: Site,
    out_dir: Path | None = None,
    tell_hubs: bool = False,
    stamps: Stamps | None = None,
) -> Publication:
    """Publish `site` now (`publish_now`) with this machine's publishing state."""
    from comms.publish.refresh import publish_now

    with _publish_state(config) as state:
        return publish_now(config, state, site, out_dir=out_dir, tell_hubs=tell_hubs, stamps=stamps)


@contextmanager
def _publish_state(config: Config) -> Iterator[PublishState]:
    """The sent issues, feed history and WebSub queue: in the database (shared by every host),
    or in the files under var/ while there is none (nothing sent yet; a build on a machine that
    never sent leaves no database behind; the first command that creates it carries the files
    over)."""
    from comms.core.database_url import database_exists

    if not database_exists(config.database_url):
        from comms.publish.state import FileState

        yield FileState(config.root)
        return
    # Only here: the database layer costs a build without a database a little; SQLAlchemy
    # (~0.15 s more) only where the schema must be made or migrated, or the URL needs it.
    from comms.db.publishing import DbPublishState

    state = DbPublishState.open(config)
    try:
        yield state
    finally:
        state.close()


def _json(data: Any) -> str:
    """JSON for the console: dates as ISO 8601, German text unescaped."""

    def default(value: Any) -> Any:
        if isinstance(value, date):
            return value.isoformat()
        if isinstance(value, tuple):
            return list(value)
        raise TypeError(type(value).__name__)

    return json.dumps(data, ensure_ascii=False, indent=2, default=default)


def _open_store(config: Config) -> Store:
    """Open the database, saying so when a secret key had to be generated."""
    from comms.db.store import open_store

    store = open_store(config)
    if store.generated_secret:
        click.echo(
            "warning: COMMS_SECRET_KEY is not set; generated a secret key and stored it in "
            f"{config.secret_key_file} (0600; set COMMS_SECRET_KEY in production, "
            "see docs/security.md)",
            err=True,
        )
    return store


def _signals(shutdown: Shutdown) -> Shutdown:
    """Let `shutdown` handle SIGTERM and SIGINT until the command ends."""
    click.get_current_context().call_on_close(shutdown.restore)
    return shutdown.install()


def _address(text: str) -> str:
    from comms.db.people import normalise_address

    try:
        return normalise_address(text)
    except ValueError as exc:
        raise CommsError(f"invalid e-mail address '{text}': {exc}") from None


def _totals(counts: dict[str, int]) -> str:
    from comms.db.status import FINAL
    from comms.sending.campaign import waiting

    shown = [f"{counts.get(s, 0)} {s}" for s in FINAL]
    return ", ".join(shown + [f"{waiting(counts)} waiting"])


def _schedule_lines(config: Config, view: Overview) -> list[str]:
    """The upcoming jobs and held sends of a scheduler overview, as printed."""
    from comms.schedule.plan import SEND_PREFIX

    lines = [f"Upcoming jobs ({config.settings.site.timezone}):"]
    if not any(job.id.startswith(SEND_PREFIX) for job in view.jobs):
        lines.append("  no scheduled sends (no ready issue with a send_at still to come)")
    for job in view.jobs:
        when = _when(job.next_run, config) if job.next_run else "paused"
        lines.append(f"  {when}  {job.description}")
    for entry in view.held:
        lines.append(_held_line(config, entry.slug, entry.send_at))
    for problem in view.problems:
        lines.append(_problem_line(config, problem))
    return lines


def _problem_line(config: Config, problem: SendProblem) -> str:
    """A refused or failed scheduled send, as `comms status` and `comms schedule` print it."""
    return (
        f"{problem.kind}: the scheduled send of {problem.slug} (due at "
        f"{_when(problem.due_at, config)}) at {_when(problem.at, config)}: {problem.reason}"
    )


def _problem_json(problem: SendProblem) -> dict[str, Any]:
    """A refused or failed scheduled send in JSON."""
    return {
        "issue": problem.slug,
        "status": problem.kind,
        "reason": problem.reason,
        "due_at": problem.due_at,
        "at": problem.at,
    }


def _held_line(config: Config, slug: str, due_at: datetime) -> str:
    return (
        f"held: {slug} was due at {_when(due_at, config)}; release with `comms send {slug} --now`"
    )
