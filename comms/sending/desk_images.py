"""Images uploaded on the desk: recognised by their content (JPEG, PNG, WebP, GIF; never SVG),
scaled to the size budget of `comms.publish.images`, stripped of their metadata (EXIF, GPS,
comments; the colour profile stays), written under `render.static_dir`/images/ without
overwriting unless asked, and committed with the account as author; each in the audit log."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageOps, ImageSequence, UnidentifiedImageError

from comms.content.models import N_
from comms.content.reader import slugify
from comms.core.errors import CommsError
from comms.db.desk_accounts import Account
from comms.publish.images import COLUMN, DENSITIES, JPEG_QUALITY, MAX_BYTES, MAX_SIDE
from comms.sending.desk_office import Office, commit_as

#: The largest upload the desk takes (bytes): a camera's JPEG fits, a video does not.
UPLOAD_LIMIT = 20_000_000
#: The most pixels an upload may have: more is a decompression bomb, not a photo.
MAX_PIXELS = 60_000_000
#: The folder under `render.static_dir` that uploads go to (the sample's images are there).
FOLDER = "images"
#: The formats taken (Pillow's names) and the file name ending each gets.
FORMATS = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "GIF": ".gif"}
#: Longest side of the preview the desk shows after an upload (inline, as a data: URL).
THUMB_SIDE = 480
#: The widest an image needs to be for the e-mail's 2× copy (high-density screens).
SHARP = COLUMN * max(DENSITIES)
#: The longest alternative text, caption and credit taken.
MAX_TEXT = 500


#: Why a file larger than UPLOAD_LIMIT is refused (also when the form as a whole is too large).
TOO_LARGE = N_("The file is larger than %(limit)s MB; save it smaller and upload it again.")


#: Why a file that is no image of the formats taken is refused.
NOT_AN_IMAGE = N_("By its content, this file is no image in JPEG, PNG, WebP or GIF format.")


class Refused(CommsError):
    """An upload the desk does not take: `message` is an interface string (translated by the
    page), `values` fill its `%(name)s` places."""

    def __init__(self, message: str, **values: object) -> None:
        super().__init__(message % values)
        self.message = message
        self.values = values


#: Why an editor may not replace an image.
REPLACE_ROLE = N_(
    "Only an approver may replace an image, as approved issues may show it: upload it under a "
    "new name."
)


class NotAllowed(Refused):
    """An upload the account's role may not make."""


class TooLarge(Refused):
    """An upload larger than the desk takes."""


class Exists(Refused):
    """An upload whose file name is taken (and replacing it was not chosen)."""


@dataclass(frozen=True)
class Cleaned:
    """An image file as the desk stores it: its bytes, format and size in pixels."""

    data: bytes
    format: str
    width: int
    height: int

    @property
    def suffix(self) -> str:
        """The file name ending of its format."""
        return FORMATS[self.format]


@dataclass(frozen=True)
class Uploaded:
    """An uploaded image as stored: where, how large, its texts, commit and notes."""

    #: The site path (`images/x.jpg`) and URL path (`/images/x.jpg`).
    site_path: str
    width: int
    height: int
    size: int
    alt: str
    caption: str
    credit: str
    commit: str | None
    #: A small copy as a `data:` URL, for the page that confirms the upload.
    thumbnail: str
    #: Interface strings with their values: what the editor should know about the file.
    notes: list[tuple[str, dict[str, object]]] = field(default_factory=list)

    @property
    def src(self) -> str:
        """The image's URL path on the site."""
        return "/" + self.site_path

    @property
    def markdown(self) -> str:
        """The image in a Markdown body, with its alternative text."""
        return markdown(self.alt, self.src)

    @property
    def front_matter(self) -> str:
        """The `image:` field of an event or practice (YAML; JSON strings are YAML too)."""
        lines = [
            "image:",
            f"  src: {self.src}",
            f"  alt: {json.dumps(self.alt, ensure_ascii=False)}",
        ]
        for key, value in (("caption", self.caption), ("credit", self.credit)):
            if value:
                lines.append(f"  {key}: {json.dumps(value, ensure_ascii=False)}")
        return "\n".join(lines)


def markdown(alt: str, src: str) -> str:
    """An image in a Markdown body: `![alt](src)`, brackets in the text escaped."""
    text = alt.replace("\\", "\\\\").replace("[", "\\[").replace("]", "\\]")
    return f"![{text}]({src})"


def _one_line(value: str, too_long: str) -> str:
    """`value` on one line with single spaces; Refused with `too_long` past MAX_TEXT."""
    text = " ".join(value.split())
    if len(text) > MAX_TEXT:
        raise Refused(too_long, limit=MAX_TEXT)
    return text


