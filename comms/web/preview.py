"""`comms preview`: the archive plus every issue's e-mail at 600 and 375 px, rebuilt on change.

Each issue page shows its problems first (what blocks sending, then warnings), its recipients
and how they are chosen; the e-mail shows images from the local `static` folder; `/subscribe`
shows the sign-up form and stores nothing.

A rebuild after a save renders and checks again only the issues whose inputs changed: an
issue's e-mail is made from the issue, the items it shows (in each edition) and what every
issue shares — the configuration, templates, catalogs and static files, whose change renders
every issue again. Its problems also depend on the paths the build produces, the static files
and the content's errors; the links of unchanged files come from the check cache.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
import shutil
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Response, abort, request
from watchfiles import watch

from comms.content.models import KINDS, Issue, IssueStatus, Site
from comms.content.site import read_site
from comms.content.translation_files import edition_site, untranslated
from comms.content.urls import Urls
from comms.core.config import Config, load_config
from comms.core.errors import CommsError, ContentError
from comms.core.languages import home_edition, site_editions
from comms.publish.check_cache import CheckCache
from comms.publish.edition_build import edition_issue
from comms.publish.gate import issue_problems
from comms.publish.link_check import LinkChecker
from comms.publish.problem_words import problem_line
from comms.publish.quality import check_issue
from comms.publish.refresh import publish_now
from comms.publish.render import RenderedIssue, issue_content, render_issue
from comms.publish.state import ScratchState
from comms.publish.templating import (
    TEMPLATES,
    environment,
    render_template,
    translate,
    translations,
)
from comms.web.app import create_app, listen
from comms.web.guard import acting, proof_in_url
from comms.web.notices import language_choices, notice, page

log = logging.getLogger("comms.preview")

#: The preview's own routes live under this prefix, beside the archive at `/`.
PREFIX = "/_preview"
WIDTHS = (600, 375)
#: The only host names the preview answers to (it listens on 127.0.0.1): a page on another
#: site whose name is made to resolve to 127.0.0.1 (DNS rebinding) sends its own name.
LOCAL_NAMES = frozenset({"127.0.0.1", "localhost"})
#: The preview's pages run only their own inline script (by its hash, `_csp`); e-mails are
#: framed from here and may show images from anywhere, as they will in a mail client.
CSP = (
    "default-src 'self'; img-src 'self' https: data:; style-src 'self' 'unsafe-inline'; "
    "script-src {scripts}; connect-src 'self'; frame-src 'self'; frame-ancestors 'self'; "
    "form-action 'self'; base-uri 'self'; object-src 'none'"
)
#: The endpoints whose pages carry the preview's reload script.
SCRIPTED = frozenset({"preview_index", "preview_issue"})
_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.S)


def _csp(endpoint: str | None, body: bytes) -> str:
    """The preview's CSP for a response: script hashes of its own pages' inline scripts."""
    hashes = []
    if endpoint in SCRIPTED:
        for script in _SCRIPT.findall(body):
            digest = base64.b64encode(hashlib.sha256(script).digest()).decode("ascii")
            hashes.append(f"'sha256-{digest}'")
    return CSP.format(scripts=" ".join(hashes) or "'none'")


def is_local_host(host: str, port: int | None) -> bool:
    """Whether a `Host` header names this preview: 127.0.0.1 or localhost, at `port` (any
    port while it is not known yet)."""
    try:
        parts = urlsplit(f"//{host}")
        name, given = parts.hostname, parts.port
    except ValueError:
        return False
    if name not in LOCAL_NAMES:
        return False
    return port is None or (given or 80) == port


#: How many active subscribers an issue with these topics and regions reaches (the CLI passes
#: the ledger's count; the web never reads the database itself).
Counter = Callable[[list[str], list[str]], int]


@dataclass(frozen=True)
class Facts:
    """What the preview says about an issue besides its rendering."""

    #: Errors that block sending, then warnings, as `PATH:LINE: message`.
    errors: list[str]
    warnings: list[str]
    #: The labels of the topics and regions the issue targets (none: everyone).
    topics: list[str]
    regions: list[str]
    #: None without a database.
    recipients: int | None


@dataclass(frozen=True)
class _Kept:
    """One issue as the last rebuild left it, with the inputs it was made from."""

    inputs: tuple[object, ...]
    rendered: RenderedIssue
    editions: dict[str, RenderedIssue]
    checked: tuple[object, ...]
    #: Its errors and warnings as the page shows them.
    errors: list[str]
    warnings: list[str]


def _issue_inputs(
    config: Config, site: Site, issue: Issue, languages: set[str]
) -> tuple[object, ...]:
    """What an issue's e-mails are made from besides what every issue shares: the issue and
    the items it shows, in the site's edition and in each other one (with what that edition
    shows untranslated) if it has a translation. Items compare by their fields."""

    def shown(own: Site, item: Issue) -> tuple[object, ...]:
        content = issue_content(config, own, item)
        # A digest's sections come from the whole calendar.
        everything = tuple(own.all_items()) if item.from_digest is not None else ()
        return (item, content.events, content.practices, content.award, everything)

    inputs: list[object] = [shown(site, issue), sorted(languages)]
    if languages:
        for edition in site_editions(config).translated:
            own = edition_site(site, edition.language)
            home = edition.home
            inputs += [
                shown(own, own.issues[issue.slug]),
                untranslated(own, edition.language, home),
            ]
    return tuple(inputs)


def _shared_state(config: Config) -> tuple[object, ...]:
    """What every issue's e-mail depends on: the configuration file, the templates and
    catalogs, the static files (each by path, size and modification time)."""
    static = config.root / config.settings.render.static_dir
    files: list[object] = []
    for folder in (TEMPLATES, static):
        if folder.is_dir():
            for path in sorted(folder.rglob("*")):
                if path.is_file():
                    stat = path.stat()
                    files.append((str(path), stat.st_size, stat.st_mtime_ns))
    config_file = config.path.read_bytes() if config.path and config.path.is_file() else b""
    return (config_file, tuple(files))


def local_images(config: Config, html: str) -> str:
    """The e-mail with the site's own URLs made root-relative: the preview serves the built
    archive and the `static` folder, so new images show before they are published."""
    home = re.escape(Urls(config).home())
    # An attribute's value, or a later candidate of a `srcset` (its 2× copy).
    return re.sub(rf'(="|, ){home}', r"\1/", html)


class Preview:
    """Builds into a temporary folder, serves it, and rebuilds when a source file changes."""

    def __init__(self, config: Config, count: Counter | None = None) -> None:
        self.config = config
        self.count = count
        self.root = Path(tempfile.mkdtemp(prefix="comms-preview-"))
        self.issues: dict[str, RenderedIssue] = {}
        #: Per issue with a translation, per other edition's language: its rendering there.
        self.editions: dict[str, dict[str, RenderedIssue]] = {}
        #: Per issue, the languages it has a translation in.
        self.translated: dict[str, set[str]] = {}
        self.facts: dict[str, Facts] = {}
        self.drafts: set[str] = set()
        self.error: str | None = None
        self.version = 0
        #: Per issue, what the last rebuild made and from what (`rebuild` reuses it).
        self._kept: dict[str, _Kept] = {}
        self._shared: tuple[object, ...] | None = None
        #: The links of content files scanned before, for the issues' link checks.
        self._links = CheckCache(config)
        #: The issues the last rebuild rendered, and those it checked (the rest it reused).
        self.rendered: list[str] = []
        self.checked: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None
        self._server: Any = None
        #: The port served on (`serve`); until then any port of 127.0.0.1 and localhost.
        self.port: int | None = None
        self.app = self._create_app()
        self.rebuild()

    def __enter__(self) -> Preview:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop watching and serving, and remove the temporary output folder."""
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join(timeout=5)
        if self._server is not None:
            self._server.close()  # `serve` returns
        shutil.rmtree(self.root, ignore_errors=True)

    def watched(self) -> list[Path]:
        """The folders and files whose changes trigger a rebuild."""
        config = self.config
        paths = [config.content_dir, TEMPLATES]
        static = config.root / config.settings.render.static_dir
        paths += [static] if static.is_dir() else []
        paths += [config.path] if config.path is not None else []
        return [path for path in paths if path.exists()]

    def rebuild(self) -> None:
        """Reload configuration and content, rebuild the output, render and check again every
        issue whose inputs changed (all of them when the configuration, a template, a catalog
        or a static file did)."""
        try:
            config = load_config(self.config.path) if self.config.path else self.config
            shared = _shared_state(config)
            if shared != self._shared:
                # Templates reload by themselves; catalogs and environments are cached.
                translations.cache_clear()
                environment.cache_clear()
                self._kept = {}
            # Not load_valid_site: an editor mid-change still sees every issue that can render.
            site, problems = read_site(config)
            # The preview shows every ready issue's web page, as it will be once it is sent.
            publish_now(config, ScratchState(site.issues), site, out_dir=self.root)
            translated = {
                slug: {lang for lang, own in site.translations.items() if i.uid in own}
                for slug, i in site.issues.items()
            }
            kept, rendered, checked = self._issues(config, site, problems, translated)
        except CommsError as exc:
            with self._lock:
                self.error = str(exc)
                self.version += 1
            return
        errors = sorted((p for p in problems if not p.warning), key=lambda e: (str(e.path), e.line))
        # An issue whose own file has errors drops out of the site: its last good rendering
        # stays visible under the error list.
        broken = {e.path.stem for e in errors if e.path.parent.name == KINDS["issue"].folder}
        facts = {slug: self._facts(config, site.issues[slug], k) for slug, k in kept.items()}
        log.info("preview: rendered %s, checked %s", rendered or "none", checked or "none")
        with self._lock:
            self.config = config
            self._shared = shared
            self._kept = {s: k for s, k in self._kept.items() if s in broken} | kept
            self.issues = {s: r for s, r in self.issues.items() if s in broken} | {
                slug: k.rendered for slug, k in kept.items()
            }
            self.editions = {s: r for s, r in self.editions.items() if s in broken} | {
                slug: k.editions for slug, k in kept.items() if k.editions
            }
            self.translated = translated
            self.facts = {s: f for s, f in self.facts.items() if s in broken} | facts
            self.drafts = {slug for slug, i in site.issues.items() if i.status is IssueStatus.DRAFT}
            language = home_edition(config).language
            self.error = "\n".join(problem_line(e, config.root, language) for e in errors) or None
            self.rendered, self.checked = rendered, checked
            self.version += 1

    def _issues(
        self,
        config: Config,
        site: Site,
        problems: list[ContentError],
        translated: dict[str, set[str]],
    ) -> tuple[dict[str, _Kept], list[str], list[str]]:
        """Every issue of `site`, rendered and checked again only where its inputs changed;
        with the slugs rendered and those checked."""
        checker = LinkChecker(config, site, self._links)
        # What every issue's problems depend on besides its own inputs.
        around = (
            frozenset(checker.produced or ()),
            frozenset(checker.static),
            tuple(problems),
        )
        kept: dict[str, _Kept] = {}
        rendered: list[str] = []
        checked: list[str] = []
        for slug, issue in sorted(site.issues.items()):
            inputs = _issue_inputs(config, site, issue, translated[slug])
            old = self._kept.get(slug)
            if old is not None and old.inputs == inputs:
                mail, editions = old.rendered, old.editions
            else:
                mail = render_issue(config, site, issue)
                # Every edition of an issue that has a translation: what its readers get.
                editions = {
                    edition.language: edition_issue(config, site, issue, edition)
                    for edition in site_editions(config).translated
                    if translated[slug]
                }
                rendered.append(slug)
                old = None
            if old is not None and old.checked == around:
                kept[slug] = old
                continue
            errors = issue_problems(config, site, problems, slug, checker, mail)
            own = [p for p in problems if p.warning and p.path == issue.path]
            warnings = own + [
                p for p in check_issue(config, site, issue, rendered=mail) if p.warning
            ]
            # In the screen's language, like its headings (comms check itself speaks English).
            language = home_edition(config).language
            kept[slug] = _Kept(
                inputs,
                mail,
                editions,
                around,
                [problem_line(e, config.root, language) for e in errors],
                [problem_line(w, config.root, language) for w in warnings],
            )
            checked.append(slug)
        return kept, rendered, checked

    def _facts(self, config: Config, issue: Issue, kept: _Kept) -> Facts:
        """What the page says about an issue: its problems as last checked, the recipients
        now."""
        recipients = self.count(issue.topics, issue.regions) if self.count else None
        settings = config.settings
        return Facts(
            kept.errors,
            kept.warnings,
            [settings.topics.get(t, t) for t in issue.topics],
            [settings.regions.get(r, r) for r in issue.regions],
            recipients,
        )

    def watch(self) -> None:
        """Rebuild in a background thread whenever a watched file changes."""

        def loop() -> None:
            changes = watch(*self.watched(), stop_event=self._stop, debounce=200, rust_timeout=500)
            for _changes in changes:
                self.rebuild()

        self._watcher = threading.Thread(target=loop, name="comms-preview-watch", daemon=True)
        self._watcher.start()

    def serve(self, port: int) -> None:
        """Watch for changes and serve on 127.0.0.1 until interrupted."""
        server = listen(self.app, "127.0.0.1", port, threads=4)
        self._server = server
        # Waitress gives the port as text; the Host check compares numbers.
        self.port = int(server.effective_port)
        self.watch()
        server.run()

    def _issue(self, slug: str) -> RenderedIssue:
        """The issue in the edition the request asks for (`?lang=`; default: the site's)."""
        issue = self.issues.get(slug)
        language = request.args.get("lang")
        if issue is not None and language is not None and language != issue.language:
            issue = self.editions.get(slug, {}).get(language)
        if issue is None:
            abort(404)
        return issue

    def _switch(self, slug: str, shown: str) -> list[dict[str, object]]:
        """The language switch of an issue with translations (none without): each edition
        with whether the issue is translated into it."""
        if slug not in self.editions:
            return []
        own = self.translated.get(slug, set())
        return [
            {
                "language": edition.language,
                "label": edition.label,
                "translated": edition.is_home or edition.language in own,
                "current": edition.language == shown,
                "query": "" if edition.is_home else f"?lang={edition.language}",
            }
            for edition in site_editions(self.config).all
        ]

    def _page(self, template: str, **context: object) -> Response:
        edition = home_edition(self.config)
        html = render_template(
            "web",
            template,
            edition.language,
            site=self.config.settings.site,
            org=self.config.settings.organisation,
            lang=edition.language,
            edition=edition,
            root="/",
            prefix=PREFIX,
            version=self.version,
            error=self.error,
            **context,
        )
        return Response(html, mimetype="text/html")

    def _guard(self, app: Flask) -> None:
        """Answer only requests for 127.0.0.1:PORT or localhost:PORT (421 otherwise), each
        with the preview's CSP."""

        def local_only() -> Response | None:
            if is_local_host(request.host, self.port):
                return None
            where = f"127.0.0.1:{self.port or 'PORT'} / localhost:{self.port or 'PORT'}"
            text = f"421 Misdirected Request: comms preview answers only at {where}.\n"
            return Response(text, 421, mimetype="text/plain")

        # First of all the app's checks: nothing else runs for a foreign host.
        app.before_request_funcs.setdefault(None, []).insert(0, local_only)

        @app.after_request
        def csp(response: Response) -> Response:
            body = b"" if response.direct_passthrough else response.get_data()
            response.headers["Content-Security-Policy"] = _csp(request.endpoint, body)
            response.headers["X-Content-Type-Options"] = "nosniff"
            return response

    def _create_app(self) -> Flask:
        app = create_app(self.root, csp=False)
        self._guard(app)

        def index() -> Response:
            issues = sorted(self.issues.values(), key=lambda i: i.number, reverse=True)
            return self._page("preview.html.j2", issues=issues, drafts=self.drafts, issue=None)

        def issue_page(slug: str) -> Response:
            issue = self._issue(slug)
            switch = self._switch(slug, issue.language)
            return self._page(
                "preview.html.j2",
                issues=[],
                drafts=self.drafts,
                issue=issue,
                facts=self.facts.get(slug),
                widths=WIDTHS,
                editions=switch,
                query=next((e["query"] for e in switch if e["current"]), ""),
            )

        def email_html(slug: str) -> Response:
            html = local_images(self.config, self._issue(slug).html)
            return Response(html, mimetype="text/html")

        @acting(proof_in_url("the preview stores nothing and sends nothing"))
        def subscribe_post() -> Response:
            language = self.config.settings.site.language
            return notice(
                translate(language, "Preview: nothing was stored"),
                translate(
                    language,
                    "The preview stores no sign-up and sends no e-mail; the sign-up "
                    "form works with comms serve.",
                ),
            )

        def subscribe() -> Response:
            settings = self.config.settings
            return page(
                "subscribe.html.j2",
                form={"email": "", "name": "", "topics": [], "regions": [], "language": ""},
                languages=language_choices(self.config),
                alternates=[],
                error="",
                csrf_token="preview",
                topics=settings.topics,
                regions=settings.regions,
                consent_text=settings.subscribe.consent_text,
            )

        def email_text(slug: str) -> Response:
            return Response(self._issue(slug).text, mimetype="text/plain")

        def version() -> Response:
            return Response(str(self.version), mimetype="text/plain")

        app.config["COMMS_CONFIG"] = self.config
        app.add_url_rule("/subscribe", "preview_subscribe", subscribe)
        app.add_url_rule("/subscribe", "preview_subscribe_post", subscribe_post, methods=["POST"])
        app.add_url_rule(f"{PREFIX}/", "preview_index", index)
        app.add_url_rule(f"{PREFIX}/version", "preview_version", version)
        app.add_url_rule(f"{PREFIX}/<slug>/", "preview_issue", issue_page)
        app.add_url_rule(f"{PREFIX}/<slug>/email.html", "preview_html", email_html)
        app.add_url_rule(f"{PREFIX}/<slug>/email.txt", "preview_text", email_text)
        return app
