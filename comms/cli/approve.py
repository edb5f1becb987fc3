"""The editor's desk on the command line: `comms approve`, and approvals and proofs in status."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from comms.core.errors import CommsError, ContentError

from .common import State, _open_store, _when, cli

# What a command uses is imported when it runs (see comms.cli.common).
if TYPE_CHECKING:
    from comms.content.models import Issue, Site
    from comms.core.config import Config
    from comms.db.store import Store
    from comms.publish.digest_sections import View


def read_issue(config: Config, slug: str) -> tuple[Site, list[ContentError], Issue]:
    """The site, its problems and the issue `slug`; its own file's errors printed if absent."""
    from comms.content.site import IssueErrors, find_issue, read_site

    site, problems = read_site(config)
    try:
        return site, problems, find_issue(config, site, problems, slug)
    except IssueErrors as exc:
        for error in exc.errors:
            click.echo(error.format(config.root), err=True)
        raise


@cli.command()
@click.argument("issue_slug", metavar="ISSUE")
@click.option(
    "--by", "by", help="Who approves (default: the login name); one of [desk] approvers if set."
)
@click.pass_obj
def approve(state: State, issue_slug: str, by: str | None) -> None:
    """Approve the current version of an issue for sending (four eyes).

    Records who approved a digest of everything the issue sends, in every edition (each
    translation, and the original where an edition has none): subject, preheader, HTML, text
    and the recipient selection; lists each edition with its recipients now. Any later edit,
    to any edition, needs a new approval when delivery.require_approval is on. Refuses an
    issue with errors (see `comms check`), and an approver who changed the issue last (its
    git author, else who sent its last proof) or is not in [desk] approvers when that is set.
    """
    from comms.core.languages import site_editions
    from comms.db.approvals import Desk
    from comms.publish.digest_sections import views
    from comms.publish.gate import issue_problems
    from comms.sending.approval import approve as record_approval
    from comms.sending.approval import approver_refusal, current_version, selection, short, who
    from comms.sending.rules import READY

    config = state.config()
    site, problems, issue = read_issue(config, issue_slug)
    blocking = issue_problems(config, site, problems, issue.slug)
    for problem in blocking:
        click.echo(problem.format(config.root), err=True)
    if blocking:
        raise CommsError(f"issue '{issue.slug}' has {len(blocking)} error(s); not approved")
    version = current_version(config, site, issue)
    if version is None:
        raise CommsError(f"issue '{issue.slug}' cannot be rendered; see `comms check`")
    offered = site_editions(config)
    store = _open_store(config)
    try:
        desk = Desk(store.engine)
        refused = approver_refusal(config, desk, site, issue, who(by))
        if refused is not None:
            raise CommsError(refused)
        done = record_approval(desk, issue, version, by)
        count = store.ledger.count_recipients(issue.topics, issue.regions)
        per = store.ledger.recipients_by_edition(issue.topics, issue.regions, offered)
        choices = (
            store.ledger.recipients_by_choice(issue.topics, issue.regions)
            if issue.from_digest
            else {}
        )
    finally:
        store.close()
    click.echo(
        f"approved #{issue.number} „{issue.subject}“ ({issue.slug}), version "
        f"{short(version.digest)}, by {done.approved_by}: subject, preheader, HTML, text and "
        f"recipients ({selection(issue)}; {count} now) of {len(version.editions)} edition(s):"
    )
    for edition in offered.all:
        shown = version.editions[edition.language]
        own = edition.is_home or issue.uid in site.translations.get(edition.language, {})
        source = "" if own else ", not translated: the original"
        click.echo(
            f"  {edition.language} ({edition.label}): „{shown.subject}“, "
            f"{per.get(edition.language, 0)} recipient(s) now{source}"
        )
    if issue.from_digest:
        order = list(config.settings.regions)
        found = views(site, issue, config.tz, order, choices)
        click.echo(f"{len(found)} distinct view(s) of the digest:")
        for view in found:
            click.echo(f"  {_view_line(view)}")
    if READY.reason(issue) is not None:
        click.echo(f"note: {issue.slug} is still a draft; set `status: ready` to send it")


