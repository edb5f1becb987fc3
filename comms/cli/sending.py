"""Sending commands: send (with proofs and dry runs), status and schedule."""

from __future__ import annotations

import sys
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    ProgressColumn,
    Task,
    TimeRemainingColumn,
)
from rich.progress import Progress as ProgressBar
from rich.text import Text

from comms.content.site import IssueErrors, find_issue, read_site
from comms.core.config import Config
from comms.core.errors import CommsError
from comms.db.feedback import BOUNCE_COUNTS, Feedback
from comms.db.ledger import Campaign
from comms.db.status import DeliveryStatus
from comms.db.subscribers import Store
from comms.schedule.plan import Held, held_list
from comms.sending.campaign import (
    NotSendable,
    Progress,
    Proofs,
    SendOptions,
    SendPlan,
    SendReport,
    send_issue,
)

from .common import (
    State,
    _address,
    _held_line,
    _json,
    _open_store,
    _schedule_lines,
    _totals,
    _when,
    cli,
)


def _campaign_json(store: Store, campaign: Campaign) -> dict[str, Any]:
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
    return {
        "issue": held.slug,
        "status": "held",
        "recipients": 0,
        "counts": dict.fromkeys(DeliveryStatus, 0),
        "due_at": held.due_at,
        "held_at": held.held_at,
    }


@cli.command()
@click.argument("issue", required=False)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON.")
@click.option("--errors", "limit", default=10, show_default=True, help="How many recent errors.")
@click.pass_obj
def status(state: State, issue: str | None, as_json: bool, limit: int) -> None:
    """Delivery counts per status and the latest errors of one issue, or every campaign."""
    config = state.config()
    store = _open_store(config)
    held = {h.slug: h for h in held_list(store.engine)}
    if issue is None:
        rows = [_campaign_json(store, c) for c in store.ledger.campaigns()]
        if as_json:
            click.echo(_json(rows + [_held_json(h) for h in held.values()]))
            return
        if not rows and not held:
            click.echo("no campaigns yet")
        for row in rows:
            counts = ", ".join(f"{n} {s}" for s, n in row["counts"].items() if n)
            click.echo(
                f"{row['issue']}: {row['status']}, {row['recipients']} recipient(s); {counts}"
            )
        for h in held.values():
            click.echo(_held_line(config, h.slug, h.due_at))
        return
    campaign = store.ledger.campaign(issue)
    if campaign is None and issue in held:
        if as_json:
            click.echo(_json(_held_json(held[issue])))
        else:
            click.echo(_held_line(config, issue, held[issue].due_at))
        return
    if campaign is None:
        site, _ = read_site(config)
        if issue not in site.issues:
            raise CommsError(f"no issue '{issue}' in {config.content_dir / 'issues'}")
        if as_json:
            zero = dict.fromkeys(DeliveryStatus, 0)
            click.echo(_json({"issue": issue, "status": "not started", "recipients": 0,
                              "counts": zero, "errors": [], "next_attempt": None,
                              "bounces": dict.fromkeys(BOUNCE_COUNTS, 0)}))  # fmt: skip
        else:
            click.echo(f"{issue}: not started (no campaign yet; `comms send {issue}` starts it)")
        return
    data = _campaign_json(store, campaign)
    data["errors"] = store.ledger.recent_errors(campaign.id, limit)
    data["next_attempt"] = store.ledger.next_attempt(campaign.id)
    data["bounces"] = Feedback(store.engine).counts(campaign.id)
    if as_json:
        click.echo(_json(data))
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


class _Rate(ProgressColumn):
    """Messages per second of a progress task."""

    def render(self, task: Task) -> Text:
        """The task's current speed."""
        return Text(f"{task.speed or 0:,.0f} msg/s")


def _print_plan(plan: SendPlan) -> None:
    """The dry run's plan, as printed."""
    issue, options, todo = plan.issue, plan.options, plan.todo
    click.echo(f"Plan for #{issue.number} „{issue.subject}“ ({issue.slug}), nothing is sent:")
    click.echo(f"  recipients: {plan.recipients}" + (" (campaign started)" if plan.started else ""))
    click.echo(f"  to send now: {todo} in {plan.batches} batch(es) of up to {options.claim_size}")
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


