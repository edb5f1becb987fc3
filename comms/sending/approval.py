"""The editor's desk: an issue's version (its digest), approvals, proofs and who acts."""

from __future__ import annotations

import getpass
import hashlib
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from comms.content.models import Issue, Site
from comms.core.clock import now_utc
from comms.core.config import Config
from comms.core.errors import CommsError
from comms.core.transport_url import without_credentials
from comms.db.approvals import Approval, Desk
from comms.mail.message import MessageFactory, OutgoingMessage
from comms.mail.transports import FileTransport, Transport
from comms.publish.render import RenderedIssue, render_issue
from comms.publish.templating import Formatter, translate

#: The header that marks a proof; mail rules can file proofs by it.
PROOF_HEADER = "X-Comms-Proof"


def selection(issue: Issue) -> str:
    """How the recipients of an issue are chosen, in words (the approval covers this too)."""
    parts = []
    if issue.topics:
        parts.append("topics " + ", ".join(issue.topics))
    if issue.regions:
        parts.append("regions " + ", ".join(issue.regions))
    if not parts:
        return "every active subscriber"
    # comms.db.targets.target_clause: a subscriber without a choice counts as choosing all.
    return "active subscribers of " + " and of ".join(parts) + " (or with no choice there)"


def approval_digest(rendered: RenderedIssue, issue: Issue) -> str:
    """A fingerprint of everything an issue sends: subject, preheader, HTML, text, recipients.

    Over the issue as rendered once (the personal links are still placeholders), so it is the
    same for every recipient and changes with any edit an approver would have to see.
    """
    digest = hashlib.sha256()
    selected = f"topics={','.join(issue.topics)};regions={','.join(issue.regions)}"
    for part in (rendered.subject, rendered.preheader, rendered.html, rendered.text, selected):
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()


def short(digest: str) -> str:
    """The digest as shown to people (like a short git hash)."""
    return digest[:12]


def who(name: str | None = None) -> str:
    """Who acts: `name` if given, else the login name of this process."""
    if name and name.strip():
        return " ".join(name.split())
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"


def approval_of(approvals: Sequence[Approval], digest: str | None) -> Approval | None:
    """The approval of version `digest` among an issue's approvals: is this version approved?"""
    return next((a for a in approvals if digest is not None and a.digest == digest), None)


def approval_refusal(desk: Desk, slug: str, digest: str, fmt: Formatter) -> str | None:
    """Why the current version of an issue lacks an approval, or None when it has one."""
    found = desk.approvals(slug)
    if approval_of(found, digest) is not None:
        return None
    hint = f"check it (comms preview, a proof with --to), then run `comms approve {slug}`"
    if not found:
        return f"issue '{slug}' is not approved (version {short(digest)}); {hint}"
    last = found[-1]
    return (
        f"issue '{slug}' changed after its approval: {last.approved_by} approved version "
        f"{short(last.digest)} on {fmt.brief(last.approved_at)}, the current version is "
        f"{short(digest)}; {hint}"
    )


def approve(desk: Desk, issue: Issue, digest: str, by: str | None = None) -> Approval:
    """Record an approval of the current version of `issue` (its digest)."""
    return desk.approve(issue.slug, digest, who(by), now_utc())


def destination(transport: Transport, url: str, key: str) -> str:
    """Where a message went: the file a file transport wrote, else the transport URL without
    credentials."""
    if isinstance(transport, FileTransport):
        return str(transport.path_for(key))
    return without_credentials(url)


def proof_message(
    config: Config, factory: MessageFactory, email: str, digest: str, at: datetime
) -> OutgoingMessage:
    """A proof's bytes and key: the subscribers' subject and bodies, unchanged, marked in the
    headers only (the To name and `X-Comms-Proof`), so that what is checked is what goes out."""
    label = translate(config.settings.site.language, "Proof, not sent to the list")
    message = factory.build_proof(email, name=label)
    stamp = at.astimezone().replace(microsecond=0).isoformat()
    header = f"{PROOF_HEADER}: version {short(digest)}; {stamp}\r\n".encode("ascii")
    # Put before the DKIM signature: an unsigned header at the top leaves the signature valid.
    return replace(message, data=header + message.data)


def current_digest(config: Config, site: Site, issue: Issue) -> str | None:
    """The approval digest of an issue as it is now; None when it cannot be rendered."""
    try:
        return approval_digest(render_issue(config, site, issue), issue)
    except CommsError:
        return None
