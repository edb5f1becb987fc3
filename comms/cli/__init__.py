"""The command line: click commands by area (`common` holds the group and shared helpers;
`approve`, `bounces`, `content`, `operating`, `reporting`, `sending`, `serving`,
`subscribers`, `users`) that parse options, call the services of the stage packages and print the
result. The only place that prints or turns a CommsError into an exit code. May import every
package; nothing imports comms.cli but `python -m comms` (comms/__main__.py) and the `comms`
console script."""

from __future__ import annotations

import atexit
import gc
import sys
from typing import TYPE_CHECKING

import click

from comms.core.errors import CommsError, ConfigError
from comms.core.local_faults import local_error
from comms.core.logs import shown_url

from . import common

if TYPE_CHECKING:
    from .common import cli

# A command's objects die with its process: the collection Python runs at exit would walk
# every one of them (0.3-0.5 s of CPU after a build of 2,600 items) to free memory the
# process gives back anyway. Frozen objects are left to it; nothing of comms needs a
# collector to close or flush it (files and connections are closed by their `with`).
atexit.register(gc.freeze)

# The package's two entry points: the console script and the click group (for CliRunner).
__all__ = ["cli", "main"]


def __getattr__(name: str) -> click.Group:
    """`cli`: the click group with every command registered (for CliRunner and the docs).

    `main` imports a command's module only when the command runs: `comms check` starts
    without loading what sending, serving or the subscribers' commands need.
    """
    if name != "cli":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    common.load_commands()
    return common.cli


def main(argv: list[str] | None = None) -> None:
    """Console entry point: run the CLI, turning CommsError into a message and an exit code."""
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        common.cli.main(args=argv, prog_name="comms", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(1)
    except ConfigError as exc:
        if debug:
            raise
        # A driver's message may quote the database URL: no password on screen or in a log.
        for warning in exc.warnings:
            click.echo(f"warning: {shown_url(warning)}", err=True)
        for problem in exc.problems:
            click.echo(f"error: {shown_url(problem)}", err=True)
        sys.exit(exc.exit_code)
    except CommsError as exc:
        if debug:
            raise
        click.echo(f"error: {shown_url(str(exc))}", err=True)
        sys.exit(exc.exit_code)
    except OSError as exc:
        # A local fault no command turned into a message of its own: still one line.
        if debug:
            raise
        click.echo(f"error: {local_error(exc, doing='')}", err=True)
        sys.exit(1)
    except Exception as exc:
        if debug or not _database_full(exc):
            raise
        from comms.db.space import space_error

        click.echo(f"error: {space_error(exc)}", err=True)
        sys.exit(1)


def _database_full(exc: Exception) -> bool:
    """Whether `exc` is the database's driver saying it ran out of space. SQLAlchemy is loaded
    only by the commands that need it (a driver error cannot come before), so this asks it
    only then: `comms --help` starts without it."""
    if "sqlalchemy" not in sys.modules:
        return False
    from sqlalchemy.exc import DBAPIError

    from comms.db.space import out_of_space

    return isinstance(exc, DBAPIError) and out_of_space(exc)
