"""The editor's desk: an issue's version (its digest), approvals, proofs and who acts."""

from __future__ import annotations

import difflib
import getpass
import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from comms.content.authors import Uncommitted, last_change
from comms.content.models import N_, Issue, Item, Site
from comms.core.clock import now_utc
from comms.core.config import Config
from comms.core.errors import CommsError
from comms.core.transport_url import without_credentials
from comms.db.approvals import Approval, Desk, Shown
from comms.mail.message import MessageFactory, OutgoingMessage
from comms.mail.transports import FileTransport, Transport
from comms.publish.render import RenderedIssue
from comms.publish.templating import Formatter, translate
from comms.sending.issue_editions import render_editions

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


def approval_digest(rendered: Mapping[str, RenderedIssue], issue: Issue) -> str:
    """A fingerprint of everything an issue sends, in every edition (`rendered`: per language,
    the site's first): subject, preheader, HTML and text of each, and the recipients.

    Over the issue as rendered once (the personal links are still placeholders), so it is the
    same for every recipient and changes with any edit an approver would have to see, in any
    edition. A site with one edition keeps the digest of approvals made before they covered
    translations (the same parts, without the language).
    """
    digest = hashlib.sha256()
    selected = f"topics={','.join(issue.topics)};regions={','.join(issue.regions)}"
    several = len(rendered) > 1
    for language, one in rendered.items():
        label = [f"edition={language}"] if several else []
        for part in (*label, one.subject, one.preheader, one.html, one.text):
            digest.update(part.encode())
            digest.update(b"\0")
    digest.update(selected.encode())
    digest.update(b"\0")
    return digest.hexdigest()


@dataclass(frozen=True)
class Version:
    """One version of an issue as its approval sees it: the digest over every edition, and
    what each edition's readers read (to show what changed since an approval)."""

    digest: str
    editions: dict[str, Shown]


def version_of(rendered: Mapping[str, RenderedIssue], issue: Issue) -> Version:
    """The version of `issue` whose editions are `rendered` (per language, the site's first)."""
    shown = {lang: Shown(r.subject, r.preheader, r.text) for lang, r in rendered.items()}
    return Version(approval_digest(rendered, issue), shown)


def _readable(shown: Shown | None) -> list[str]:
    if shown is None:
        return []
    return [
        f"Subject: {shown.subject}",
        f"Preheader: {shown.preheader}",
        "",
        *shown.text.splitlines(),
    ]


def changes(approved: Mapping[str, Shown], current: Mapping[str, Shown]) -> list[str]:
    """What changed between an approved and the current version, per edition: unified diffs
    of subject, preheader and text part (an edition whose parts are unchanged is left out)."""
    lines: list[str] = []
    languages = list(approved) + [lang for lang in current if lang not in approved]
    for language in languages:
        before, after = _readable(approved.get(language)), _readable(current.get(language))
        lines += difflib.unified_diff(
            before, after, f"approved ({language})", f"current ({language})", n=1, lineterm=""
        )
    return lines


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


def approval_refusal(desk: Desk, slug: str, version: Version, fmt: Formatter) -> str | None:
    """Why the current version of an issue lacks an approval, or None when it has one."""
    digest = version.digest
    found = desk.approvals(slug)
    if approval_of(found, digest) is not None:
        return None
    hint = (
        f"check every edition (comms preview, proofs with --to and --lang all), "
        f"then run `comms approve {slug}`"
    )
    if not found:
        return f"issue '{slug}' is not approved (version {short(digest)}); {hint}"
    last = found[-1]
    if last.editions is None and len(version.editions) > 1:
        return (
            f"issue '{slug}' is not approved in every edition: {last.approved_by} approved "
            f"version {short(last.digest)} on {fmt.brief(last.approved_at)}, before an approval "
            f"covered the translations ({', '.join(version.editions)}); {hint}"
        )
    return (
        f"issue '{slug}' changed after its approval: {last.approved_by} approved version "
        f"{short(last.digest)} on {fmt.brief(last.approved_at)}, the current version is "
        f"{short(digest)}; {hint}"
    )


def changes_since_approval(desk: Desk, slug: str, version: Version) -> list[str]:
    """The diff of the last approved version against `version` (none when it is approved,
    never was, or its approval kept no text)."""
    found = desk.approvals(slug)
    if not found or approval_of(found, version.digest) is not None:
        return []
    last = found[-1]
    return changes(last.editions, version.editions) if last.editions is not None else []


