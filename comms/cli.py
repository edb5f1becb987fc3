"""The command line: the only place that prints or turns a CommsError into an exit code."""

from __future__ import annotations

import sys
import unicodedata
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

import click
from babel.dates import format_date, format_datetime
from jinja2 import Environment, FileSystemLoader

from . import __version__
from .build import WriteReport, collect, write_output
from .config import Config, load_config
from .content import KINDS, Site
from .errors import CommsError, ConfigError, ContentError
from .quality import check_issues
from .reader import SLUG_RE, read_content

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
F = TypeVar("F", bound=Callable[..., Any])


class State:
    """What the group options leave for the commands."""

    def __init__(self, config_path: Path | None, debug: bool) -> None:
        self.config_path = config_path
        self.debug = debug

    def config(self, strict: bool = False, **overrides: Any) -> Config:
        """Load the configuration, printing its warnings."""
        config = load_config(self.config_path, overrides=overrides, strict=strict)
        for warning in config.warnings:
            click.echo(f"warning: {warning}", err=True)
        return config


def _report(errors: list[ContentError], root: Path, strict: bool) -> tuple[int, int]:
    """Print content problems as PATH:LINE: message; return (errors, warnings)."""
    ordered = sorted(errors, key=lambda e: (str(e.path), e.line, e.message))
    for error in ordered:
        click.echo(error.format(root))
    failures = sum(1 for e in errors if not e.warning or strict)
    return failures, len(errors) - failures


def load_site(config: Config) -> tuple[Site, list[ContentError]]:
    """Read the configured content folder."""
    settings = config.settings
    return read_content(config.content_dir, config.tz, settings.regions, settings.topics)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
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


@cli.command()
@click.option("--strict", is_flag=True, help="Treat warnings (unknown keys …) as errors.")
@click.pass_obj
def check(state: State, strict: bool) -> None:
    """Validate content and configuration; print every problem as PATH:LINE: message.

    Exits 1 if there is any error (or any warning with --strict), 0 otherwise.
    """
    config = state.config(strict=strict)
    site, errors = load_site(config)
    errors = [*errors, *check_issues(config, site)]
    failures, warnings = _report(errors, config.root, strict)
    counts = ", ".join(f"{len(site.by_kind(k))} {KINDS[k].folder}" for k in KINDS)
    click.echo(f"{failures} error(s), {warnings} warning(s); valid: {counts}", err=True)
    if failures:
        sys.exit(1)


def slugify(title: str) -> str:
    """A file-name slug from a German title: umlauts transliterated, ASCII, hyphens."""
    text = title.lower()
    for src, dst in (("ä", "ae"), ("ö", "oe"), ("ü", "ue"), ("ß", "ss")):
        text = text.replace(src, dst)
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    words = "".join(c if c.isalnum() else " " for c in text).split()
    return "-".join(words)[:80].strip("-")


