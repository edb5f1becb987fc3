"""Sending commands: send (with proofs and dry runs), status and schedule."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import replace
from datetime import timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

import click

from comms.core.collector import batch
from comms.core.errors import CommsError

from .approve import blocked_sends, desk_json, desk_lines, read_issue
from .common import (
    State,
    _address,
    _held_line,
    _json,
    _open_store,
    _problem_json,
    _problem_line,
    _schedule_lines,
    _signals,
    _totals,
    _when,
    cli,
)

# What a command uses is imported when it runs (see comms.cli.common).
if TYPE_CHECKING:
    from comms.core.config import Config
    from comms.db.approvals import ProofRecord
    from comms.db.incidents import Held, SendProblem
    from comms.db.ledger import Campaign
    from comms.db.store import Store
    from comms.sending.campaign import SendPlan, SendReport
    from comms.sending.rules import Refusal, Request
    from comms.sending.run import Progress


def _campaign_json(store: Store, campaign: Campaign) -> dict[str, Any]:
    from comms.db.status import DeliveryStatus

    counts = store.ledger.counts(campaign.id)
    return {
        "issue": campaign.slug,
        "status": campaign.status,
        "recipients": campaign.recipients,
        "counts": {status: counts.get(status, 0) for status in DeliveryStatus},
        "started": campaign.created_at,
        "updated": campaign.updated_at,
    }


def _held_json(held: Held) -> dict[str, Any]:
    """A held send in `comms status --json`: no campaign yet, so every count is 0."""
    from comms.db.status import DeliveryStatus

    return {
        "issue": held.slug,
        "status": "held",
        "recipients": 0,
        "counts": dict.fromkeys(DeliveryStatus, 0),
        "due_at": held.due_at,
        "held_at": held.held_at,
    }


def _unstarted_json(problem: SendProblem) -> dict[str, Any]:
    """A refused or failed scheduled send without a campaign in `comms status --json`."""
    from comms.db.status import DeliveryStatus

    return {
        "issue": problem.slug,
        "status": problem.kind,
        "recipients": 0,
        "counts": dict.fromkeys(DeliveryStatus, 0),
        "due_at": problem.due_at,
        "problem": _problem_json(problem),
    }


@cli.command()
@click.argument("issue", required=False)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON.")
@click.option("--errors", "limit", default=10, show_default=True, help="How many recent errors.")
@click.option(
    "--health",
    is_flag=True,
    help="Report what /healthz reports (database, scheduler, live senders, stalled campaigns); "
    "exit 1 when something is wrong.",
)
@click.option(
    "--watch",
    is_flag=True,
    help="Follow the issue's send (from any host) until it is no longer sending; Ctrl+C stops.",
)
@click.option(
    "--interval",
    default=2.0,
    show_default=True,
    type=click.FloatRange(min=0.2),
    help="Seconds between two looks with --watch.",
)
@click.pass_obj
def status(
    state: State,
    issue: str | None,
    as_json: bool,
    limit: int,
    health: bool,
    watch: bool,
    interval: float,
) -> None:
    """Delivery counts per status and the latest errors of one issue, or every campaign.

    For one issue also why it may not go out now (in the words of `comms send`), its current
    version, approvals and proofs. With --health: the database, the scheduler's holder and the
    age of its heartbeat, the live senders per campaign and the campaigns that stalled
    (`schedule.stall_minutes`), as `/healthz` reports them; exit 1 when something is wrong.
    With --watch it follows the issue's send as it goes on, started on this host or any other
    (a progress bar on a terminal, else a line per change), waits for a send that has not
    started, and ends with the full status once the campaign is no longer sending; Ctrl+C
    ends it too (exit 0).
    """
    from comms.db.feedback import BOUNCE_COUNTS, Feedback
    from comms.db.incidents import held_list, problem_list
    from comms.db.status import DeliveryStatus

    config = state.config()
    if health:
        _print_health(config, as_json)
        return
    store = _open_store(config)
    if watch:
        if issue is None:
            raise click.UsageError("--watch follows one issue: comms status ISSUE --watch")
        if not _follow(store, issue, interval):
            return  # Ctrl+C
    held = {h.slug: h for h in held_list(store.engine)}
    problems = {p.slug: p for p in problem_list(store.engine)}
    if issue is None:
        rows = [_campaign_json(store, c) for c in store.ledger.campaigns()]
        if as_json:
            started = {row["issue"] for row in rows}
            for row in rows:
                found = problems.get(row["issue"])
                row["problem"] = None if found is None else _problem_json(found)
            unstarted = [_unstarted_json(p) for slug, p in problems.items() if slug not in started]
            click.echo(_json(rows + [_held_json(h) for h in held.values()] + unstarted))
            return
        if not rows and not held and not problems:
            click.echo("no campaigns yet")
        for row in rows:
            counts = ", ".join(f"{n} {s}" for s, n in row["counts"].items() if n)
            click.echo(
                f"{row['issue']}: {row['status']}, {row['recipients']} recipient(s); {counts}"
            )
        for h in held.values():
            click.echo(_held_line(config, h.slug, h.due_at))
        for entry in problems.values():
            click.echo(_problem_line(config, entry))
        return
    campaign = store.ledger.campaign(issue)
    desk = desk_json(config, store, issue)
    problem = problems.get(issue)
    desk["problem"] = None if problem is None else _problem_json(problem)
    shown = [] if problem is None else [_problem_line(config, problem)]
    if campaign is None and issue in held:
        if as_json:
            click.echo(_json(_held_json(held[issue]) | desk))
        else:
            click.echo(_held_line(config, issue, held[issue].due_at))
            for line in desk_lines(config, desk) + shown:
                click.echo(line)
        return
    if campaign is None:
        if desk["version"] is None and not (desk["approvals"] or desk["proofs"]):
            raise CommsError(f"no issue '{issue}' in {config.content_dir / 'issues'}")
        if as_json:
            zero = dict.fromkeys(DeliveryStatus, 0)
            click.echo(_json({"issue": issue, "status": "not started", "recipients": 0,
                              "counts": zero, "errors": [], "next_attempt": None,
                              "bounces": dict.fromkeys(BOUNCE_COUNTS, 0)} | desk))  # fmt: skip
        else:
            click.echo(f"{issue}: not started (no campaign yet; `comms send {issue}` starts it)")
            for line in desk_lines(config, desk) + shown:
                click.echo(line)
        return
    data = _campaign_json(store, campaign)
    data["errors"] = store.ledger.recent_errors(campaign.id, limit)
    data["next_attempt"] = store.ledger.next_attempt(campaign.id)
    data["bounces"] = Feedback(store.engine).counts(campaign.id)
    if as_json:
        click.echo(_json(data | desk))
        return
    click.echo(f"{issue}: {data['status']}, {data['recipients']} recipient(s)")
    for name, count in data["counts"].items():
        click.echo(f"  {name:<10} {count:>7}")
    bounces = data["bounces"]
    if any(bounces.values()):  # the line appears once something came back
        click.echo(
            f"bounces: {bounces['hard']} hard, {bounces['soft']} soft; "
            f"complaints: {bounces['complaint']}"
        )
    if data["next_attempt"]:
        click.echo(f"next retry: {_when(data['next_attempt'], config)}")
    if data["errors"]:
        click.echo("recent errors:")
    for row in data["errors"]:
        who = row["email"] or "(erased)"
        tries = f"{row['attempts']} attempt(s)"
        click.echo(f"  {who}: {row['status']} after {tries}: {row['last_error']}")
    for line in desk_lines(config, desk) + shown:
        click.echo(line)


def _print_health(config: Config, as_json: bool) -> None:
    """`comms status --health`: what /healthz says, without migrating or waiting; exit 1 when
    something is wrong."""
    from comms.core.clock import now_utc
    from comms.db.engine import make_engine
    from comms.db.health import read_health

    engine = make_engine(config.database_url)
    try:
        stall = timedelta(minutes=config.settings.schedule.stall_minutes)
        report = read_health(engine, now_utc(), stall)
    finally:
        engine.dispose()
    if as_json:
        click.echo(_json(report.as_json()))
    else:
        click.echo(f"database: {'ok' if report.database else 'unreachable'}")
        if report.database:
            held = report.scheduler
            if held is None:
                click.echo("scheduler: not running")
            else:
                state = "running" if held.alive else "lease ran out"
                click.echo(
                    f"scheduler: {state} in {held.owner} "
                    f"(last heartbeat {held.heartbeat_age:.0f} s ago)"
                )
            if not report.senders:
                click.echo("senders: none")
            for issue, runs in report.senders.items():
                who = ", ".join(f"{s.owner} ({s.claimed} claimed)" for s in runs)
                click.echo(f"senders of {issue}: {who}")
        for problem in report.problems:
            click.echo(f"problem: {problem}", err=True)
    if not report.ok:
        sys.exit(1)


def _follow(store: Store, issue: str, interval: float) -> bool:
    """Show a send's progress until its campaign is no longer sending; False on Ctrl+C."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        ProgressColumn,
        Task,
        TextColumn,
        TimeRemainingColumn,
    )
    from rich.progress import Progress as ProgressBar
    from rich.text import Text

    # Defined here: rich is imported only when a send shows its progress.
    class _Rate(ProgressColumn):
        """Messages per second of a progress task."""

        def render(self, task: Task) -> Text:
            """The task's current speed."""
            return Text(f"{task.speed or 0:,.0f} msg/s")

    from comms.db.status import FINAL, CampaignStatus

    console = Console()
    last = ""
    with ProgressBar(
        TextColumn(issue),
        BarColumn(),
        MofNCompleteColumn(),
        _Rate(),
        TimeRemainingColumn(),
        console=console,
        disable=not console.is_terminal,
    ) as bar:
        task = bar.add_task("watch", total=None)
        try:
            while True:
                campaign = store.ledger.campaign(issue)
                if campaign is None:
                    line = f"{issue}: not started; waiting for its send"
                else:
                    counts = store.ledger.counts(campaign.id)
                    settled = sum(counts.get(s, 0) for s in FINAL)
                    bar.update(task, total=campaign.recipients, completed=settled)
                    line = (
                        f"{issue}: {campaign.status}, {settled} of {campaign.recipients} "
                        f"settled ({_totals(counts)})"
                    )
                if line != last and not console.is_terminal:
                    click.echo(line)
                last = line
                if campaign is not None and campaign.status != CampaignStatus.SENDING:
                    return True
                time.sleep(interval)
        except KeyboardInterrupt:
            return False


