"""Images in e-mails: the column width, every `<img>` fitted to it, resized copies (1× and 2×)
written into the build and cached, and the size budget `comms check` warns about."""

from __future__ import annotations

import base64
import functools
import hashlib
import html
import io
import os
import re
import tempfile
import warnings
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

from comms.content import urls
from comms.core.config import Config
from comms.core.files import (
    SETTLE,
    Stamp,
    file_clock,
    file_stamp,
    private_dir,
    read_checked,
    write_checked,
)
from comms.publish.page_cache import by_path, prints
from comms.publish.producer import Build, Files

#: The width (CSS px) of the e-mail's content column: the 600 px body of
#: templates/email/base.mjml.j2 less its 24 px padding on either side. Every image of an
#: e-mail is at most this wide: body images (`fit_images`) and the `image:` field of events and
#: practices (`picture` in their partials).
COLUMN = 552
#: Copies are made at these multiples of the column: 1× for ordinary screens, 2× for
#: high-density ones.
DENSITIES = (1, 2)
#: Formats that get resized copies (Pillow's names). GIFs may be animated and keep their file;
#: WebP and SVG are left alone too (many mail clients show neither).
RESIZABLE = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG"}
#: Cached copies, under the config file's folder: a rebuild resizes nothing it did before.
CACHE = Path("var") / "cache" / "images"
#: Bump when the copies' recipe changes, so that cached copies are made again.
RECIPE = "1"
JPEG_QUALITY = 82
#: The size budget of an image file (`comms check` warns above it): the mail carries resized
#: copies, but the archive page loads the file itself, and a camera original makes every build
#: that has not cached it slow. 1 MB and 2,400 px on the longer side (2× a wide web column) are
#: plenty for a photo in a newsletter.
MAX_BYTES = 1_000_000
MAX_SIDE = 2_400

_IMG = re.compile(r"<img\b[^>]*>", re.IGNORECASE)
#: The style every e-mail image gets: never wider than its column, its height following.
STYLE = "max-width:100%;height:auto;border:0"


@dataclass(frozen=True)
class Picture:
    """An image as an e-mail shows it: the file to load, the copies per density, its size."""

    #: The absolute URL of the file: the 2× copy where there is one (clients without srcset,
    #: Gmail and Outlook among them, then still show it sharp on high-density screens).
    src: str
    #: `"URL 1x, URL 2x"`, or empty when the image is no wider than the column.
    srcset: str
    #: Width and height in CSS px (height None when the file cannot be read).
    width: int
    height: int | None


def static_path(config: Config, src: str) -> str | None:
    """The site path (`images/x.jpg`) of an image on the site's own host, else None."""
    parts = urlsplit(src)
    if parts.scheme or parts.netloc:
        if parts.scheme not in ("http", "https") or (parts.hostname or "") != config.host:
            return None
    elif not src.startswith("/"):
        return None
    site_path = unquote(parts.path).lstrip("/")
    if not site_path or ".." in Path(site_path).parts:
        return None
    return site_path


def static_file(config: Config, site_path: str) -> Path:
    """The file of a site path in `render.static_dir`."""
    return config.root / config.settings.render.static_dir / site_path


def image_size(path: Path) -> tuple[int, int] | None:
    """(width, height) of an image file as shown (EXIF rotation applied), or None if unreadable."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return _size(path, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=4096)
def _size(path: Path, mtime_ns: int, size: int) -> tuple[int, int] | None:
    # Only the header is read; the arguments besides the path make a changed file a new key.
    from PIL import Image  # only where a page shows a picture: a build of text needs none

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                width, height = image.size
                # Orientations 5-8 turn the picture by 90°: browsers show it turned.
                if image.getexif().get(0x0112) in (5, 6, 7, 8):
                    width, height = height, width
    except (OSError, ValueError, Image.DecompressionBombError):
        return None
    return width, height


def copy_widths(path: Path, natural: int) -> list[int]:
    """The widths of the resized copies an image gets: each density's column wider than the file
    is (none for a file no wider than the column, or of a format that is not resized)."""
    if path.suffix.lower() not in RESIZABLE:
        return []
    return [COLUMN * density for density in DENSITIES if COLUMN * density < natural]


def picture(config: Config, src: str) -> Picture:
    """How an e-mail shows the image `src` (a site path or URL): at most the column wide, from
    the resized copies where the file is larger than needed."""
    site_urls = urls.Urls(config)
    site_path = static_path(config, src)
    file = static_file(config, site_path) if site_path is not None else None
    size = image_size(file) if file is not None else None
    if file is None or site_path is None or size is None:
        # Not ours, missing (`comms check` reports it) or unreadable: the column is the limit.
        return Picture(site_urls.asset(src), "", COLUMN, None)
    natural, tall = size
    width = min(natural, COLUMN)
    height = round(tall * width / natural)
    original = site_urls.asset("/" + site_path)
    if natural <= COLUMN:
        return Picture(original, "", width, height)
    made = copy_widths(file, natural)
    if not made:
        return Picture(original, "", width, height)
    by_density = [
        site_urls.asset("/" + urls.sized_image_path(site_path, COLUMN * density))
        if COLUMN * density in made
        else original
        for density in DENSITIES
    ]
    pairs = zip(by_density, DENSITIES, strict=True)
    srcset = ", ".join(f"{url} {density}x" for url, density in pairs)
    return Picture(by_density[-1], srcset, width, height)


class _Attributes(HTMLParser):
    """The attributes of one start tag."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.attrs: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.attrs = {name: value or "" for name, value in attrs}

    handle_startendtag = handle_starttag


