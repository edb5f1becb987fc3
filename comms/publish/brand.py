"""The brand in e-mails and pages (`[brand]`): logos (PNG copies rendered from an SVG at 1× and
2×), the header image and the footer's partners row."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from comms.content import urls
from comms.core.config import Config
from comms.core.settings import AA_CONTRAST, Brand, contrast, mix
from comms.publish.images import COLUMN, DENSITIES, picture, static_file
from comms.publish.page_cache import by_path, prints
from comms.publish.producer import Build, Files

#: Width (CSS px) of a partner's logo in the footer's row.
PARTNER_WIDTH = 120
_VIEWBOX = re.compile(rb"""viewBox\s*=\s*["']\s*[-\d.]+[\s,]+[-\d.]+[\s,]+([\d.]+)[\s,]+([\d.]+)""")


@dataclass(frozen=True)
class Logo:
    """A logo as a mail shows it (PNG copies) and as a page shows it (the file itself)."""

    #: Absolute URL of what mail clients load: the 2× PNG copy of an SVG, else the file.
    src: str
    #: `"URL 1x, URL 2x"` for an SVG's copies, else empty.
    srcset: str
    #: Absolute URL of the file itself (pages show an SVG as it is).
    web_src: str
    width: int
    height: int | None
    alt: str


def is_svg(site_path: str) -> bool:
    """Whether a site path names an SVG (which mails get as PNG copies)."""
    return site_path.lower().endswith(".svg")


def png_path(site_path: str, width: int) -> str:
    """The site path of a PNG copy of the SVG `site_path`, `width` px wide."""
    return urls.sized_image_path(site_path.rpartition(".")[0] + ".png", width)


def svg_ratio(path: Path) -> float | None:
    """Height / width of an SVG from its viewBox, or None when it has none or cannot be read."""
    try:
        with path.open("rb") as svg:  # the head is enough: the viewBox is on the root element
            match = _VIEWBOX.search(svg.read(4096))
    except OSError:
        return None
    if match is None or float(match.group(1)) <= 0:
        return None
    return float(match.group(2)) / float(match.group(1))


def logo(config: Config, src: str, width: int, alt: str) -> Logo:
    """How mails and pages show the image `src` (a site path) `width` px wide at most."""
    site_urls = urls.Urls(config)
    site_path = src.lstrip("/")
    original = site_urls.asset("/" + site_path)
    if not is_svg(site_path):
        shown = picture(config, "/" + site_path)
        height = shown.height
        if shown.width > width and height:
            height = round(height * width / shown.width)
        return Logo(shown.src, shown.srcset, original, min(width, shown.width), height, alt)
    ratio = svg_ratio(static_file(config, site_path))
    height = round(width * ratio) if ratio else None
    copies = [site_urls.asset("/" + png_path(site_path, width * d)) for d in DENSITIES]
    srcset = ", ".join(f"{url} {d}x" for url, d in zip(copies, DENSITIES, strict=True))
    return Logo(copies[-1], srcset, original, width, height, alt)


@functools.lru_cache(maxsize=64)
def _png(path: Path, mtime_ns: int, width: int) -> bytes:
    # Imported here: cairo costs half a second at start-up, and most commands draw no logo.
    import cairosvg

    # The SVG's own bytes: cairosvg then loads nothing it refers to (no files, no URLs).
    data = cairosvg.svg2png(bytestring=path.read_bytes(), output_width=width)
    assert isinstance(data, bytes)
    return data


def rendered_png(path: Path, width: int) -> bytes:
    """The SVG file `path` as a PNG `width` px wide (cached while the file is unchanged)."""
    return _png(path, path.stat().st_mtime_ns, width)


def _svgs(config: Config) -> list[tuple[str, int]]:
    brand = config.settings.brand
    shown = [(brand.logo, brand.logo_width)] + [(p.logo, PARTNER_WIDTH) for p in brand.partners]
    return [(src.lstrip("/"), width) for src, width in shown if src and is_svg(src)]


def brand_files(build: Build) -> Files:
    """The PNG copies of the brand's SVG logos at 1× and 2× (a producer)."""
    config = build.config
    files = Files()
    for site_path, width in _svgs(config):
        path = static_file(config, site_path)
        if not path.is_file():
            continue  # `comms check` reports it at its line in comms.toml
        for density in DENSITIES:
            made = width * density
            files[png_path(site_path, made)] = functools.partial(rendered_png, path, made)
    return by_path(prints(build), files, "brand")


@dataclass(frozen=True)
class Dark:
    """The colours of dark mode (`prefers-color-scheme: dark`, Outlook.com's `[data-ogsc]`)."""

    #: Around the column, and the footer's band.
    page: str
    #: The column.
    surface: str
    text: str
    #: Secondary text (meta lines, captions, the footer).
    muted: str
    #: Links: the primary colour lightened until it reads on `surface` and `card` (WCAG AA).
    link: str
    #: The highlighted card: the accent, faintly, on `surface`.
    card: str
    #: Status lines (cancelled, postponed).
    status: str


def dark_palette(brand: Brand) -> Dark:
    """Dark-mode colours for `brand`: fixed greys, the brand's own colours made readable."""
    surface = "#1c1c1c"
    card = mix(brand.accent, surface, 0.14)
    # Readable on the card too, the lighter of the two backgrounds links stand on.
    link, share = brand.primary, 0.0
    while min(contrast(link, surface), contrast(link, card)) < AA_CONTRAST and share < 1:
        share = min(1.0, share + 0.1)
        link = mix("#ffffff", brand.primary, share)
    return Dark("#121212", surface, "#e8e8e8", "#c8c8c8", link, card, "#ff9e94")


def brand_css(config: Config) -> str:
    """The brand's colours for the archive pages' style sheet (its custom properties), light
    and dark."""
    brand = config.settings.brand
    dark = dark_palette(brand)
    return (
        "\n/* [brand] in comms.toml */\n"
        ":root { color-scheme: light dark; "
        f"--accent: {brand.primary}; --button: {brand.primary}; --on-accent: {brand.button_text}; "
        f"--highlight: {brand.accent}; --text: {brand.text}; --bg: {brand.background}; }}\n"
        "@media (prefers-color-scheme: dark) {\n"
        f"  :root {{ --accent: {dark.link}; --text: {dark.text}; --bg: {dark.surface}; "
        f"--band: {dark.page}; --muted: {dark.muted}; --line: #4a4a4a; }}\n"
        f"  .status {{ color: {dark.status}; }}\n"
        "}\n"
    )


def brand_context(config: Config) -> dict[str, Any]:
    """What templates show of the brand: `brand` (the settings), `logo`, `header_image` and
    `partners` (each a pair of the partner and its Logo, or None for a name shown as text)."""
    brand = config.settings.brand
    head = logo(config, brand.logo, brand.logo_width, brand.logo_alt or "") if brand.logo else None
    header_image = None
    if brand.header == "image" and brand.header_image:
        header_image = logo(config, brand.header_image, COLUMN + 48, brand.header_image_alt or "")
    partners = [
        (p, logo(config, p.logo, PARTNER_WIDTH, p.alt or p.name) if p.logo else None)
        for p in brand.partners
    ]
    return {
        "brand": brand,
        "dark": dark_palette(brand),
        "logo": head,
        "header_image": header_image,
        "partners": partners,
    }