def _print_plan(
    config: Config, plan: SendPlan, request: Request, dry: bool, later: Refusal | None = None
) -> None:
    """A send's plan, as printed by a dry run and before the question on a terminal; `later`:
    why the same command without --dry-run would refuse to send now (its send_at)."""
    from comms.sending.approval import selection

    issue, options, todo = plan.issue, plan.options, plan.todo
    label = f"#{issue.number} „{issue.subject}“ ({issue.slug})"
    click.echo(f"Plan for {label}, nothing is sent:" if dry else f"About to send {label}:")
    click.echo(f"  recipients: {plan.recipients}" + (" (campaign started)" if plan.started else ""))
    click.echo(f"  selected: {selection(issue)}")
    if later is not None:
        click.echo(f"  time: not now: {later.reason}")
    elif issue.send_at is None:
        click.echo("  time: now (the issue has no send_at)")
    elif issue.send_at > request.now:
        click.echo(f"  time: now, before its send_at {_when(issue.send_at, config)} (--now)")
    else:
        click.echo(f"  time: now (its send_at {_when(issue.send_at, config)} has passed)")
    moment = "then" if later is not None else "now"
    click.echo(
        f"  to send {moment}: {todo} in {plan.batches} batch(es) of up to {options.claim_size}"
    )
    if plan.editions:
        # Sorted by size: the edition most people get first.
        per = sorted(plan.editions.items(), key=lambda pair: (-pair[1], pair[0]))
        label = "to send per edition" if plan.started else "recipients per edition"
        click.echo(f"  {label}: " + ", ".join(f"{lang or 'none'} {n}" for lang, n in per))
    click.echo(f"  connections: {options.concurrency}")
    if options.rate > 0:
        seconds = round(todo / options.rate)
        click.echo(
            f"  estimated time: {seconds // 60} min {seconds % 60} s at {options.rate:g} msg/s"
        )
    else:
        click.echo("  estimated time: as fast as the server accepts (no rate limit)")


