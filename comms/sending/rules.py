"""May this issue go to its subscribers? The send rules, each a small named object, in one chain.

As Mailman writes each moderation rule as an object with a name, a description and a check,
every rule here looks at one thing; `CHAIN` asks them in order and the first that refuses gives
the reason. `comms send` (and its dry run), the scheduler, the demo, `comms status` and the
warnings of `comms schedule` ask this chain, so they refuse for the same reasons in the same
words. Proofs go for any issue: the chain is about sending to the list.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from comms.content.models import Issue, IssueStatus, Site
from comms.core.config import Config
from comms.core.errors import CommsError, ContentError
from comms.db.approvals import Desk
from comms.publish.gate import issue_problems
from comms.publish.templating import Formatter
from comms.sending.approval import Version, approval_refusal, changes_since_approval


@dataclass(frozen=True)
class Request:
    """What a caller asks: may `issue` go to its subscribers at the moment `now`?"""

    issue: Issue
    #: The moment the send is judged at (the issue's `send_at` must have come by then).
    now: datetime
    #: The editor sends before the issue's `send_at` on purpose (`comms send --now`).
    early: bool = False

    @classmethod
    def when_due(cls, issue: Issue, now: datetime) -> Request:
        """Asked as the scheduler asks: at the issue's `send_at` (at `now` if it has none).

        The scheduler's job for an issue runs when its `send_at` comes, by the clock that
        fires it; whether that is too late is the scheduler's own rule (`is_stale`).
        """
        return cls(issue, issue.send_at or now)


@dataclass(frozen=True)
class Facts:
    """What the rules look at besides the request: the content's problems, the desk, the
    ledger, and the version that would go out."""

    config: Config
    site: Site
    errors: Sequence[ContentError]
    desk: Desk
    #: The issue's campaign has started: a send resumes it.
    started: bool
    #: The issue as it would go out, every edition (rendered when a rule asks), with its
    #: approval digest; None when it cannot be rendered.
    version: Callable[[], Version | None]


@dataclass(frozen=True)
class Refusal:
    """Why a rule refuses a send, with the gate's PATH:LINE problems and a hint."""

    rule: str
    reason: str
    problems: tuple[ContentError, ...] = ()
    hint: str | None = None
    #: Lines that show the refusal's cause (the diff since the approval), printed before it.
    detail: tuple[str, ...] = ()


class NotSendable(CommsError):
    """The chain refused a send: `rule` names the rule, `problems` are PATH:LINE errors."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.reason)
        self.rule = refusal.rule
        self.problems = list(refusal.problems)
        #: What the editor can do instead, if anything.
        self.hint = refusal.hint
        self.detail = list(refusal.detail)


class Rule:
    """One rule of the chain: a name, what it requires in words, and its check."""

    name: ClassVar[str]
    description: ClassVar[str]

    def check(self, request: Request, facts: Facts) -> Refusal | None:
        """Why this rule refuses the request, or None when it lets it pass."""
        raise NotImplementedError


class Ready(Rule):
    """The status rule; the scheduler's plan and the demo pick issues by it alone."""

    name = "ready"
    description = "the issue's status is `ready`, not `draft`"

    def reason(self, issue: Issue) -> str | None:
        """Why `issue` may not go out by its status, or None when it may."""
        if issue.status is not IssueStatus.READY:
            return f"issue '{issue.slug}' is a draft; set `status: ready` to send it"
        return None

    def check(self, request: Request, facts: Facts) -> Refusal | None:
        """Refuses a draft."""
        reason = self.reason(request.issue)
        if reason is None:
            return None
        return Refusal(self.name, reason, hint="proofs with --to work for drafts")


class NoErrors(Rule):
    """The gate of `comms check`, for one issue."""

    name = "no-errors"
    description = "no error in the issue's file, in what it shows, or in its e-mail checks"

    def check(self, request: Request, facts: Facts) -> Refusal | None:
        """Refuses an issue with errors, listing them (`comms.publish.gate.issue_problems`)."""
        slug = request.issue.slug
        problems = issue_problems(facts.config, facts.site, list(facts.errors), slug)
        if not problems:
            return None
        reason = (
            f"issue '{slug}' is not sent: {len(problems)} error(s) in it or in what it "
            "shows; fix them (see `comms check`)"
        )
        return Refusal(self.name, reason, tuple(problems))


class Due(Rule):
    """The issue's time has come."""

    name = "due"
    description = (
        "the issue's `send_at` has come (or the editor sends it early with --now, or its "
        "campaign has started and is resumed)"
    )

    def check(self, request: Request, facts: Facts) -> Refusal | None:
        """Refuses an issue whose `send_at` is after the request's moment."""
        issue = request.issue
        if facts.started or request.early or issue.send_at is None:
            return None
        if issue.send_at <= request.now:
            return None
        when = Formatter(facts.config).brief(issue.send_at)
        return Refusal(
            self.name,
            f"issue '{issue.slug}' is scheduled for {when}; the scheduler (`comms serve`) "
            f"sends it then; `comms send {issue.slug} --now` sends it now",
        )


class Approved(Rule):
    """Four eyes."""

    name = "approved"
    description = "with `delivery.require_approval`, the issue's current version is approved"

    def check(self, request: Request, facts: Facts) -> Refusal | None:
        """Refuses a version nobody approved, when approvals are required."""
        if not facts.config.settings.delivery.require_approval:
            return None
        version = facts.version()
        if version is None:
            return None  # cannot be rendered: the gate or the send itself says why
        slug = request.issue.slug
        reason = approval_refusal(facts.desk, slug, version, Formatter(facts.config))
        if reason is None:
            return None
        detail = tuple(changes_since_approval(facts.desk, slug, version))
        return Refusal(self.name, reason, detail=detail)


READY = Ready()
#: The rules in the order they are asked: a draft is refused before its errors are listed,
#: and an issue with errors is not rendered for its approval.
CHAIN: tuple[Rule, ...] = (READY, NoErrors(), Due(), Approved())


def judge(request: Request, facts: Facts) -> Refusal | None:
    """The first refusal of the chain, or None when the issue may go out."""
    for rule in CHAIN:
        refusal = rule.check(request, facts)
        if refusal is not None:
            return refusal
    return None


def require(request: Request, facts: Facts) -> None:
    """Raise NotSendable with the chain's first refusal, if any."""
    refusal = judge(request, facts)
    if refusal is not None:
        raise NotSendable(refusal)