def _announce(stack: ExitStack) -> Callable[[SendPlan], Progress | None]:
    """What `comms send` prints as a run starts: the header, then a progress bar on a terminal."""

    def start(plan: SendPlan) -> Progress | None:
        issue, options = plan.issue, plan.options
        click.echo(
            f"Sending #{issue.number} „{issue.subject}“ ({issue.slug}): {plan.recipients} "
            f"recipient(s), {plan.todo} to send over {options.concurrency} connection(s)"
            + (f" at up to {options.rate:g} msg/s" if options.rate else "")
        )
        console = Console(stderr=True)
        bar = stack.enter_context(
            ProgressBar(
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

    return start


@cli.command()
@click.argument("issue_slug", metavar="ISSUE")
@click.option("--transport", "transport_url", help="Transport URL (default: `transport`).")
@click.option("--to", "proofs", multiple=True, help="Send a proof to ADDR only (repeatable).")
@click.option("--dry-run", is_flag=True, help="Print the plan; send nothing.")
@click.option("--concurrency", type=click.IntRange(1, 64), help="Connections (threads).")
@click.option("--rate", type=click.FloatRange(min=0), help="Messages per second, 0 = unlimited.")
@click.option("--force", is_flag=True, help="Go on although the issue changed after the start.")
@click.pass_obj
def send(
    state: State,
    issue_slug: str,
    transport_url: str | None,
    proofs: tuple[str, ...],
    dry_run: bool,
    concurrency: int | None,
    rate: float | None,
    force: bool,
) -> None:
    """Send an issue to its subscribers; run again to resume or retry.

    Exits 0 when every delivery is final (sent, or failed for good), 3 when some wait for a
    later retry, 1 when the campaign was stopped.
    """
    overrides: dict[str, Any] = {"transport": transport_url} if transport_url else {}
    config = state.config(**overrides)
    site, problems = read_site(config)
    try:
        issue = find_issue(config, site, problems, issue_slug)
    except IssueErrors as exc:
        for error in exc.errors:
            click.echo(error.format(config.root), err=True)
        raise
    store = _open_store(config)
    options = SendOptions.from_config(config, concurrency, rate)
    try:
        with ExitStack() as stack:
            result = send_issue(
                config,
                store,
                site,
                issue,
                options,
                proofs=[_address(a) for a in proofs],
                dry_run=dry_run,
                force=force,
                on_start=_announce(stack),
                on_proof=lambda email: click.echo(
                    f"proof sent to {email} (outside the list; the ledger is unchanged)"
                ),
            )
    except NotSendable as exc:
        raise CommsError(f"{exc} (proofs with --to work for drafts)") from None
    if isinstance(result, Proofs):
        if not result.sent:
            emails = ", ".join(result.addresses)
            click.echo(
                f"Plan: a proof of {issue.slug} to {emails} (outside the list); nothing is sent"
            )
        return
    if isinstance(result, SendPlan):
        _print_plan(result)
        return
    _print_report(config, result)


def _print_report(config: Config, report: SendReport) -> None:
    """The end of `comms send`: what the run did; exits with the report's code."""
    slug = report.campaign.slug
    if report.idle:
        click.echo(f"nothing to send: every delivery of {slug} is final ({_totals(report.counts)})")
        return
    if report.resumed:
        click.echo(f"took over {report.resumed} delivery(ies) an interrupted run left behind")
    click.echo(f"{slug}: {_totals(report.counts)}")
    if report.stopped:
        raise CommsError(
            f"campaign stopped: {report.stopped}; {report.waiting} deliveries stay queued; "
            f"fix the cause and run `comms send {slug}` again"
        )
    if report.next_attempt is not None:
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
    from comms.schedule.runner import overview

    config = state.config()
    store = _open_store(config)
    view = overview(config, store, now_utc())
    holder = view.holder
    if as_json:
        running = None if holder is None else vars(holder)
        jobs = [vars(job) for job in view.jobs]
        held = [{"issue": e.slug, "due_at": e.send_at} for e in view.held]
        click.echo(_json({"scheduler": running, "jobs": jobs, "held": held}))
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
