"""The desk's writing pages: a content file's front matter as form fields and its body in a
Markdown editor, the raw Markdown beside it, `comms check`'s problems at their field or line
while the editor types (our script asks `/desk/check/…`, which only reads), and new files from
the archetypes (`comms new`)."""

from __future__ import annotations

import json
from datetime import date, datetime
from importlib.resources import files
from typing import Any

from flask import Response, request

from comms.audience.read_only import read_only
from comms.content.fields import parse_when
from comms.content.models import KINDS, N_
from comms.content.source_files import Conflict, Source
from comms.core.errors import CommsError, ContentError
from comms.db.desk_accounts import Account
from comms.sending.desk_writing_office import Form, Refused, Shown, Taken, Writing
from comms.web.desk_kit import DESK_FORM, DeskKit
from comms.web.guard import acting

#: What a redirect after an action may report (never text from the request).
DONE = {"save", "create"}
#: The script of the writing pages (served by the desk itself: its CSP allows no other).
SCRIPT = files("comms") / "templates" / "web" / "desk" / "write.js"
#: What the form calls a front matter key (message ids; the key itself is shown beside).
LABELS = {
    "title": N_("Title"),
    "subject": N_("Subject"),
    "preheader": N_("Preheader"),
    "number": N_("Issue number"),
    "date": N_("Issue date"),
    "send_at": N_("Send at"),
    "status": N_("Status"),
    "events": N_("Events shown"),
    "upcoming_events_days": N_("Also upcoming events of the next days"),
    "practices": N_("Good examples shown"),
    "award": N_("Special prize shown"),
    "topics": N_("Topics"),
    "regions": N_("Regions"),
    "region": N_("Region"),
    "start": N_("Start"),
    "end": N_("End"),
    "online": N_("Online at"),
    "organiser": N_("Organiser"),
    "registration": N_("Registration"),
    "summary": N_("Summary"),
    "series": N_("Series"),
    "organisation": N_("Organisation"),
    "city": N_("City"),
    "url": N_("Web address"),
    "year": N_("Year"),
    "prize_money": N_("Prize money (euros)"),
    "published": N_("Published on"),
    "updated": N_("Updated on"),
}