def _fit(config: Config, tag: str) -> str:
    parser = _Attributes()
    parser.feed(tag)
    parser.close()
    attrs = parser.attrs
    shown = picture(config, attrs.get("src", ""))
    width, height = shown.width, shown.height
    asked = attrs.get("width", "").removesuffix("px")
    if asked.isdigit() and 0 < int(asked) < width:
        # The editor asked for a smaller image: keep it, and its proportions.
        height = round(height * int(asked) / width) if height else None
        width = int(asked)
    fitted = {"src": shown.src, "srcset": shown.srcset or None, "alt": attrs.get("alt")}
    fitted |= {"title": attrs.get("title"), "width": str(width)}
    fitted |= {"height": str(height) if height else None, "style": STYLE}
    shown_attrs = [(name, value) for name, value in fitted.items() if value is not None]
    return "<img " + " ".join(f'{name}="{html.escape(value)}"' for name, value in shown_attrs) + ">"


def fit_images(config: Config, body: str) -> str:
    """Every `<img>` of an e-mail body at most the column wide (width and height attributes,
    `max-width:100%`, `height:auto`), loading the resized copies where there are some."""
    return _IMG.sub(lambda match: _fit(config, match.group()), body)


def sized_files(build: Build) -> Files:
    """The resized copies of every image in `render.static_dir` that is wider than the column
    (a producer): the copies the e-mails load, made once and cached under `var/cache/images/`."""
    config = build.config
    folder = config.root / config.settings.render.static_dir
    files = Files()
    if not folder.is_dir():
        return files
    sizes = _KeptSizes(config)
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if any(part.startswith(".") for part in relative.parts) or not path.is_file():
            continue
        size = sizes.size(path) if path.suffix.lower() in RESIZABLE else None
        if size is None:
            continue
        for width in copy_widths(path, size[0]):
            target = urls.sized_image_path(relative.as_posix(), width)
            files[target] = functools.partial(resized, config, path, width)
    sizes.save()
    return by_path(prints(build), files, "sized")


#: The sizes of the static images as `sized_files` last found them, under `CACHE`.
SIZES = "sizes.bin"


class _KeptSizes:
    """Image sizes kept across builds by each file's stamp (device, inode, size, mtime, ctime),
    so that a build whose images are as before opens none (nor imports Pillow, a fortieth of a
    second). As in the content cache, a file changed within SETTLE before the build is not
    kept: a change in the same clock tick could keep its stamp."""

    def __init__(self, config: Config) -> None:
        self.file = config.root / CACHE / SIZES
        kept = read_checked(self.file, 1)
        self.kept: dict[str, tuple[Stamp, tuple[int, int]]] = kept if isinstance(kept, dict) else {}
        self.found: dict[str, tuple[Stamp, tuple[int, int]]] = {}
        self.since: int | None = None

    def size(self, path: Path) -> tuple[int, int] | None:
        """`image_size` of `path`, kept from an earlier build if its stamp is the same."""
        stamp = file_stamp(path)
        if stamp is None:
            return None
        name = str(path)
        known = self.kept.get(name)
        if known is not None and tuple(known[0]) == stamp:
            self.found[name] = known
            return (int(known[1][0]), int(known[1][1]))
        size = image_size(path)
        if self.since is None:
            now = file_clock(self.file.with_name("clock"))
            self.since = -1 if now is None else now - SETTLE
        if size is not None and stamp[3] < self.since and stamp[4] < self.since:
            self.found[name] = (stamp, size)
        return size

    def save(self) -> None:
        """Keep the sizes found, if they differ from those kept (a failure costs a later miss)."""
        if self.found != self.kept:
            write_checked(self.file, 1, self.found)