def _folded(name: str) -> str:
    return " ".join(name.split()).casefold()


def _shown_path(config: Config, path: Path) -> str:
    return str(path.relative_to(config.root)) if path.is_relative_to(config.root) else str(path)


#: The four-eyes refusals: English for the terminal; the desk shows them in its language,
#: where the catalogs' words say what to do on the desk rather than which command to run.
NOT_AN_APPROVER = N_(
    "%(name)s is not one of the approvers in [desk] approvers (%(allowed)s); "
    "issue '%(slug)s' is not approved"
)
UNCOMMITTED = N_(
    "%(shown)s: changes not committed, so who made them is unknown; commit them, then "
    "someone other than their author approves; issue '%(slug)s' is not approved"
)
CHANGED_ISSUE = N_(
    "%(name)s changed issue '%(slug)s' last (commit %(commit)s); the approval needs a "
    "second person: someone else runs `comms approve %(slug)s --by NAME`; not approved"
)
CHANGED_ITEM = N_(
    "%(name)s changed '%(item)s', shown in issue '%(slug)s', last (commit %(commit)s); the "
    "approval needs a second person: someone else runs `comms approve %(slug)s --by NAME`; "
    "not approved"
)
PROOF_AUTHOR = N_(
    "%(name)s sent the last proof of issue '%(slug)s' and counts as its author (the content "
    "folder is no git repository); the approval needs a second person: someone else runs "
    "`comms approve %(slug)s --by NAME`; not approved"
)


def _same(message: str) -> str:
    return message


def approver_refusal(
    config: Config,
    desk: Desk,
    site: Site,
    issue: Issue,
    name: str,
    words: Callable[[str], str] = _same,
) -> str | None:
    """Why `name` may not approve `issue` (four eyes), or None when they may; in English, or
    in the words `words` gives each message (the desk's language).

    A name outside `[desk] approvers` (when the list is set) may not; nor may whoever wrote
    the current version of anything the mail shows: where the content folder is a git
    repository, the author of the last commit of the issue's file, of an event, practice or
    award it shows, or of a translation of one of them (uncommitted changes have no known
    author, so they are refused); else whoever sent its last proof.
    """
    slug = issue.slug
    allowed = config.settings.desk.approvers
    if allowed and _folded(name) not in {_folded(a) for a in allowed}:
        return words(NOT_AN_APPROVER) % {"name": name, "allowed": ", ".join(allowed), "slug": slug}
    # Each item the mail shows, with its translations: whoever wrote the current version of
    # any of them may not be the one who approves it (an edited event is an edited mail).
    shown_items: list[Item] = [
        issue,
        *site.issue_events(issue, config.tz),
        *site.issue_practices(issue),
        *([award] if (award := site.issue_award(issue)) is not None else []),
    ]
    in_git = False
    for item in shown_items:
        files = [item.path] + [
            own[item.uid].path for own in site.translations.values() if item.uid in own
        ]
        try:
            change = last_change(config.content_dir, files)
        except Uncommitted as exc:
            shown = ", ".join(_shown_path(config, Path(p)) for p in exc.paths)
            return words(UNCOMMITTED) % {"shown": shown, "slug": slug}
        if change is None:
            continue
        in_git = True
        if _folded(name) in (_folded(change.name), _folded(change.email)):
            values = {"name": name, "slug": slug, "commit": change.commit}
            if item is issue:
                return words(CHANGED_ISSUE) % values
            return words(CHANGED_ITEM) % {**values, "item": item.slug}
    if in_git:
        return None
    proofs = desk.proofs(slug)
    if proofs and _folded(proofs[-1].sent_by) == _folded(name):
        return words(PROOF_AUTHOR) % {"name": name, "slug": slug}
    return None


def approve(desk: Desk, issue: Issue, version: Version, by: str | None = None) -> Approval:
    """Record an approval of the current version of `issue` (every edition of it)."""
    return desk.approve(issue.slug, version.digest, who(by), now_utc(), version.editions)


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
    # The factory's stuffed copy of the bytes no longer matches them.
    return message._replace(data=header + message.data, wire=None)


def current_version(config: Config, site: Site, issue: Issue) -> Version | None:
    """The version of an issue as it is now, every edition rendered; None when it cannot be
    rendered."""
    try:
        return version_of(render_editions(config, site, issue), issue)
    except CommsError:
        return None