def add_writing(kit: DeskKit) -> None:
    """Add the writing pages to the desk of `kit`."""
    desk, page, needs, _ = kit.blueprint, kit.page, kit.needs, kit.text
    writing = Writing(kit.office)
    config = kit.config

    def where(shown: Shown) -> str:
        """The id of the list a problem is shown in."""
        return f"problems-{shown.key}" if shown.place == "field" else f"problems-{shown.place}"

    def described(shown: Shown) -> dict[str, Any]:
        word = _("Line")
        prefix = f"{word} {shown.line}: " if shown.place != "field" else ""
        kind = _("Warning") if shown.warning else _("Error")
        text = f"{kind}: {prefix}{shown.text}"
        line = shown.line if shown.place == "text" else 0
        return {"list": where(shown), "text": text, "warning": shown.warning, "line": line}

    def placed(form: Form, problems: list[ContentError], raw: bool) -> list[dict[str, Any]]:
        return [described(shown) for shown in writing.placed(form, problems, raw)]

    def summary(problems: list[ContentError]) -> str:
        errors = sum(1 for p in problems if not p.warning)
        return f"{_('Errors')}: {errors}, {_('Warnings')}: {len(problems) - errors}"

    def editor(
        kind: str, slug: str, raw: bool, status: int = 200, typed: str | None = None,
        values: Any = None, problems: list[ContentError] | None = None, **context: Any,
    ) -> Response:  # fmt: skip
        try:
            form = writing.form(kind, slug)
        except CommsError as exc:
            return page("message.html.j2", 404, message=str(exc))
        if form.front is None:
            raw = True
        text = typed if typed is not None else form.source.text
        if values is not None and not raw:
            try:
                text = writing.compose(form, values)
            except (ValueError, CommsError):
                text = form.source.text
        found = problems if problems is not None else writing.problems(kind, slug, text)
        shown = form
        if text != form.source.text and not raw:
            shown = _with_text(writing, form, text)
        return page(
            "edit.html.j2" if raw else "write.html.j2",
            status,
            kind=kind,
            slug=slug,
            form=shown,
            source=form.source,
            text=text,
            labels=LABELS,
            tz=config.tz.key,
            problems=placed(shown, found, raw),
            summary=summary(found),
            **context,
        )

    def done() -> str:
        value = request.args.get("done", "")
        return value if value in DONE else ""

    @desk.route("/edit/<kind>/<slug>", methods=["GET", "HEAD"])
    @needs("editor")
    def edit(account: Account, kind: str, slug: str) -> Response:
        return editor(kind, slug, raw=False, done=done(), error="")

    @desk.route("/edit/<kind>/<slug>/raw", methods=["GET", "HEAD"])
    @needs("editor")
    def edit_raw(account: Account, kind: str, slug: str) -> Response:
        return editor(kind, slug, raw=True, done=done(), error="")

    def save(account: Account, kind: str, slug: str, raw: bool) -> Response:
        raw = raw or "text" in request.form
        seen = request.form.get("version", "")
        values = None if raw else request.form
        typed = request.form.get("text") if raw else None
        try:
            form = writing.form(kind, slug)
            text = typed if typed is not None else writing.compose(form, request.form)
            writing.save(kind, slug, text, seen, account)
        except Refused:
            # Nothing is written; the page shows what was typed and why it was not saved.
            message = _("Not saved: the text has errors the file did not have.")
            return editor(kind, slug, raw, 422, typed, values, None, done="", error=message)
        except Conflict:
            message = _(
                "Someone else changed this file since you opened it: nothing was saved. What you "
                "typed is shown below; compare it with the file before you save again."
            )
            return editor(kind, slug, raw, 409, typed, values, None, done="", error=message)
        except (CommsError, ValueError) as exc:
            return editor(kind, slug, raw, 409, typed, values, None, done="", error=str(exc))
        tail = "/raw" if raw else ""
        return kit.see_other(f"/edit/{kind}/{slug}{tail}?done=save")

    @desk.route("/edit/<kind>/<slug>", methods=["POST"])
    @acting(DESK_FORM)
    @needs("editor")
    def save_form(account: Account, kind: str, slug: str) -> Response:
        return save(account, kind, slug, raw=False)

    @desk.route("/edit/<kind>/<slug>/raw", methods=["POST"])
    @acting(DESK_FORM)
    @needs("editor")
    def save_raw(account: Account, kind: str, slug: str) -> Response:
        return save(account, kind, slug, raw=True)

    @desk.route("/check/<kind>/<slug>", methods=["POST"])
    @acting(DESK_FORM)
    @needs("editor")
    def check(account: Account, kind: str, slug: str) -> Response:
        # A POST only to carry the text; it changes nothing (a write or a mail would raise).
        with read_only():
            raw = "text" in request.form
            try:
                form = writing.form(kind, slug)
                if raw:
                    text = request.form.get("text", "")
                else:
                    text = writing.compose(form, request.form)
            except CommsError as exc:
                return _json({"error": str(exc)}, 404)
            except ValueError as exc:
                return _json({"error": str(exc)}, 400)
            found = writing.problems(kind, slug, text)
            shown = form if raw else _with_text(writing, form, text)
            return _json({"summary": summary(found), "problems": placed(shown, found, raw)}, 200)

    @desk.route("/script/write.js", methods=["GET", "HEAD"])
    @needs("editor")
    def script(account: Account) -> Response:
        return Response(SCRIPT.read_text(encoding="utf-8"), mimetype="text/javascript")

    def new_page(kind: str, status: int = 200, **context: Any) -> Response:
        if kind not in KINDS:
            return page("message.html.j2", 404, message=_("This page does not exist."))
        return page("new.html.j2", status, kind=kind, label=_(KINDS[kind].label), **context)

    @desk.route("/new/<kind>", methods=["GET", "HEAD"])
    @needs("editor")
    def new(account: Account, kind: str) -> Response:
        return new_page(kind, title="", day=config.now().date().isoformat(), slug="", error="")

    @desk.route("/new/<kind>", methods=["POST"])
    @acting(DESK_FORM)
    @needs("editor")
    def create(account: Account, kind: str) -> Response:
        if kind not in KINDS:
            return new_page(kind)
        title = " ".join(request.form.get("title", "").split())[:200]
        day_text = request.form.get("date", "").strip()
        slug = request.form.get("slug", "").strip()[:80]
        keep = {"title": title, "day": day_text, "slug": slug}
        try:
            day = _day(day_text, config.tz) if day_text else config.now().date()
            if not title:
                raise CommsError(_("A title is needed."))
            suggested = writing.suggest(kind, title, day)
            if request.form.get("suggest"):
                keep["slug"] = slug or suggested
                writing.refuse_taken(kind, keep["slug"])
                return new_page(kind, 200, **keep, error="")
            made = writing.create(kind, title, day, slug, account)
        except Taken:
            message = _("A file of this name exists already: choose another name.")
            return new_page(kind, 409, **keep, error=message)
        except (CommsError, ValueError) as exc:
            return new_page(kind, 409, **keep, error=str(exc))
        return kit.see_other(f"/edit/{kind}/{made}?done=create")


def _day(text: str, tz: Any) -> date:
    parsed = parse_when(text, tz)
    return parsed.date() if isinstance(parsed, datetime) else parsed


def _with_text(writing: Writing, form: Form, text: str) -> Form:
    """The form over `text` instead of the file (what was typed, to show it again)."""
    try:
        return writing.form_of(form.kind, form.slug, Source(text, form.source.digest))
    except (CommsError, ValueError):
        return form


def _json(data: dict[str, Any], status: int) -> Response:
    text = json.dumps(data, ensure_ascii=False)
    return Response(text, status=status, mimetype="application/json")
