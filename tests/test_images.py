"""Images in e-mails: fitted to the column, resized copies (1×, 2×) in the build and cached, the
size budget and missing files in `comms check`."""

from __future__ import annotations

import base64
import io
import os
import re
from pathlib import Path

import pytest
from PIL import Image

from comms.content.models import Site
from comms.content.site import read_site
from comms.core.config import Config, load_config
from comms.publish import images
from comms.publish.build import collect, write_output
from comms.publish.gate import issue_problems
from comms.publish.producer import Build
from comms.publish.render import render_issue
from comms.publish.state import ScratchState

from .ledgerkit import run_cli

ISSUE = "2020-04-newsletter"
HOST = "https://newsletter.example.org"


def photo(path: Path, width: int, height: int, fmt: str = "JPEG") -> Path:
    """A picture of `width` × `height` px with some detail (a gradient), saved as `fmt`."""
    image = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, fmt)
    return path


def with_body_line(root: Path, line: str, slug: str = ISSUE) -> Path:
    """Put `line` as the first paragraph of an issue's body; returns the file."""
    path = root / "content" / "issues" / f"{slug}.md"
    head, _, body = path.read_text(encoding="utf-8").partition("\n---\n")
    path.write_text(f"{head}\n---\n{line}\n\n{body}", encoding="utf-8")
    return path


def img_tags(html: str) -> list[str]:
    return re.findall(r"<img\b[^>]*>", html)


def test_a_wide_body_photo_fits_the_column_and_loads_the_copies(site_copy: Path) -> None:
    photo(site_copy / "static" / "images" / "foto.jpg", 1200, 600)
    with_body_line(site_copy, "![Ein Foto aus der Werkstatt](/images/foto.jpg)")
    config = load_config(site_copy / "comms.toml")
    site, _ = read_site(config)
    html = render_issue(config, site, site.issues[ISSUE]).html
    [tag] = [t for t in img_tags(html) if "foto" in t]
    assert tag == (
        f'<img src="{HOST}/_sized/images/foto-1104w.jpg" '
        f'srcset="{HOST}/_sized/images/foto-552w.jpg 1x, {HOST}/_sized/images/foto-1104w.jpg 2x" '
        'alt="Ein Foto aus der Werkstatt" width="552" height="276" '
        'style="max-width:100%;height:auto;border:0" />'
    )


def test_small_and_unknown_images_keep_their_file(site_copy: Path) -> None:
    photo(site_copy / "static" / "images" / "klein.png", 300, 200, "PNG")
    with_body_line(
        site_copy,
        '![Klein](/images/klein.png) <img src="https://cdn.example.org/x.png" alt="Fremd">',
    )
    config = load_config(site_copy / "comms.toml")
    site, _ = read_site(config)
    html = render_issue(config, site, site.issues[ISSUE]).html
    tags = [t for t in img_tags(html) if "klein" in t or "cdn" in t]
    style = 'style="max-width:100%;height:auto;border:0"'
    assert tags[0] == (
        f'<img src="{HOST}/images/klein.png" alt="Klein" width="300" height="200" {style} />'
    )
    # Not on the site's host: its size is unknown, the column is the limit.
    cdn = "https://cdn.example.org/x.png"
    assert tags[-1] == f'<img src="{cdn}" alt="Fremd" width="552" {style} />'


def test_an_editor_width_smaller_than_the_column_is_kept(site_copy: Path) -> None:
    photo(site_copy / "static" / "images" / "foto.jpg", 1200, 600)
    with_body_line(site_copy, '<img src="/images/foto.jpg" alt="Foto" width="200">')
    config = load_config(site_copy / "comms.toml")
    site, _ = read_site(config)
    html = render_issue(config, site, site.issues[ISSUE]).html
    [tag] = [t for t in img_tags(html) if "foto" in t]
    assert 'width="200" height="100"' in tag


def test_the_image_field_uses_the_same_column_and_copies(site_copy: Path) -> None:
    """The practice's `image:` field (mj-image) gets the column width from the same owner."""
    config = load_config(site_copy / "comms.toml")
    site, _ = read_site(config)
    html = render_issue(config, site, site.issues["2019-11-newsletter"]).html
    [tag] = [t for t in img_tags(html) if "stuhlbau" in t]
    assert f'width="{images.COLUMN}"' in tag
    assert f'src="{HOST}/_sized/images/stuhlbau-projekt-lamspringe-1104w.jpg"' in tag
    assert "stuhlbau-projekt-lamspringe-552w.jpg 1x" in tag