def progress_bar(stack: ExitStack, plan: SendPlan) -> Progress | None:
    """A progress bar with rate and time left on stderr, shown only when it is a terminal;
    closed with `stack`. None where no terminal is to be had."""
    # Not on a terminal (a log, a pipe): no bar, so rich is not even imported. rich's own
    # FORCE_COLOR is not asked for: it would draw a live bar into a log.
    if not sys.stderr.isatty():
        return None
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        ProgressColumn,
        Task,
        TextColumn,
        TimeRemainingColumn,
    )
    from rich.progress import Progress as ProgressBar
    from rich.text import Text

    # Defined here: rich is imported only when a send shows its progress.
    class _Rate(ProgressColumn):
        """Messages per second of a progress task."""

        def render(self, task: Task) -> Text:
            """The task's current speed."""
            return Text(f"{task.speed or 0:,.0f} msg/s")

    console = Console(stderr=True)
    bar = stack.enter_context(
        ProgressBar(
            TextColumn(plan.issue.slug),
            BarColumn(),
            MofNCompleteColumn(),
            _Rate(),
            TimeRemainingColumn(),
            console=console,
            disable=not console.is_terminal,
        )
    )
    task = bar.add_task("send", total=plan.todo)
    return lambda done: bar.update(task, completed=done)


