"""HTTP: the output folder served with media types, strong ETags and 304s (more routes later)."""

from __future__ import annotations

import hashlib
import mimetypes
from datetime import UTC, datetime
from pathlib import Path

from flask import Flask, Response, abort, request, send_file

#: Media types that `mimetypes` gets wrong or does not know (STANDARDS F6).
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
    "feed.json": "application/feed+json; charset=utf-8",
}
MAX_AGE = 300


def media_type(path: Path) -> str:
    """The Content-Type to serve a file of the output folder with."""
    if path.name in FEED_TYPES:
        return FEED_TYPES[path.name]
    suffix = path.suffix.lower()
    if suffix in MEDIA_TYPES:
        return MEDIA_TYPES[suffix]
    return mimetypes.guess_type(path.name)[0] or "application/octet-stream"


def _etag(path: Path) -> str:
    # A hash of the bytes, not of the mtime: the same content always gives the same tag.
    return hashlib.sha256(path.read_bytes()).hexdigest()[:32]


def resolve(root: Path, url_path: str) -> Path | None:
    """The file under `root` a URL path names (`dir/` → `dir/index.html`), or None."""
    root = root.resolve()
    candidate = (root / url_path.lstrip("/")).resolve()
    if candidate != root and root not in candidate.parents:
        return None
    if candidate.is_dir():
        candidate = candidate / "index.html"
    return candidate if candidate.is_file() else None


def serve_file(root: Path, url_path: str) -> Response:
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
    response = send_file(
        path,
        mimetype=media_type(path),
        conditional=True,
        etag=_etag(path),
        last_modified=modified,
        max_age=MAX_AGE,
    )
    response.headers["Vary"] = "Accept-Encoding"
    return response


def add_static_routes(app: Flask, root: Path) -> None:
    """Serve the output folder at `/` (after every more specific route of the app)."""

    def static_file(path: str = "") -> Response:
        return serve_file(root, path)

    app.add_url_rule("/", "static_index", static_file, methods=["GET", "HEAD"])
    app.add_url_rule("/<path:path>", "static_file", static_file, methods=["GET", "HEAD"])


def create_app(root: Path) -> Flask:
    """A Flask app that serves the output folder (the web routes join it in later issues)."""
    app = Flask("comms", static_folder=None)
    app.url_map.strict_slashes = False
    add_static_routes(app, root)
    return app