def test_the_build_writes_the_copies_and_caches_them(
    site_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    photo(site_copy / "static" / "images" / "foto.jpg", 1200, 600)
    photo(site_copy / "static" / "images" / "mittel.png", 800, 400, "PNG")
    photo(site_copy / "static" / "images" / "klein.png", 300, 200, "PNG")
    config = load_config(site_copy / "comms.toml")
    site, _ = read_site(config)
    out = site_copy / "public"
    write_output(out, collect(Build(config, site, ScratchState(site.issues))))
    sized = out / "_sized" / "images"
    for name, size in [
        ("foto-552w.jpg", (552, 276)),
        ("foto-1104w.jpg", (1104, 552)),
        ("mittel-552w.png", (552, 276)),
    ]:
        with Image.open(sized / name) as made:
            assert made.size == size
    # The cache lives in var/, beside the secret key: a new var/ is private.
    assert (site_copy / "var").stat().st_mode & 0o077 == 0
    # No copy larger than the file, none of a file no wider than the column.
    assert not (sized / "mittel-1104w.png").exists()
    assert not list(sized.glob("klein*"))
    # A rebuild into a new folder takes every copy from the cache: nothing is resized again.
    monkeypatch.setattr(images, "_scale", lambda *args: pytest.fail("resized again"))
    again = site_copy / "public-2"
    write_output(again, collect(Build(config, site, ScratchState(site.issues))))
    assert (again / "_sized/images/foto-1104w.jpg").read_bytes() == (
        sized / "foto-1104w.jpg"
    ).read_bytes()


def test_a_copy_is_made_again_when_the_file_changes(site_copy: Path) -> None:
    source = photo(site_copy / "static" / "images" / "foto.jpg", 1200, 600)
    config = load_config(site_copy / "comms.toml")
    first = images.resized(config, source, 552)
    photo(source, 1200, 900)
    with Image.open(io.BytesIO(images.resized(config, source, 552))) as made:
        assert made.size == (552, 414)
    assert first != images.resized(config, source, 552)


def test_check_warns_about_images_over_the_budget_and_fails_on_missing_ones(
    site_copy: Path,
) -> None:
    photo(site_copy / "static" / "images" / "riesig.jpg", 3000, 1500)
    noise = Image.effect_noise((800, 800), 120).convert("RGB")
    noise.save(site_copy / "static" / "images" / "schwer.png", "PNG")
    heavy = (site_copy / "static" / "images" / "schwer.png").stat().st_size
    assert heavy > images.MAX_BYTES
    issue = with_body_line(
        site_copy,
        "![Riesig](/images/riesig.jpg)\n\n![Schwer](/images/schwer.png)\n\n"
        "![Fehlt](/images/fehlt.jpg)",
    )
    lines = issue.read_text(encoding="utf-8").splitlines()
    at = {word: n for n, text in enumerate(lines, 1) for word in ("riesig", "schwer", "fehlt")
          if f"/images/{word}." in text}  # fmt: skip
    code, out, _ = run_cli(site_copy, "check")
    assert code == 1
    path = f"content/issues/{ISSUE}.md"
    assert f"{path}:{at['fehlt']}: image file not found: static/images/fehlt.jpg " in out
    assert (
        f"{path}:{at['riesig']}: warning: image file riesig.jpg is 3,000 × 1,500 px; "
        "2,400 px on the longer side are plenty: scale it down\n"
    ) in out
    assert (
        f"{path}:{at['schwer']}: warning: image file schwer.png has {heavy / 1e6:.1f} MB; "
        "keep images under 1 MB (save it smaller or as JPEG)\n"
    ) in out


def test_an_image_over_the_budget_does_not_block_the_send(site_copy: Path) -> None:
    photo(site_copy / "static" / "images" / "riesig.jpg", 3000, 1500)
    with_body_line(site_copy, "![Riesig](/images/riesig.jpg)", "2019-11-newsletter")
    code, out, _ = run_cli(site_copy, "check")
    assert code == 0 and "warning: image file riesig.jpg" in out, out
    config = load_config(site_copy / "comms.toml")
    site, errors = read_site(config)
    assert issue_problems(config, site, errors, "2019-11-newsletter") == []


def test_a_preview_before_the_build_shows_the_pictures_inline(site_copy: Path) -> None:
    """The desk previews a mail whose resized copies no build has made yet: the site's own
    pictures become data: URLs of the same copies; other pictures stay as they are."""
    photo(site_copy / "static" / "images" / "foto.jpg", 1200, 600)
    with_body_line(
        site_copy,
        "![Ein Foto aus der Werkstatt](/images/foto.jpg)\n\n![Fehlt](/images/fehlt.png)\n\n"
        "![Anderswo](https://example.org/bild.png)",
    )
    config = load_config(site_copy / "comms.toml")
    site, _ = read_site(config)
    html = render_issue(config, site, site.issues[ISSUE]).html
    shown = images.inline_images(config, html)
    [tag] = [t for t in img_tags(shown) if 'alt="Ein Foto aus der Werkstatt"' in t]
    found = re.search(r'src="data:image/jpeg;base64,([^"]+)"', tag)
    assert found is not None and "srcset" not in tag
    with Image.open(io.BytesIO(base64.b64decode(found.group(1)))) as image:
        assert image.size == (1104, 552)  # the mail's own copy, made from the upload
    # A missing file and another host's picture are left to the browser.
    assert [t for t in img_tags(shown) if "Fehlt" in t] == [
        t for t in img_tags(html) if "Fehlt" in t
    ]
    assert 'src="https://example.org/bild.png"' in shown


def _sized_paths(config: Config, site: Site) -> list[str]:
    return sorted(images.sized_files(Build(config, site, ScratchState(site.issues))))


def test_image_sizes_are_kept_by_stamp_and_a_replaced_file_is_measured_again(
    site_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = photo(site_copy / "static" / "images" / "foto.jpg", 1200, 600)
    config = load_config(site_copy / "comms.toml")
    site, _ = read_site(config)
    # A file written just now has a stamp its next change may keep: it is measured again.
    first = _sized_paths(config, site)
    assert "_sized/images/foto-1104w.jpg" in first
    with monkeypatch.context() as patch:
        patch.setattr(images, "image_size", lambda path: pytest.fail("measured again"))
        with pytest.raises(pytest.fail.Exception):
            _sized_paths(config, site)
    # Files that changed long before the build are kept by their stamp: none is opened.
    monkeypatch.setattr(images, "SETTLE", -3600 * 1_000_000_000)
    assert _sized_paths(config, site) == first
    with monkeypatch.context() as patch:
        patch.setattr(images, "image_size", lambda path: pytest.fail("measured again"))
        assert _sized_paths(config, site) == first
    # Replaced by a narrower picture with the old mtime (`touch -r`): its ctime tells.
    before = source.stat()
    photo(source, 1000, 600)
    os.utime(source, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert "_sized/images/foto-1104w.jpg" not in _sized_paths(config, site)