def _announce(stack: ExitStack) -> Callable[[SendPlan], Progress | None]:
    """What `comms send` prints as a run starts: the header, then a progress bar on a terminal."""

    def start(plan: SendPlan) -> Progress | None:
        issue, options = plan.issue, plan.options
        click.echo(
            f"Sending #{issue.number} „{issue.subject}“ ({issue.slug}): {plan.recipients} "
            f"recipient(s), {plan.todo} to send over {options.concurrency} connection(s)"
            + (f" at up to {options.rate:g} msg/s" if options.rate else "")
        )
        return progress_bar(stack, plan)

    return start


def _proof_line(record: ProofRecord) -> str:
    from comms.sending.approval import short

    edition = f", {record.edition} edition" if record.edition else ""
    return (
        f"proof of {record.slug} (version {short(record.digest)}{edition}) sent to "
        f"{record.recipient} "
        f"via {record.destination}; recorded (outside the list, the ledger is unchanged)"
    )


@cli.command()
@click.argument("issue_slug", metavar="ISSUE")
@click.option("--transport", "transport_url", help="Transport URL (default: `transport`).")
@click.option("--to", "proofs", multiple=True, help="Send a proof to ADDR only (repeatable).")
@click.option(
    "--lang",
    "languages",
    multiple=True,
    help="With --to: the edition of the proof (a language, repeatable, or `all`; default: "
    "the site's).",
)
@click.option("--dry-run", is_flag=True, help="Print the plan; send nothing.")
@click.option("--now", "early", is_flag=True, help="Send before the issue's send_at.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask on a terminal; send.")
@click.option("--concurrency", type=click.IntRange(1, 64), help="Connections (threads).")
@click.option("--rate", type=click.FloatRange(min=0), help="Messages per second, 0 = unlimited.")
@click.option("--force", is_flag=True, help="Go on although the issue changed after the start.")
@click.pass_obj
# One batch of objects from start to end: before the first message the collector walked the
# modules and the site again and again (a twentieth of a second), and during the run the
# rendered issue with them.
@batch()
def send(
    state: State,
    issue_slug: str,
    transport_url: str | None,
    proofs: tuple[str, ...],
    languages: tuple[str, ...],
    dry_run: bool,
    early: bool,
    yes: bool,
    concurrency: int | None,
    rate: float | None,
    force: bool,
) -> None:
    """Send an issue to its subscribers (or proofs with --to); run again to resume or retry.

    Refuses an issue with errors in its file or in what it shows, one whose send_at is still
    to come (unless --now) and, with delivery.require_approval, one whose current version is
    not approved. On a terminal it shows the plan and asks first (--yes skips the question).
    Exits 0 when every delivery is final (sent, or failed for good), 3 when some wait for a
    later retry, 1 when the campaign was stopped or the send refused.
    """
    from comms.core.languages import site_editions
    from comms.core.shutdown import Shutdown
    from comms.db.outage import patiently
    from comms.sending.campaign import clear, plan_send, refusal, send_proofs, send_to_list
    from comms.sending.rules import NotSendable, Request
    from comms.sending.run import SendOptions

    overrides: dict[str, Any] = {"transport": transport_url} if transport_url else {}
    config = state.config(**overrides)
    site, problems, issue = read_issue(config, issue_slug)
    if languages and not proofs:
        raise click.UsageError("--lang chooses the edition of a proof: give --to ADDR too")
    # From here a signal ends the command cleanly: a wait for the database, or the run, which
    # then finishes the messages in flight and hands its other claims back.
    shutdown = _signals(Shutdown())
    # A dry run or a proof only looks: it says at once that the database is away.
    opening = partial(_open_store, config)
    store = (
        opening() if dry_run or proofs else patiently(f"send {issue_slug}", opening, shutdown.event)
    )
    if proofs:
        addresses = [_address(a) for a in proofs]
        offered = site_editions(config).languages
        chosen = offered if "all" in languages else tuple(dict.fromkeys(languages))
        if dry_run:
            click.echo(
                f"Plan: a proof of {issue.slug} to {', '.join(addresses)} (outside the list) "
                f"in {', '.join(chosen or offered[:1])}; nothing is sent"
            )
            return
        on_proof = lambda record: click.echo(_proof_line(record))  # noqa: E731
        with shutdown.suspended():  # a few proofs, outside the ledger: Ctrl+C stops at once
            send_proofs(config, store, site, issue, addresses, languages=chosen, on_proof=on_proof)
        return
    options = SendOptions.of(config.settings.delivery, concurrency, rate)
    # A dry run plans a send now: a scheduled issue's time line says that it is early.
    request = Request(issue, config.now(), early=early or dry_run)
    try:
        cleared = patiently(
            f"send {issue_slug}",
            partial(clear, config, store, site, problems, request),
            shutdown.event,
        )
    except NotSendable as exc:
        for problem in exc.problems:
            click.echo(problem.format(config.root), err=True)
        for line in exc.detail:
            click.echo(line, err=True)
        raise CommsError(f"{exc} ({exc.hint})" if exc.hint else f"{exc}; nothing sent") from None
    if dry_run or (not yes and sys.stdin.isatty()):
        # A dry run plans as if --now; without it, say what the real command would do.
        asked = replace(request, early=False)
        later = refusal(config, store, site, problems, asked) if dry_run and not early else None
        plan = plan_send(config, store, issue, options)
        _print_plan(config, plan, request, dry=dry_run, later=later)
        if dry_run:
            return
        with shutdown.suspended():  # Ctrl+C at the question aborts it, as always
            if not click.confirm("Send it now?", default=False):
                raise CommsError("nothing sent")
    options = replace(options, stop=shutdown.event)
    with ExitStack() as stack:
        report = send_to_list(
            config, store, cleared, options, force=force, on_start=_announce(stack)
        )
    if report.archive_problem:
        click.echo(f"warning: {report.archive_problem}", err=True)
    _print_report(config, report)