def resized(config: Config, path: Path, width: int) -> bytes:
    """The file `path` scaled to `width` px (no metadata kept but its colour profile), from the
    cache when it was made before."""
    data = path.read_bytes()
    key = hashlib.sha256(data).hexdigest()
    cached = config.root / CACHE / f"{key}-{width}-{RECIPE}{path.suffix.lower()}"
    try:
        return cached.read_bytes()
    except OSError:
        pass
    made = _scale(data, RESIZABLE[path.suffix.lower()], width)
    try:
        # var/ also holds the secret key and the database: never readable by others.
        private_dir(cached.parent)
        fd, tmp = tempfile.mkstemp(dir=cached.parent, prefix=".tmp-")
        with os.fdopen(fd, "wb") as handle:
            handle.write(made)
        os.replace(tmp, cached)
    except OSError:
        pass  # a read-only folder: the copy is made again next time
    return made


def _scale(data: bytes, fmt: str, width: int) -> bytes:
    from PIL import Image, ImageOps

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        with Image.open(io.BytesIO(data)) as opened:
            profile = opened.info.get("icc_profile")
            image = ImageOps.exif_transpose(opened)
            height = max(1, round(image.height * width / image.width))
            if fmt == "JPEG" and image.mode not in ("RGB", "L", "CMYK"):
                image = image.convert("RGB")
            elif fmt == "PNG" and image.mode not in ("RGB", "RGBA", "L", "LA"):
                image = image.convert("RGBA")
            scaled = image.resize((width, height), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    options: dict[str, object] = {"optimize": True}
    if profile:
        options["icc_profile"] = profile
    if fmt == "JPEG":
        options |= {"quality": JPEG_QUALITY, "progressive": True}
    scaled.save(out, fmt, **options)
    return out.getvalue()


def budget_problem(path: Path) -> str | None:
    """What makes an image file larger than an e-mail image needs to be, or None."""
    try:
        size = path.stat().st_size
    except OSError:
        return None
    if size > MAX_BYTES:
        return (
            f"image file {path.name} has {size / 1_000_000:.1f} MB; keep images under "
            f"{MAX_BYTES / 1_000_000:.0f} MB (save it smaller or as JPEG)"
        )
    shown = image_size(path)
    if shown is None:
        return None
    if max(shown) > MAX_SIDE:
        return (
            f"image file {path.name} is {shown[0]:,} × {shown[1]:,} px; "
            f"{MAX_SIDE:,} px on the longer side are plenty: scale it down"
        )
    return None


_SRC = re.compile(r'(\ssrc=")([^"]*)(")', re.IGNORECASE)
_SRCSET = re.compile(r'\ssrcset="[^"]*"', re.IGNORECASE)
_SIZED_NAME = re.compile(r"^(?P<stem>.+)-(?P<width>\d+)w(?P<suffix>\.[^./]+)?$")
#: The types an inlined picture may have (what the desk's upload takes, and SVG's not).
_INLINE_TYPES = {
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".gif": "image/gif",
    ".webp": "image/webp",
}


def _source_bytes(config: Config, site_path: str) -> tuple[bytes, str] | None:
    """The bytes and type of a site image as the mail would load it: a file of the static
    folder, or the resized copy a build makes of one (`_sized/…-552w.jpg`)."""
    width = None
    if site_path.startswith(urls.SIZED):
        found = _SIZED_NAME.match(site_path.removeprefix(urls.SIZED))
        if found is None:
            return None
        site_path = found["stem"] + (found["suffix"] or "")
        width = int(found["width"])
    path = static_file(config, site_path)
    kind = _INLINE_TYPES.get(path.suffix.lower())
    if kind is None or not path.is_file():
        return None
    size = image_size(path)
    if width is not None and (size is None or width not in copy_widths(path, size[0])):
        return None
    return (resized(config, path, width) if width else path.read_bytes()), kind


def inline_images(config: Config, body: str) -> str:
    """`body` (a mail's HTML) with the site's own pictures as `data:` URLs: a preview before
    the build shows new uploads and their resized copies, which the site serves only once
    built. The `srcset` goes (its 2× copies are for screens, not for a check)."""

    def one(tag: str) -> str:
        found = _SRC.search(tag)
        site_path = static_path(config, html.unescape(found.group(2))) if found else None
        made = _source_bytes(config, site_path) if found and site_path else None
        if found is None or made is None:
            return tag
        data, kind = made
        uri = f"data:{kind};base64,{base64.b64encode(data).decode()}"
        tag = tag[: found.start(2)] + uri + tag[found.end(2) :]
        return _SRCSET.sub("", tag)

    return _IMG.sub(lambda match: one(match.group()), body)
