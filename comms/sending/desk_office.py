"""What the desk in the browser does, through the services the CLI uses: the list of items
(`comms list`), one issue's editions, problems and version (`comms preview`, `comms check`),
approval (`comms approve`) and proofs (`comms send --proof`); each action in the audit log."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from comms.content.authors import commit_file
from comms.content.models import Issue, Site
from comms.content.reader import content_files
from comms.content.site import find_issue, read_site
from comms.content.source_files import Source, read_source, save_source
from comms.core.config import Config
from comms.core.errors import CommsError, ContentError
from comms.core.languages import home_edition
from comms.db.approvals import Approval, Desk, ProofRecord
from comms.db.desk_accounts import Account, DeskAccounts
from comms.db.store import Store
from comms.publish.gate import issue_problems
from comms.publish.listing import Listed, list_items
from comms.publish.problem_words import problem_line
from comms.publish.quality import check_issue
from comms.publish.render import RenderedIssue
from comms.publish.templating import translate
from comms.sending.approval import (
    Version,
    approval_of,
    approver_refusal,
    short,
    version_of,
)
from comms.sending.approval import approve as record_approval
from comms.sending.campaign import send_proofs
from comms.sending.issue_editions import render_editions


def commit_as(account: Account, folder: Path, path: Path, message: str) -> str | None:
    """Commit `path` (under `folder`) with the desk account as its author: the desk's one
    rule for who a change is by (an account without an address commits as desk@localhost)."""
    return commit_file(folder, path, account.name, account.email or "desk@localhost", message)


def save_as(
    account: Account, folder: Path, path: Path, text: str, seen: str, message: str
) -> tuple[str, str | None]:
    """Save `text` to `path` when it is still version `seen` (else Conflict) and commit it as
    `account` while the file is held, so no other save comes between; (digest, commit)."""
    commits: list[str | None] = []
    digest = save_source(
        path, text, seen, lambda: commits.append(commit_as(account, folder, path, message))
    )
    return digest, commits[0]


@dataclass(frozen=True)
class IssueView:
    """One issue as the desk shows it: every edition rendered, its problems and approvals."""

    issue: Issue
    #: Per edition language, the site's first.
    rendered: dict[str, RenderedIssue]
    version: Version
    errors: list[str]
    warnings: list[str]
    approvals: list[Approval]
    proofs: list[ProofRecord]

    @property
    def approved(self) -> bool:
        """Whether the current version has an approval."""
        return approval_of(self.approvals, self.version.digest) is not None


class Office:
    """The desk's services over one configuration and database."""

    def __init__(self, config: Config, store: Store) -> None:
        self.config = config
        self.store = store
        self.accounts = DeskAccounts(store.engine, store.secret)
        self.desk = Desk(store.engine)
        self._closers: list[Callable[[], None]] = []

    def when_closed(self, close: Callable[[], None]) -> None:
        """Have `close` called when the desk closes (what it runs in this process ends)."""
        self._closers.append(close)

    def close(self) -> None:
        """End what the desk runs in this process (a send finishes its messages in flight and
        hands the rest back); `comms serve` and `comms desk` call it as they stop."""
        for close in self._closers:
            close()

    def items(self) -> list[Listed]:
        """Every issue, event, practice and award with its status and problem counts."""
        return list_items(self.config)

    def _read(self, slug: str) -> tuple[Site, list[ContentError], Issue]:
        site, problems = read_site(self.config)
        return site, problems, find_issue(self.config, site, problems, slug)

    def issue(self, slug: str) -> IssueView:
        """The issue `slug` in every edition (CommsError when it is unknown or has errors in
        its own file)."""
        config = self.config
        site, problems, issue = self._read(slug)
        rendered = render_editions(config, site, issue)
        language = config.settings.site.language
        errors = issue_problems(config, site, problems, slug)
        own = [p for p in problems if p.warning and p.path == issue.path]
        warnings = own + [p for p in check_issue(config, site, issue) if p.warning]
        return IssueView(
            issue,
            rendered,
            version_of(rendered, issue),
            [problem_line(e, config.root, language) for e in errors],
            [problem_line(w, config.root, language) for w in warnings],
            self.desk.approvals(slug),
            self.desk.proofs(slug),
        )

    def approve(self, slug: str, account: Account, seen: str) -> Approval:
        """Approve issue `slug` as `account` (its name is the approver's), provided its current
        version is `seen` (the one the page showed), it has no errors and the account may
        approve it (four eyes, `[desk] approvers`); CommsError says why not."""
        if not account.may("approver"):
            raise CommsError(f"{account.name} may not approve (role {account.role})")
        config = self.config
        site, problems, issue = self._read(slug)
        blocking = issue_problems(config, site, problems, slug)
        if blocking:
            raise CommsError(f"issue '{slug}' has {len(blocking)} error(s); not approved")
        version = version_of(render_editions(config, site, issue), issue)
        if version.digest != seen:
            raise CommsError(
                f"issue '{slug}' changed since the page was loaded (now version "
                f"{short(version.digest)}); check it again; not approved"
            )
        language = home_edition(config).language
        refused = approver_refusal(
            config, self.desk, site, issue, account.name, lambda m: translate(language, m)
        )
        if refused is not None:
            raise CommsError(refused)
        done = record_approval(self.desk, issue, version, account.name)
        self.accounts.audit(account.name, "approve", slug, version.digest)
        return done

    def proof(self, slug: str, account: Account, language: str) -> list[ProofRecord]:
        """Send a proof of issue `slug` in the edition `language` to the account's own
        address; CommsError when it has none or the issue cannot be sent."""
        if not account.email:
            raise CommsError(f"the account {account.name} has no address (comms users)")
        site, _problems, issue = self._read(slug)
        sent = send_proofs(
            self.config, self.store, site, issue, [account.email], languages=[language],
            by=account.name,
        )  # fmt: skip
        for record in sent.records:
            detail = f"to {record.recipient}, edition {record.edition}"
            self.accounts.audit(account.name, "proof", slug, record.digest, detail)
        return list(sent.records)

    def file(self, kind: str, slug: str) -> Path:
        """The content file of an item `comms list` lists (nothing else can be named)."""
        # The files `comms list` lists, without the checks it counts (the writing pages ask
        # for a file on every keystroke's check).
        files, _ = content_files(self.config.content_dir)
        found = next((p for p, k in files if k.name == kind and p.stem == slug), None)
        if found is None:
            raise CommsError(f"no {kind} '{slug}'")
        return found

    def source(self, kind: str, slug: str) -> Source:
        """The Markdown file of an item, with the digest a save must name."""
        return read_source(self.file(kind, slug))

    def save(self, kind: str, slug: str, text: str, seen: str, account: Account) -> str:
        """Write the item's file as `account` when it is unchanged since it was loaded (digest
        `seen`; else Conflict), and where the content folder is a git repository commit it
        with the account as author. The new digest."""
        path = self.file(kind, slug)
        folder = self.config.content_dir
        message = f"Edit {path.relative_to(folder)} on the desk"
        digest, commit = save_as(account, folder, path, text, seen, message)
        detail = f"commit {commit}" if commit else "no git repository"
        self.accounts.audit(account.name, "save", f"{kind}/{slug}", digest, detail)
        return digest