def _open(data: bytes) -> Image.Image:
    """The image in `data`, recognised by its content; Refused for anything else."""
    if not data:
        raise Refused(N_("The file is empty."))
    if len(data) > UPLOAD_LIMIT:
        raise TooLarge(TOO_LARGE, limit=UPLOAD_LIMIT // 1_000_000)
    head = data[:2048].lstrip().lower()
    if head.startswith((b"<?xml", b"<svg", b"<!doctype svg")) or b"<svg" in head:
        raise Refused(
            N_("SVG files are not accepted: they can carry scripts. Upload a PNG instead.")
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=list(FORMATS))
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise Refused(
                    N_("The image has %(pixels)s million pixels; %(limit)s million are the most."),
                    pixels=width * height // 1_000_000,
                    limit=MAX_PIXELS // 1_000_000,
                )
            if getattr(image, "n_frames", 1) * width * height > MAX_PIXELS:
                # An animation's frames are all held while it is scaled.
                raise Refused(
                    N_("The image has too many pixels; at most %(limit)s million are accepted."),
                    limit=MAX_PIXELS // 1_000_000,
                )
            image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise Refused(
            N_("The image has too many pixels; at most %(limit)s million are accepted."),
            limit=MAX_PIXELS // 1_000_000,
        ) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise Refused(NOT_AN_IMAGE) from None
    return image


def _scaled(image: Image.Image) -> Image.Image:
    """The picture upright (EXIF orientation applied), at most MAX_SIDE on its longer side,
    with no metadata left on it."""
    if "transparency" in image.info:
        # Held in the metadata that is dropped below: made part of the pixels first.
        image = image.convert("RGBA")
    elif image.mode == "P":
        image = image.convert("RGB")
    upright = ImageOps.exif_transpose(image)
    longer = max(upright.size)
    if longer > MAX_SIDE:
        ratio = MAX_SIDE / longer
        size = (max(1, round(upright.width * ratio)), max(1, round(upright.height * ratio)))
        upright = upright.resize(size, Image.Resampling.LANCZOS)
    upright.info = {}
    return upright


def _encode(image: Image.Image, fmt: str, profile: bytes | None, quality: int) -> bytes:
    if fmt == "JPEG" and image.mode not in ("RGB", "L", "CMYK"):
        image = image.convert("RGB")
    elif fmt == "PNG" and image.mode not in ("RGB", "RGBA", "L", "LA", "P"):
        image = image.convert("RGBA")
    # Only what is passed here is written: no EXIF, XMP, GPS or comments from the upload.
    options: dict[str, object] = {}
    if profile:
        options["icc_profile"] = profile
    if fmt == "JPEG":
        options |= {"quality": quality, "optimize": True, "progressive": True}
    elif fmt == "PNG":
        options |= {"optimize": True}
    elif fmt == "WEBP":
        options |= {"quality": quality, "method": 4}
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def _gif(image: Image.Image) -> Cleaned:
    """A GIF with every frame of its animation, scaled like any image, without comments."""
    frames: list[Image.Image] = []
    durations: list[int] = []
    for frame in ImageSequence.Iterator(image):
        durations.append(int(frame.info.get("duration", 100)))
        frames.append(_scaled(frame.convert("RGBA")))
    loop = image.info.get("loop", 0)
    out = io.BytesIO()
    if len(frames) > 1:
        frames[0].save(
            out, "GIF", save_all=True, append_images=frames[1:], duration=durations, loop=loop,
            disposal=2, optimize=True,
        )  # fmt: skip
    else:
        frames[0].save(out, "GIF", optimize=True)
    return Cleaned(out.getvalue(), "GIF", frames[0].width, frames[0].height)


def clean(data: bytes) -> Cleaned:
    """The uploaded file `data` as the desk stores it: checked by its content, upright, at
    most MAX_SIDE px on its longer side, without metadata; Refused with the reason."""
    image = _open(data)
    # Phones write JPEGs with a second picture in them (MPO): the first is the photo.
    fmt = "JPEG" if image.format == "MPO" else str(image.format)
    if fmt not in FORMATS:
        raise Refused(NOT_AN_IMAGE)
    if fmt == "GIF":
        return _gif(image)
    profile = image.info.get("icc_profile")
    scaled = _scaled(image)
    quality = JPEG_QUALITY
    made = _encode(scaled, fmt, profile, quality)
    # Lossy formats step their quality down until the file fits the size budget.
    while len(made) > MAX_BYTES and fmt in ("JPEG", "WEBP") and quality > 60:
        quality -= 8
        made = _encode(scaled, fmt, profile, quality)
    return Cleaned(made, fmt, scaled.width, scaled.height)


def thumbnail(data: bytes) -> str:
    """A small PNG copy of an image file as a `data:` URL."""
    with Image.open(io.BytesIO(data)) as image:
        small = image.convert("RGBA")
        small.thumbnail((THUMB_SIDE, THUMB_SIDE))
        out = io.BytesIO()
        small.save(out, "PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode("ascii")


def file_name(wanted: str, uploaded: str, suffix: str) -> str:
    """A safe file name: the slug of the wanted name, else of the uploaded file's name, with
    the ending of the format found (never the one sent)."""
    stem = slugify(wanted.rsplit(".", 1)[0] if wanted else "")
    if not stem:
        base = uploaded.replace("\\", "/").rsplit("/", 1)[-1]
        stem = slugify(base.rsplit(".", 1)[0] if "." in base else base)
    return (stem or "bild") + suffix


def _write(target: Path, data: bytes, replace: bool) -> None:
    """Write `target` atomically; without `replace`, never over an existing file."""
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        # Static files are served: readable by the web server like the rest of the folder.
        os.chmod(tmp, 0o644)
        if replace:
            os.replace(tmp, target)
        else:
            try:
                os.link(tmp, target)  # fails when the name exists, even in a race
            except FileExistsError:
                raise Exists(
                    N_("An image named %(name)s exists: choose another name, or replace it."),
                    name=target.name,
                ) from None
    finally:
        Path(tmp).unlink(missing_ok=True)


def upload(
    office: Office,
    account: Account,
    data: bytes,
    *,
    uploaded_name: str,
    name: str,
    alt: str,
    caption: str = "",
    credit: str = "",
    replace: bool = False,
) -> Uploaded:
    """Store an uploaded image under `render.static_dir`/images/ as `account` and commit it
    where the folder is in a git repository; Refused says why not."""
    config = office.config
    if replace and not account.may("approver"):
        # An approved issue shows the image by its URL: its approval does not see the bytes,
        # so swapping them is a change only someone who may approve may make.
        raise NotAllowed(REPLACE_ROLE)
    alt = _one_line(alt, N_("The alternative text is longer than %(limit)s characters."))
    if not alt:
        raise Refused(N_("Describe the picture in the alternative text: it is required."))
    caption = _one_line(caption, N_("The caption is longer than %(limit)s characters."))
    credit = _one_line(credit, N_("The credit is longer than %(limit)s characters."))
    cleaned = clean(data)
    static = (config.root / config.settings.render.static_dir).resolve()
    folder = static / FOLDER
    target = folder / file_name(name, uploaded_name, cleaned.suffix)
    if target.parent != folder:  # a slug has no separators; this only guards the rule
        raise Refused(N_("This file name is not allowed."))
    folder.mkdir(parents=True, exist_ok=True)
    exists = target.exists()
    unchanged = exists and replace and target.read_bytes() == cleaned.data
    if not unchanged:
        _write(target, cleaned.data, replace)
    site_path = target.relative_to(static).as_posix()
    commit = None
    if not unchanged:
        verb = "Replace" if exists else "Add"
        commit = commit_as(account, folder, target, f"{verb} {site_path} on the desk")
    notes: list[tuple[str, dict[str, object]]] = []
    if cleaned.width < SHARP and cleaned.format != "GIF":
        notes.append(
            (
                N_("The image is %(width)s px wide: e-mails show it sharp on high-density "
                   "screens from %(sharp)s px."),
                {"width": cleaned.width, "sharp": SHARP},
            )
        )  # fmt: skip
    if len(cleaned.data) > MAX_BYTES:
        notes.append(
            (
                N_("The file has %(size)s MB even after scaling; comms check warns about "
                   "images over %(limit)s MB."),
                {"size": f"{len(cleaned.data) / 1_000_000:.1f}", "limit": MAX_BYTES // 1_000_000},
            )
        )  # fmt: skip
    digest = hashlib.sha256(cleaned.data).hexdigest()
    what = f"{cleaned.width}x{cleaned.height} {cleaned.format}, {len(cleaned.data)} bytes"
    where = f"commit {commit}" if commit else ("unchanged" if unchanged else "no git repository")
    office.accounts.audit(account.name, "upload-image", site_path, digest, f"{what}; {where}")
    return Uploaded(
        site_path,
        cleaned.width,
        cleaned.height,
        len(cleaned.data),
        alt,
        caption,
        credit,
        commit,
        thumbnail(cleaned.data),
        notes,
    )


def insert(office: Office, account: Account, kind: str, slug: str, site_path: str, alt: str) -> str:
    """Add an uploaded image (`images/x.jpg`) with its alternative text at the end of an
    item's body, saved and committed like an edit by `account`; the file's new digest."""
    config = office.config
    folder = (config.root / config.settings.render.static_dir).resolve() / FOLDER
    file = (folder.parent / site_path).resolve()
    if file.parent != folder or not file.is_file():
        raise Refused(N_("There is no uploaded image %(name)s."), name=site_path)
    alt = _one_line(alt, N_("The alternative text is longer than %(limit)s characters."))
    if not alt:
        raise Refused(N_("Describe the picture in the alternative text: it is required."))
    source = office.source(kind, slug)
    text = source.text.rstrip("\n") + "\n\n" + markdown(alt, "/" + site_path) + "\n"
    return office.save(kind, slug, text, source.digest, account)
