"""`comms preview`: the archive plus every issue's e-mail at 600 and 375 px, rebuilt on change."""

from __future__ import annotations

import shutil
import tempfile
import threading
from pathlib import Path
from types import TracebackType

from flask import Flask, Response, abort
from watchfiles import watch

from comms.content.site import InvalidContent, load_valid_site
from comms.core.config import Config, load_config
from comms.core.errors import CommsError
from comms.publish.build import collect, write_output
from comms.publish.render import RenderedIssue, render_issue
from comms.publish.templating import TEMPLATES, environment, render_template, translations
from comms.web.app import create_app, listen

#: The preview's own routes live under this prefix, beside the archive at `/`.
PREFIX = "/_preview"
WIDTHS = (600, 375)


class Preview:
    """Builds into a temporary folder, serves it, and rebuilds when a source file changes."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.root = Path(tempfile.mkdtemp(prefix="comms-preview-"))
        self.issues: dict[str, RenderedIssue] = {}
        self.drafts: set[str] = set()
        self.error: str | None = None
        self.version = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None
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
        """Stop watching and remove the temporary output folder."""
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join(timeout=5)
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
        """Reload configuration and content, rebuild the output, re-render every issue."""
        # Templates reload by themselves; catalogs and environments are cached.
        translations.cache_clear()
        environment.cache_clear()
        try:
            config = load_config(self.config.path) if self.config.path else self.config
            site, _ = load_valid_site(config)
            write_output(self.root, collect(config, site))
            issues = {slug: render_issue(config, site, i) for slug, i in site.issues.items()}
        except CommsError as exc:
            error = exc.format(config.root) if isinstance(exc, InvalidContent) else str(exc)
            with self._lock:
                self.error = error
                self.version += 1
            return
        with self._lock:
            self.config = config
            self.issues = issues
            self.drafts = {slug for slug, i in site.issues.items() if i.status == "draft"}
            self.error = None
            self.version += 1

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
        self.watch()
        server.run()

    def _issue(self, slug: str) -> RenderedIssue:
        issue = self.issues.get(slug)
        if issue is None:
            abort(404)
        return issue

    def _page(self, template: str, **context: object) -> Response:
        html = render_template(
            "web",
            template,
            self.config.settings.site.language,
            site=self.config.settings.site,
            org=self.config.settings.organisation,
            lang=self.config.settings.site.language,
            root="/",
            prefix=PREFIX,
            version=self.version,
            error=self.error,
            **context,
        )
        return Response(html, mimetype="text/html")

    def _create_app(self) -> Flask:
        app = create_app(self.root, csp=False)

        def index() -> Response:
            issues = sorted(self.issues.values(), key=lambda i: i.number, reverse=True)
            return self._page("preview.html.j2", issues=issues, drafts=self.drafts, issue=None)

        def issue_page(slug: str) -> Response:
            issue = self._issue(slug)
            return self._page(
                "preview.html.j2", issues=[], drafts=self.drafts, issue=issue, widths=WIDTHS
            )

        def email_html(slug: str) -> Response:
            return Response(self._issue(slug).html, mimetype="text/html")

        def email_text(slug: str) -> Response:
            return Response(self._issue(slug).text, mimetype="text/plain")

        def version() -> Response:
            return Response(str(self.version), mimetype="text/plain")

        app.add_url_rule(f"{PREFIX}/", "preview_index", index)
        app.add_url_rule(f"{PREFIX}/version", "preview_version", version)
        app.add_url_rule(f"{PREFIX}/<slug>/", "preview_issue", issue_page)
        app.add_url_rule(f"{PREFIX}/<slug>/email.html", "preview_html", email_html)
        app.add_url_rule(f"{PREFIX}/<slug>/email.txt", "preview_text", email_text)
        return app