def _view_line(view: View) -> str:
    topics = " | ".join(" ".join(t) or "all" for t in view.topics)
    if not view.items:
        return f"nothing (topics {topics}): {view.recipients} recipient(s), skipped in the send"
    regions = ", ".join(view.regions) or "award only"
    return f"{regions} (topics {topics}): {view.items} item(s), {view.recipients} recipient(s)"


def _without_slug(row: dict[str, Any]) -> dict[str, Any]:
    found = {key: value for key, value in row.items() if key != "slug"}
    if "editions" in found and found["editions"] is not None:
        found["editions"] = list(found["editions"])  # the languages; the text stays in the desk
    return found


def desk_json(config: Config, store: Store, slug: str) -> dict[str, Any]:
    """Why the issue may not go out now (or None), its current version, approvals and proofs,
    for `comms status ISSUE`."""
    from comms.content.site import read_site
    from comms.db.approvals import Desk
    from comms.sending.approval import approval_of, current_version
    from comms.sending.campaign import refusal
    from comms.sending.rules import Request

    desk = Desk(store.engine)
    site, problems = read_site(config)
    issue = site.issues.get(slug)
    version = current_version(config, site, issue) if issue is not None else None
    digest = version.digest if version is not None else None
    approvals = desk.approvals(slug)
    # What `comms send ISSUE` would say now (the same rules, the same words).
    refused = None
    if issue is not None:
        found = refusal(config, store, site, problems, Request(issue, config.now()))
        refused = None if found is None else found.reason
    return {
        "refused": refused,
        "version": digest,
        "approved": approval_of(approvals, digest) is not None,
        "approval_required": config.settings.delivery.require_approval,
        "approvals": [_without_slug(vars(a)) for a in approvals],
        "proofs": [_without_slug(vars(p)) for p in desk.proofs(slug)],
    }


def desk_lines(config: Config, data: dict[str, Any]) -> list[str]:
    """The desk part of `comms status ISSUE`, as printed."""
    from comms.sending.approval import short

    lines = []
    if data["refused"] is not None:
        lines.append(f"not sendable now: {data['refused']}")
    digest = data["version"]
    if digest is not None and (data["approval_required"] or data["approvals"]):
        state = "approved" if data["approved"] else "not approved"
        need = " (required to send)" if data["approval_required"] else ""
        lines.append(f"current version {short(digest)}: {state}{need}")
    if data["approvals"]:
        lines.append("approvals:")
    for a in data["approvals"]:
        lines.append(
            f"  approved by {a['approved_by']} on {_when(a['approved_at'], config)}: "
            f"version {short(a['digest'])}"
        )
    if data["proofs"]:
        lines.append("proofs:")
    for p in data["proofs"]:
        lines.append(
            f"  proof{' of the ' + p['edition'] + ' edition' if p['edition'] else ''} "
            f"to {p['recipient']} on {_when(p['sent_at'], config)} by {p['sent_by']}: "
            f"version {short(p['digest'])} via {p['destination']}"
        )
    return lines


def blocked_sends(config: Config, store: Store, slugs: list[str]) -> dict[str, str]:
    """Why each of these scheduled sends would be refused when it is due; the rest go."""
    from comms.content.site import read_site
    from comms.sending.campaign import refusal
    from comms.sending.rules import Request

    if not slugs:
        return {}
    site, problems = read_site(config)
    found: dict[str, str] = {}
    for slug in slugs:
        issue = site.issues.get(slug)
        if issue is None:
            found[slug] = f"issue '{slug}' has errors"
            continue
        request = Request.when_due(issue, config.now())
        refused = refusal(config, store, site, problems, request)
        if refused is not None:
            found[slug] = refused.reason
    return found