def _print_report(config: Config, report: SendReport) -> None:
    """The end of `comms send`: what the run did; exits with the report's code."""
    slug = report.campaign.slug
    if report.idle:
        click.echo(f"nothing to send: every delivery of {slug} is final ({_totals(report.counts)})")
        return
    if report.resumed:
        click.echo(f"took over {report.resumed} delivery(ies) an interrupted run left behind")
    click.echo(f"{slug}: {_totals(report.counts)}")
    if report.interrupted:
        click.echo(
            f"interrupted: the messages in flight were recorded, {report.waiting} "
            f"delivery(ies) handed back; run `comms send {slug}` again to resume"
        )
    if report.stopped:
        raise CommsError(
            f"campaign stopped: {report.stopped}; {report.waiting} deliveries stay queued; "
            f"fix the cause and run `comms send {slug}` again"
        )
    if report.unsendable:
        click.echo(
            f"{report.unsendable} delivery(ies) failed: no message could be built or carried "
            f"for the address; `comms status {slug}` shows why",
            err=True,
        )
    if report.next_attempt is not None and not report.interrupted:
        click.echo(
            f"{report.waiting} delivery(ies) wait for a retry, the next at "
            f"{_when(report.next_attempt, config)}; run `comms send {slug}` again then"
        )
    sys.exit(report.exit_code)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON.")
@click.pass_obj
def schedule(state: State, as_json: bool) -> None:
    """List the scheduler's upcoming jobs with their next run in local time, and held sends.

    Works without a running scheduler: then it shows what `comms serve` would schedule now.
    """
    from comms.core.clock import now_utc
    from comms.schedule.plan import SEND_PREFIX
    from comms.schedule.runner import overview

    config = state.config()
    store = _open_store(config)
    view = overview(config, store, now_utc())
    holder = view.holder
    sends = [
        job.id.removeprefix(SEND_PREFIX) for job in view.jobs if job.id.startswith(SEND_PREFIX)
    ]
    blocked = blocked_sends(config, store, sends)
    if as_json:
        running = None if holder is None else vars(holder)
        jobs = [vars(job) for job in view.jobs]
        held = [{"issue": e.slug, "due_at": e.send_at} for e in view.held]
        problems = [_problem_json(p) for p in view.problems]
        data = {"scheduler": running, "jobs": jobs, "held": held, "blocked": blocked}
        click.echo(_json(data | {"problems": problems}))
        return
    if holder is None:
        click.echo("Scheduler: not running; `comms serve` starts it with these jobs")
    else:
        click.echo(
            f"Scheduler: running in {holder.owner} "
            f"(last heartbeat {_when(holder.heartbeat_at, config)})"
        )
    for line in _schedule_lines(config, view):
        click.echo(line)
    for slug, reason in blocked.items():
        click.echo(
            f"warning: the send of {slug} would be refused when it is due: {reason} "
            f"(`comms send {slug} --dry-run` says why)",
            err=True,
        )
