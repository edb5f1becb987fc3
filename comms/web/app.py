"""HTTP: the output folder with gzip, strong ETags and 304s; the subscriber pages (`pages`)."""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import mimetypes
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flask import Blueprint, Flask, Response, abort, request

from comms.alerts.metrics import MetricsEndpoint
from comms.audience.read_only import bookkeeping
from comms.audience.subscriptions import Subscriptions
from comms.bounces.webhooks import BrevoWebhook
from comms.content.urls import Urls
from comms.core.config import Config
from comms.core.errors import CommsError
from comms.reports.clicks import Clicks
from comms.reports.counting import ViewCounter
from comms.web.guard import acting, authenticated, install_method_guard
from comms.web.pages import add_subscriber_routes
from comms.web.scrape import add_metrics_route

log = logging.getLogger("comms.web")

#: Media types that `mimetypes` gets wrong or does not know (docs/requirements.md F6).
MEDIA_TYPES = {
    ".xml": "application/xml; charset=utf-8",
    ".ics": "text/calendar; charset=utf-8",
    ".json": "application/json",
    ".html": "text/html; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
#: Feeds by file name, whatever folder they are in.
FEED_TYPES = {
    "feed.xml": "application/rss+xml; charset=utf-8",
    "atom.xml": "application/atom+xml; charset=utf-8",
    # JSON defines no charset parameter (RFC 8259); it is always UTF-8.
    "feed.json": "application/feed+json",
}
MAX_AGE = 300
#: Smaller files are sent as they are: gzip would save next to nothing.
GZIP_MIN_BYTES = 1024


def media_type(path: Path) -> str:
    """The Content-Type to serve a file of the output folder with."""
    if path.name in FEED_TYPES:
        return FEED_TYPES[path.name]
    suffix = path.suffix.lower()
    if suffix in MEDIA_TYPES:
        return MEDIA_TYPES[suffix]
    return mimetypes.guess_type(path.name)[0] or "application/octet-stream"


def _etag(data: bytes) -> str:
    # A hash of the bytes, not of the mtime: the same content always gives the same tag.
    return hashlib.sha256(data).hexdigest()[:32]


def _compressible(content_type: str) -> bool:
    base = content_type.split(";")[0]
    return base.startswith("text/") or base.endswith(("xml", "json"))


def resolve(root: Path, url_path: str) -> Path | None:
    """The file under `root` a URL path names (`dir/` → `dir/index.html`), or None."""
    root = root.resolve()
    try:
        candidate = (root / url_path.lstrip("/")).resolve()
        if candidate != root and root not in candidate.parents:
            return None
        if candidate.is_dir():
            candidate = candidate / "index.html"
        return candidate if candidate.is_file() else None
    except (ValueError, OSError):  # a NUL byte, a name too long for the file system …
        return None


def feed_links(config: Config, root: Path, path: Path) -> str | None:
    """The WebSub `Link` header of a feed file: its hubs and its own URL (W3C WebSub §4)."""
    if path.name not in FEED_TYPES or not config.settings.feeds.hubs:
        return None
    self_url = Urls(config).absolute(path.resolve().relative_to(root.resolve()).as_posix())
    hubs = [f'<{hub}>; rel="hub"' for hub in config.settings.feeds.hubs]
    return ", ".join([*hubs, f'<{self_url}>; rel="self"'])


def serve_file(root: Path, url_path: str, config: Config | None = None) -> Response:
    """Serve one file with ETag, Last-Modified and conditional GET (304 with an empty body)."""
    path = resolve(root, url_path)
    if path is None or path.name.startswith("."):
        abort(404)
    if (
        url_path
        and not url_path.endswith("/")
        and path.name == "index.html"
        and not (url_path.endswith("index.html"))
    ):
        # Relative links inside a folder's index page need the trailing slash.
        return Response(status=308, headers={"Location": request.path + "/"})
    modified = datetime.fromtimestamp(int(path.stat().st_mtime), tz=UTC)
    data = path.read_bytes()
    content_type = media_type(path)
    tag = _etag(data)
    encode = (
        len(data) >= GZIP_MIN_BYTES
        and _compressible(content_type)
        and request.accept_encodings.quality("gzip") > 0
    )
    if encode:
        # mtime=0 makes the gzip bytes a function of the content, so the tag names them.
        data = gzip.compress(data, mtime=0)
        tag += "-gzip"  # a strong tag belongs to one representation (RFC 9110 §8.8.3)
    response = Response(data, content_type=content_type)
    if encode:
        response.headers["Content-Encoding"] = "gzip"
    response.set_etag(tag)
    response.last_modified = modified
    response.cache_control.public = True
    response.cache_control.max_age = MAX_AGE
    response.headers["Vary"] = "Accept-Encoding"
    response.make_conditional(request)
    links = feed_links(config, root, path) if config is not None else None
    if links:
        response.headers["Link"] = links
    return response


def add_static_routes(
    app: Flask, root: Path, config: Config | None = None, views: ViewCounter | None = None
) -> None:
    """Serve the output folder at `/` (after every more specific route of the app); with
    `views`, a GET of an issue's page adds one to its day's counter (HEAD does not)."""

    def static_file(path: str = "") -> Response:
        response = serve_file(root, path, config)
        if views is not None and request.method == "GET" and response.status_code in (200, 304):
            with bookkeeping():  # an anonymous counter: the guard's one exception
                views.viewed(path)
        return response

    app.add_url_rule("/", "static_index", static_file, methods=["GET", "HEAD"])
    app.add_url_rule("/<path:path>", "static_file", static_file, methods=["GET", "HEAD"])


def add_click_routes(app: Flask, clicks: Clicks) -> None:
    """`GET /r/<issue>/<link>`: a link of the issue's mail, redirected (302); a GET adds one
    to the link's counter of the day where `mail.count_clicks` is on. The one GET that writes:
    a counter, no person's state (no uid, IP address or cookie is looked at or kept)."""

    def follow(slug: str, link: str) -> Response:
        with bookkeeping():  # an anonymous counter: the guard's one exception
            target = clicks.follow(slug, link, count=request.method == "GET")
        if target is None:
            abort(404)  # only the links of that issue: never an open redirect
        response = Response(status=302, headers={"Location": target})
        response.headers["Cache-Control"] = "no-store"  # each click reaches the counter
        response.headers["Referrer-Policy"] = "no-referrer"
        return response

    app.add_url_rule("/r/<slug>/<link>", "counted_link", follow, methods=["GET", "HEAD"])


def add_webhook_routes(app: Flask, brevo: BrevoWebhook) -> None:
    """`POST /webhooks/brevo`: the provider's bounce, complaint and unsubscribe events."""

    @acting(authenticated("the provider signs in with the webhook secret (Basic or Bearer)"))
    def brevo_events() -> Response:
        if not brevo.enabled:
            abort(404)  # no secret configured: the endpoint does not exist
        answer = brevo.handle(request.headers.get("Authorization"), request.get_data())
        response = Response(json.dumps(answer.body), answer.status, mimetype="application/json")
        if answer.status == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="comms webhooks"'
        response.headers["Cache-Control"] = "no-store"
        return response

    app.add_url_rule("/webhooks/brevo", "webhook_brevo", brevo_events, methods=["POST"])


#: The archive and the subscriber pages load only their own style sheet and images (images
#: also from https: and data: URLs, as content may use them); no scripts (JSON-LD is data, not
#: run); no framing by other sites.
CSP = (
    "default-src 'self'; img-src 'self' https: data:; style-src 'self' 'unsafe-inline'; "
    "font-src 'self' data:; script-src 'none'; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'"
)


#: HSTS for a year, for this host only: the site is one host of the organisation's domain,
#: whose other hosts may still need plain HTTP (no includeSubDomains, no preload).
HSTS = "max-age=31536000"


#: An SVG file's policy: its own styles, no script, no requests, a sandbox of its own.
SVG_CSP = "default-src 'none'; style-src 'unsafe-inline'; sandbox"


def add_security_headers(app: Flask, csp: bool = True) -> None:
    """nosniff on every response; with `csp`, the CSP and no framing on every HTML page; a
    sandbox CSP on every SVG; HSTS on every response served over HTTPS (directly, or behind
    `--trusted-proxy` that says `X-Forwarded-Proto: https`), never over plain HTTP (RFC 6797
    §7.2)."""

    @app.after_request
    def headers(response: Response) -> Response:
        response.headers["X-Content-Type-Options"] = "nosniff"
        if request.is_secure:
            response.headers.setdefault("Strict-Transport-Security", HSTS)
        if csp and response.mimetype == "text/html":
            response.headers.setdefault("Content-Security-Policy", CSP)
            response.headers.setdefault("X-Frame-Options", "DENY")
        elif response.mimetype == "image/svg+xml":
            # An SVG opened on its own is a document that may run script on this origin
            # (where the desk is): it gets none, whatever the file holds.
            response.headers.setdefault("Content-Security-Policy", SVG_CSP)
        response.headers.setdefault("Referrer-Policy", "same-origin")
        return response


#: The proxy headers (WSGI environ keys) a server without `--trusted-proxy` never believes.
PROXY_HEADERS = (
    "HTTP_FORWARDED",
    "HTTP_X_FORWARDED_FOR",
    "HTTP_X_FORWARDED_HOST",
    "HTTP_X_FORWARDED_PROTO",
    "HTTP_X_FORWARDED_PORT",
    "HTTP_X_FORWARDED_BY",
)


def warn_about_proxy_headers(app: Flask) -> None:
    """Drop the proxy headers of every request (no proxy is trusted), and warn once (log
    `comms.web`) when one carried `X-Forwarded-For` or `Forwarded`: every visitor then counts
    as the proxy's address. The server must pass them through for this to see them."""
    warned = threading.Event()
    wsgi = app.wsgi_app

    def without_proxy_headers(environ: dict[str, Any], start_response: Any) -> Any:
        seen = any(
            environ[name] for name in ("HTTP_X_FORWARDED_FOR", "HTTP_FORWARDED") if name in environ
        )
        for name in PROXY_HEADERS:
            environ.pop(name, None)
        if seen and not warned.is_set():
            warned.set()
            log.warning(
                "requests arrive through a proxy (X-Forwarded-For), but no --trusted-proxy is "
                "set: every visitor counts as the proxy's address and all share one sign-up "
                "limit; start comms serve with --trusted-proxy PROXY_ADDRESS"
            )
        return wsgi(environ, start_response)

    app.wsgi_app = without_proxy_headers  # type: ignore[method-assign]


def create_app(
    root: Path,
    config: Config | None = None,
    subscriptions: Subscriptions | None = None,
    brevo: BrevoWebhook | None = None,
    csp: bool = True,
    views: ViewCounter | None = None,
    clicks: Clicks | None = None,
    metrics: MetricsEndpoint | None = None,
    desk: Blueprint | None = None,
) -> Flask:
    """The app: the subscriber pages (when given) and the output folder with ETags at `/`;
    with `views`, the issue pages' views are counted per day (comms.reports.counting); with
    `clicks`, the counted links of the mails redirect (comms.reports.clicks); with `desk`,
    the desk in the browser answers under /desk/.

    With a config, feed responses carry the WebSub `Link` header (hubs and self URL). `csp`
    False leaves out the CSP and frame protection (the preview frames pages and polls).
    """
    app = Flask("comms", static_folder=None)
    app.url_map.strict_slashes = False
    # `/unsubscribe/%2F0` would otherwise be redirected (308) to another token's page.
    app.url_map.merge_slashes = False
    # Forms are small; a huge body is refused (413) before anything parses it.
    app.config["MAX_CONTENT_LENGTH"] = 64 * 1024
    app.config["MAX_FORM_PARTS"] = 200
    if config is not None:  # the guard's origin check and the notices read it
        app.config["COMMS_CONFIG"] = config
    add_security_headers(app, csp)
    install_method_guard(app)
    if subscriptions is not None:
        add_subscriber_routes(app, subscriptions)
    if brevo is not None:
        add_webhook_routes(app, brevo)
    if clicks is not None:
        add_click_routes(app, clicks)
    if metrics is not None:
        add_metrics_route(app, metrics)
    if desk is not None:  # the desk at /desk/ (comms.web.desk_pages) with its own checks
        app.register_blueprint(desk)
    # Last: the catch-all must not shadow the routes above.
    add_static_routes(app, root, config, views)
    return app


def listen(app: Flask, host: str, port: int, **options: Any) -> Any:
    """A waitress server bound to host:port; a port in use is a clear error, not a traceback."""
    from waitress.server import create_server

    try:
        return create_server(app, host=host, port=port, **options)
    except OSError as exc:
        raise CommsError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