def _yaml_string(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


@cli.command()
@click.argument("kind", type=click.Choice(sorted(KINDS)))
@click.argument("title")
@click.pass_obj
def new(state: State, kind: str, title: str) -> None:
    """Create content/<kind>/<slug>.md from templates/archetypes/ (never overwrites)."""
    config = state.config()
    slug = slugify(title)
    if not SLUG_RE.match(slug):
        raise CommsError(f"cannot make a file name from the title '{title}'")
    target = config.content_dir / KINDS[kind].folder / f"{slug}.md"
    if target.exists():
        raise CommsError(f"{target.relative_to(config.root)} already exists; not overwritten")
    site, _ = load_site(config)
    today = config.now().date()
    env = Environment(loader=FileSystemLoader(TEMPLATES / "archetypes"), keep_trailing_newline=True)
    text = env.get_template(f"{kind}.md").render(
        title=_yaml_string(" ".join(title.split())),
        today=today.isoformat(),
        year=today.year,
        number=max((i.number for i in site.issues.values()), default=0) + 1,
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("x", encoding="utf-8") as handle:
        handle.write(text)
    click.echo(f"created {target.relative_to(config.root).as_posix()}")


def _when(value: date, config: Config) -> str:
    locale = config.settings.site.language
    if hasattr(value, "hour"):
        return format_datetime(
            value, "EEE, d. MMMM y, HH:mm 'Uhr'", tzinfo=config.tz, locale=locale
        )
    return format_date(value, "EEE, d. MMMM y", locale=locale)


@cli.command()
@click.pass_obj
def demo(state: State) -> None:
    """Run the pipeline on the sample content with the embedded defaults and summarise it."""
    config = state.config()
    site, errors = load_site(config)
    failures, warnings = _report(errors, config.root, strict=False)
    now = config.now()
    click.echo(f"comms {__version__} – {config.settings.site.name}")
    source = (
        f"reference date {now.date().isoformat()}" if config.settings.reference_date else "clock"
    )
    click.echo(f"Content in {config.content_dir} (now = {_when(now, config)}, from the {source})")
    for kind in KINDS.values():
        click.echo(f"  {len(site.by_kind(kind.name)):4d} {kind.plural}")
    click.echo(f"Check: {failures} error(s), {warnings} warning(s)")
    upcoming = site.upcoming_events(now)[:5]
    click.echo("Next events:" if upcoming else "Next events: none")
    for event in upcoming:
        place = event.location.city if event.location else "online"
        status = "" if event.status == "planned" else f" [{event.status}]"
        click.echo(f"  {_when(event.start, config)} – {event.title} ({place}){status}")
    scheduled = sorted(
        (i for i in site.issues.values() if i.status == "ready" and i.send_at and i.send_at > now),
        key=lambda i: i.send_at or now,
    )
    if scheduled:
        issue = scheduled[0]
        assert issue.send_at is not None
        click.echo(
            f"Next scheduled issue: #{issue.number} „{issue.subject}“ "
            f"on {_when(issue.send_at, config)} ({issue.slug})"
        )
    else:
        click.echo("Next scheduled issue: none")
    if failures:
        sys.exit(1)
    files, _ = _build(config, site, config.output_dir)
    click.echo(f"Output: {config.output_dir} ({files} files)")


def _build(config: Config, site: Site, out_dir: Path) -> tuple[int, WriteReport]:
    """Collect every producer's files in memory, then write them; (file count, report)."""
    files = collect(config, site)
    return len(files), write_output(out_dir, files)


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
    config = state.config()
    site, errors = load_site(config)
    failures, _ = _report(errors, config.root, strict=False)
    if failures:
        click.echo(f"{failures} error(s); nothing written", err=True)
        sys.exit(1)
    target = (out_dir or config.output_dir).resolve()
    _, report = _build(config, site, target)
    click.echo(
        f"Built {target}: {len(report.written)} written, {len(report.unchanged)} unchanged, "
        f"{len(report.removed)} removed"
    )


@cli.command()
@click.option("--port", default=8000, show_default=True, help="Port on 127.0.0.1.")
@click.pass_obj
def preview(state: State, port: int) -> None:
    """Serve the archive and every issue's e-mail (600 and 375 px) with rebuild on change."""
    from .preview import Preview

    config = state.config()
    with Preview(config) as server:
        click.echo(f"Preview: http://127.0.0.1:{port}/_preview/ (Ctrl+C stops)")
        if server.error:
            click.echo(server.error, err=True)
        server.serve(port)


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="Port."
)
@click.option(
    "--no-scheduler",
    is_flag=True,
    help="Serve the web endpoints only. For now this is the only mode: the scheduler joins "
    "in a later version, so the flag changes nothing yet.",
)
@click.option(
    "--trusted-proxy",
    metavar="ADDR",
    help="Address of a reverse proxy whose X-Forwarded-For/-Proto headers are believed "
    "(the rate limit and the consent ledger then see the visitor's address).",
)
@click.pass_obj
def serve(
    state: State, host: str, port: int, no_scheduler: bool, trusted_proxy: str | None
) -> None:
    """Serve the subscriber pages, /healthz and the output folder (waitress).

    Sign-up (/subscribe), confirmation (/confirm/…), unsubscribe with RFC 8058 one-click
    (/unsubscribe/…), preferences (/preferences/…); everything else comes from the output
    folder with ETags. Ctrl+C or SIGTERM stops after the queued confirmation mails went out.
    """
    import signal

    from waitress.server import create_server

    from .store import open_store
    from .subscriptions import Mailer, Subscriptions
    from .web import create_app

    config = state.config()
    store = open_store(config)
    mailer = Mailer(config)
    app = create_app(config.output_dir, Subscriptions(config, store, mailer))
    proxy: dict[str, Any] = {}
    if trusted_proxy:
        proxy = {
            "trusted_proxy": trusted_proxy,
            "trusted_proxy_headers": {"x-forwarded-for", "x-forwarded-proto"},
            "clear_untrusted_proxy_headers": True,
        }
    server = create_server(app, host=host, port=port, threads=8, ident="comms", **proxy)

    def stop(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    address = f"[{host}]" if ":" in host else host
    click.echo(f"Serving on http://{address}:{server.effective_port}/ (web only; Ctrl+C stops)")
    if not config.output_dir.is_dir():
        click.echo(f"warning: {config.output_dir} does not exist yet; run `comms build`", err=True)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
        mailer.close()
        store.close()


def main(argv: list[str] | None = None) -> None:
    """Console entry point: run the CLI, turning CommsError into a message and an exit code."""
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        cli.main(args=argv, prog_name="comms", standalone_mode=False)
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
        for problem in exc.problems:
            click.echo(f"error: {problem}", err=True)
        sys.exit(exc.exit_code)
    except CommsError as exc:
        if debug:
            raise
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
