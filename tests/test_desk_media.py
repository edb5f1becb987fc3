"""The desk's media pages over real HTTP with the real app and a real git repository: image
upload (checked by content, scaled, without EXIF/GPS, never overwriting unless chosen,
committed by the account) and translations side by side with their original."""

from __future__ import annotations

import html
import io
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from PIL import Image

from comms.content.translation_files import digest
from comms.publish.images import MAX_SIDE

from .deskkit import SECRET, DeskSite, csrf, fetch, open_desk
from .ledgerkit import run_cli
from .test_desk_web import log_in

# Every test logs in (an argon2 check costs a fair part of a second by design) and reads the
# sample site.
pytestmark = [
    pytest.mark.slow,
    pytest.mark.sqlite_only("pages over the desk's services; the storage has its own tests"),
]

EVENT = "2019-06-03-werkstatt-frauen"
VERSION_RE = re.compile(r'name="version" value="([0-9a-f]*)"')
ORIGINAL_RE = re.compile(r'name="original" value="([0-9a-f]{16})"')
#: GPS latitude and longitude of the Maschpark in Hanover, as a camera writes them.
GPS = {1: "N", 2: (52.0, 22.0, 5.0), 3: "E", 4: (9.0, 44.0, 20.0)}


@pytest.fixture
def desk_site(site_copy: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[DeskSite]:
    monkeypatch.setenv("COMMS_SECRET_KEY", SECRET)
    _git(site_copy, "init", "--quiet")
    _git(site_copy, "add", "content", "static")
    _git(site_copy, "commit", "--quiet", "-m", "Start")
    with open_desk(site_copy) as site:
        yield site


def _git(root: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(root), "-c", "user.name=Setup", "-c", "user.email=setup@example.org",
         *args],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return done.stdout


def _photo(width: int, height: int, fmt: str = "JPEG", gps: bool = False) -> bytes:
    """A real image file made with Pillow; with `gps`, EXIF with the camera and where it was."""
    image = Image.new("RGB", (width, height), (30, 120, 90))
    for x in range(0, width, 50):  # some detail, so the encoder has work to do
        image.paste((200, 180, 40), (x, 0, x + 10, height))
    exif = Image.Exif()
    if gps:
        exif[0x010F] = "Kamera GmbH"
        exif[0x0132] = "2019:06:03 10:15:00"
        exif[0x8825] = GPS
    out = io.BytesIO()
    image.save(out, fmt, exif=exif.tobytes() if gps else b"")
    return out.getvalue()


def _upload(
    browser: requests.Session, base: str, filename: str, data: bytes, **fields: str
) -> requests.Response:
    form = browser.get(f"{base}/desk/images")
    assert form.status_code == 200
    values = {"csrf_token": csrf(form.text), "alt": "Teilnehmerinnen im Gespräch", **fields}
    return browser.post(f"{base}/desk/images", data=values, files={"file": (filename, data)})


def _images(root: Path) -> set[str]:
    return {p.name for p in (root / "static" / "images").iterdir() if p.is_file()}


def test_an_upload_is_scaled_without_gps_and_committed_by_the_account(
    desk_site: DeskSite,
) -> None:
    erika = desk_site.add("Erika", "editor", "erika@example.org")
    browser = log_in(desk_site, erika)
    original = _photo(3600, 2400, gps=True)
    with Image.open(io.BytesIO(original)) as sent:
        assert sent.getexif().get_ifd(0x8825)  # the test file does carry GPS data
    answer = _upload(
        browser, desk_site.base, "Werkstatt Frauen 2019.JPG", original,
        caption="Markt der Möglichkeiten", credit="Geschäftsstelle",
    )  # fmt: skip
    assert answer.status_code == 200, answer.text
    assert "Bild hochgeladen" in answer.text
    stored = desk_site.root / "static" / "images" / "werkstatt-frauen-2019.jpg"
    data = stored.read_bytes()
    with Image.open(stored) as image:
        assert image.format == "JPEG"
        assert image.size == (MAX_SIDE, 1600)
        assert dict(image.getexif()) == {}
        assert image.getexif().get_ifd(0x8825) == {}
    assert b"Exif" not in data and b"Kamera GmbH" not in data
    # The snippets to paste: the Markdown with its alt text, and the `image:` field.
    page = html.unescape(answer.text)
    assert "![Teilnehmerinnen im Gespräch](/images/werkstatt-frauen-2019.jpg)" in page
    assert 'caption: "Markt der Möglichkeiten"' in page and 'credit: "Geschäftsstelle"' in page
    # A commit of this file alone, by the account.
    log = _git(desk_site.root, "log", "-1", "--format=%an <%ae>%n%s", "--name-only")
    assert log.splitlines()[:2] == [
        "Erika <erika@example.org>",
        "Add images/werkstatt-frauen-2019.jpg on the desk",
    ]
    assert "static/images/werkstatt-frauen-2019.jpg" in log
    assert _git(desk_site.root, "status", "--porcelain", "content", "static") == ""
    audit = [row for row in desk_site.audit() if row[1] == "upload-image"]
    assert [row[:3] for row in audit] == [
        ("Erika", "upload-image", "images/werkstatt-frauen-2019.jpg")
    ]


def test_an_uploaded_image_is_added_to_an_item_as_a_commit(desk_site: DeskSite) -> None:
    erika = desk_site.add("Erika", "editor", "erika@example.org")
    browser = log_in(desk_site, erika)
    done = _upload(browser, desk_site.base, "plakat.png", _photo(1200, 800, "PNG"))
    assert done.status_code == 200
    assert '<option value="issue/2020-04-newsletter">' in done.text
    form = {"csrf_token": csrf(done.text), "image": "images/plakat.png"}
    form |= {"alt": "Teilnehmerinnen im Gespräch", "item": "issue/2020-04-newsletter"}
    added = browser.post(f"{desk_site.base}/desk/images/insert", data=form)
    assert added.status_code == 200 and "Gespeichert." in added.text
    issue = desk_site.root / "content" / "issues" / "2020-04-newsletter.md"
    text = issue.read_text("utf-8")
    assert text.endswith("\n\n![Teilnehmerinnen im Gespräch](/images/plakat.png)\n")
    log = _git(desk_site.root, "log", "-1", "--format=%an%n%s")
    assert log.splitlines() == ["Erika", "Edit issues/2020-04-newsletter.md on the desk"]
    # `comms check` finds the image and its alt text: no problem about it.
    _code, out, err = run_cli(desk_site.root, "check")
    assert "plakat" not in out + err
    # Only an uploaded image can be named, and nothing outside the image folder.
    for image in ("images/nothing.png", "../comms.toml", "images/../../comms.toml"):
        refused = browser.post(
            f"{desk_site.base}/desk/images/insert", data={**form, "image": image}
        )
        assert refused.status_code == 400, image
        assert "Ein hochgeladenes Bild" in refused.text
    assert issue.read_text("utf-8") == text


def test_png_webp_and_gif_keep_their_format_and_lose_their_metadata(
    desk_site: DeskSite,
) -> None:
    browser = log_in(desk_site, desk_site.add("Erika", "editor"))
    for fmt, suffix in (("PNG", "png"), ("WEBP", "webp"), ("GIF", "gif")):
        # The name sent says JPEG: the format is judged by the content.
        answer = _upload(browser, desk_site.base, f"bild-{suffix}.jpg", _photo(800, 600, fmt, True))
        assert answer.status_code == 200, answer.text
        with Image.open(desk_site.root / "static" / "images" / f"bild-{suffix}.{suffix}") as image:
            assert image.format == fmt and image.size == (800, 600)
            assert dict(image.getexif()) == {}
        # Narrower than the mail's 2× column: the page says so (GIFs get no copies).
        assert ("erst ab 1104 px scharf" in answer.text) is (fmt != "GIF")


def test_phone_photos_transparency_and_animations_survive(desk_site: DeskSite) -> None:
    browser = log_in(desk_site, desk_site.add("Erika", "editor"))
    folder = desk_site.root / "static" / "images"
    # A phone's JPEG with a second picture in it (MPO) is a JPEG.
    mpo = io.BytesIO()
    first, second = Image.new("RGB", (800, 600), (1, 2, 3)), Image.new("RGB", (800, 600))
    first.save(mpo, "MPO", save_all=True, append_images=[second])
    assert _upload(browser, desk_site.base, "handy.jpg", mpo.getvalue()).status_code == 200
    with Image.open(folder / "handy.jpg") as image:
        assert image.format == "JPEG" and image.size == (800, 600)
    # A palette PNG keeps its transparent colour (kept in metadata, which is dropped).
    logo = Image.new("P", (300, 200), 0)
    logo.putpalette([255, 0, 0, 0, 255, 0] * 128)
    png = io.BytesIO()
    logo.save(png, "PNG", transparency=0)
    assert _upload(browser, desk_site.base, "logo.png", png.getvalue()).status_code == 200
    with Image.open(folder / "logo.png") as image:
        assert image.convert("RGBA").getpixel((0, 0)) == (255, 0, 0, 0)
    # An animated GIF keeps its frames and loses its comment.
    frames = [Image.new("RGB", (200, 100), (40 * i, 0, 0)) for i in range(5)]
    gif = io.BytesIO()
    frames[0].save(
        gif, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0,
        comment=b"Erika's phone, Maschpark",
    )  # fmt: skip
    assert _upload(browser, desk_site.base, "wink.gif", gif.getvalue()).status_code == 200
    with Image.open(folder / "wink.gif") as image:
        assert getattr(image, "n_frames", 1) == 5 and "comment" not in image.info
    assert b"Maschpark" not in (folder / "wink.gif").read_bytes()


def test_what_is_no_image_is_refused(desk_site: DeskSite) -> None:
    browser = log_in(desk_site, desk_site.add("Erika", "editor"))
    before = _images(desk_site.root)
    fake = _upload(browser, desk_site.base, "foto.jpg", b"Dies ist kein Bild.\n" * 20)
    assert fake.status_code == 400
    assert (
        "Dem Inhalt nach ist diese Datei kein Bild im Format JPEG, PNG, WebP oder GIF." in fake.text
    )
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    refused = _upload(browser, desk_site.base, "logo.svg", svg)
    assert refused.status_code == 400
    assert (
        "SVG-Dateien werden nicht angenommen, weil sie Skripte enthalten können."
        in html.unescape(refused.text)
    )
    no_alt = _upload(browser, desk_site.base, "foto.jpg", _photo(600, 400), alt="   ")
    assert no_alt.status_code == 400
    assert "Beschreiben Sie das Bild im Alternativtext: Er ist Pflicht." in no_alt.text
    bomb = io.BytesIO()
    Image.new("1", (9000, 9000)).save(bomb, "PNG")  # small file, 81 million pixels
    too_many = _upload(browser, desk_site.base, "bombe.png", bomb.getvalue())
    assert too_many.status_code == 400
    assert "Das Bild hat 81 Millionen Bildpunkte; höchstens 60 Millionen sind erlaubt." in (
        html.unescape(too_many.text)
    )
    assert _images(desk_site.root) == before
    assert not [row for row in desk_site.audit() if row[1] == "upload-image"]


def test_a_too_large_upload_gets_a_helpful_413(desk_site: DeskSite) -> None:
    browser = log_in(desk_site, desk_site.add("Erika", "editor"))
    before = _images(desk_site.root)
    huge = b"\xff\xd8\xff\xe0" + bytes(21_000_000)
    answer = _upload(browser, desk_site.base, "kamera.jpg", huge)
    assert answer.status_code == 413
    assert "Die Datei ist größer als 20 MB." in html.unescape(answer.text)
    assert "Bild hochladen" in answer.text  # the form again, inside the desk
    assert _images(desk_site.root) == before


def test_an_existing_image_is_replaced_only_when_chosen(desk_site: DeskSite) -> None:
    browser = log_in(desk_site, desk_site.add("Erika", "editor", "erika@example.org"))
    first = _upload(browser, desk_site.base, "a.png", _photo(700, 500, "PNG"), name="Plakat")
    assert first.status_code == 200
    stored = desk_site.root / "static" / "images" / "plakat.png"
    kept = stored.read_bytes()
    again = _upload(browser, desk_site.base, "b.png", _photo(900, 500, "PNG"), name="Plakat")
    assert again.status_code == 409
    assert "Ein Bild namens plakat.png gibt es schon." in again.text
    assert stored.read_bytes() == kept
    # An editor may not swap the bytes behind a name an approved issue may show.
    swapped = _upload(
        browser, desk_site.base, "b.png", _photo(900, 500, "PNG"), name="Plakat", replace="yes"
    )
    assert swapped.status_code == 403 and "Nur wer freigeben darf" in html.unescape(swapped.text)
    assert stored.read_bytes() == kept
    paul = log_in(desk_site, desk_site.add("Paul", "approver", "paul@example.org"))
    replaced = _upload(
        paul, desk_site.base, "b.png", _photo(900, 500, "PNG"), name="Plakat", replace="yes"
    )
    assert replaced.status_code == 200
    with Image.open(stored) as image:
        assert image.size == (900, 500)
    log = _git(desk_site.root, "log", "-2", "--format=%s")
    assert log.splitlines() == [
        "Replace images/plakat.png on the desk",
        "Add images/plakat.png on the desk",
    ]


def test_file_names_cannot_leave_the_image_folder(desk_site: DeskSite) -> None:
    browser = log_in(desk_site, desk_site.add("Erika", "editor"))
    config = (desk_site.root / "comms.toml").read_bytes()
    for name, filename, expected in (
        ("../../comms.toml", "x.png", "comms.png"),
        ("", "..\\..\\Über uns.png", "ueber-uns.png"),
        ("", "/etc/passwd", "passwd.png"),
        ("...", ".png", "bild.png"),
    ):
        answer = _upload(browser, desk_site.base, filename, _photo(300, 200, "PNG"), name=name)
        assert answer.status_code == 200, (name, filename)
        assert (desk_site.root / "static" / "images" / expected).is_file(), expected
    assert (desk_site.root / "comms.toml").read_bytes() == config
    assert sorted(p.name for p in desk_site.root.iterdir() if p.suffix == ".png") == []


def test_the_upload_needs_a_login_and_the_form_token(desk_site: DeskSite) -> None:
    files = {"file": ("x.png", _photo(300, 200, "PNG"))}
    anonymous = fetch(
        "POST", f"{desk_site.base}/desk/images", data={"alt": "x"}, files=files,
        allow_redirects=False,
    )  # fmt: skip
    assert anonymous.status_code == 303 and anonymous.headers["Location"] == "/desk/login"
    assert fetch("GET", f"{desk_site.base}/desk/images", allow_redirects=False).status_code == 303
    browser = log_in(desk_site, desk_site.add("Erika", "editor"))
    forged = browser.post(f"{desk_site.base}/desk/images", data={"alt": "x"}, files=files)
    assert forged.status_code == 400
    assert not (desk_site.root / "static" / "images" / "x.png").exists()


def _sides(browser: requests.Session, base: str, path: str) -> tuple[str, str, str, str]:
    page = browser.get(f"{base}/desk/translate/{path}")
    assert page.status_code == 200, page.text
    version, original = VERSION_RE.search(page.text), ORIGINAL_RE.search(page.text)
    assert version is not None and original is not None
    return page.text, csrf(page.text), version.group(1), original.group(1)


def test_a_translation_beside_its_original_is_saved_and_committed(desk_site: DeskSite) -> None:
    erika = desk_site.add("Erika", "editor", "erika@example.org")
    browser = log_in(desk_site, erika)
    listing = browser.get(f"{desk_site.base}/desk/translations")
    assert listing.status_code == 200
    assert f"/desk/translate/event/{EVENT}/en" in listing.text
    text, token, version, shown = _sides(browser, desk_site.base, f"event/{EVENT}/en")
    page = html.unescape(text)
    # Side by side: the original's wording (German) and the translation's (English).
    assert "Die sechste landesweite Integrationskonferenz fragt" in page
    assert "The sixth state-wide integration conference asks" in page
    assert "Geflüchtete und zugewanderte Frauen" in page
    assert "Refugee and immigrant women" in page
    assert "original_digest" not in page  # the page records it, not the translator
    assert 'name="follows" value="yes" checked' in text
    path = desk_site.root / "content" / "events" / f"{EVENT}.en.md"
    before = path.read_text("utf-8")
    fields = before.split("---\n")[1].replace(f"original_digest: {shown}\n", "")
    body = before.split("---\n", 2)[2].replace("Eight workshop forums", "Eight forums")
    saved = browser.post(
        f"{desk_site.base}/desk/translate/event/{EVENT}/en",
        data={"csrf_token": token, "version": version, "original": shown, "follows": "yes",
              "fields": fields.replace("\n", "\r\n"), "body": body.replace("\n", "\r\n")},
    )  # fmt: skip
    assert saved.status_code == 200 and "Gespeichert." in saved.text
    assert path.read_text("utf-8") == before.replace("Eight workshop forums", "Eight forums")
    log = _git(desk_site.root, "log", "-1", "--format=%an <%ae>%n%s")
    assert log.splitlines() == [
        "Erika <erika@example.org>",
        f"Edit translation events/{EVENT}.en.md on the desk",
    ]
    assert ("Erika", "save-translation", f"event/{EVENT}.en") in [
        row[:3] for row in desk_site.audit()
    ]
    # What the terminal does agrees: the file is current (stamping it changes nothing).
    code, _out, err = run_cli(desk_site.root, "translation", "stamp", str(path))
    assert code == 0, err
    assert _git(desk_site.root, "status", "--porcelain", "content", "static") == ""


def test_a_translation_older_than_its_original_says_so(desk_site: DeskSite) -> None:
    browser = log_in(desk_site, desk_site.add("Erika", "editor"))
    original = desk_site.root / "content" / "events" / f"{EVENT}.md"
    original.write_text(
        original.read_text("utf-8").replace("acht Werkstatt-Foren", "neun Werkstatt-Foren"),
        "utf-8",
    )
    text, token, version, shown = _sides(browser, desk_site.base, f"event/{EVENT}/en")
    assert "Das Original wurde geändert, nachdem diese Übersetzung geschrieben wurde" in text
    assert shown == digest(original)
    assert 'name="follows" value="yes" checked' not in text
    assert "neun Werkstatt-Foren" in html.unescape(text)
    # What changed in the original since the translation was committed, from git.
    changes = re.search(r"<details>.*?<pre[^>]*>(.*?)</pre>", text, re.S)
    assert changes is not None
    lines = html.unescape(changes.group(1)).splitlines()
    removed = [line for line in lines if line.startswith("-")]
    added = [line for line in lines if line.startswith("+")]
    assert len(removed) == len(added) == 2  # the summary and the body's line
    assert all("acht Werkstatt-Foren" in line for line in removed)
    assert all("neun Werkstatt-Foren" in line for line in added)
    path = desk_site.root / "content" / "events" / f"{EVENT}.en.md"
    fields, body = path.read_text("utf-8").split("---\n")[1], "Nine forums.\n"
    form = {"csrf_token": token, "fields": fields, "body": body, "original": shown}
    # Saved without confirming that it follows the original: it stays marked as older.
    kept = browser.post(
        f"{desk_site.base}/desk/translate/event/{EVENT}/en", data={**form, "version": version}
    )
    assert kept.status_code == 200 and "Das Original wurde geändert" in kept.text
    again = VERSION_RE.search(kept.text)
    assert again is not None
    # Confirmed: the digest of the original the page showed is recorded.
    done = browser.post(
        f"{desk_site.base}/desk/translate/event/{EVENT}/en",
        data={**form, "version": again.group(1), "follows": "yes"},
    )
    assert done.status_code == 200 and "Das Original wurde geändert" not in done.text
    assert f"original_digest: {shown}\n" in path.read_text("utf-8")


def test_a_new_translation_is_the_file_the_cli_writes(desk_site: DeskSite) -> None:
    browser = log_in(desk_site, desk_site.add("Erika", "editor"))
    text, token, version, shown = _sides(browser, desk_site.base, "issue/2019-11-newsletter/ar")
    assert version == ""
    assert "Noch gibt es keine Übersetzung." in text
    # What the CLI writes for it, in a second copy of the files.
    path = desk_site.root / "content" / "issues" / "2019-11-newsletter.ar.md"
    code, _out, err = run_cli(
        desk_site.root, "translation", "new", "issue", "2019-11-newsletter", "ar"
    )
    assert code == 0, err
    cli = path.read_text("utf-8")
    path.unlink()
    fields = re.search(r'<textarea id="fields"[^>]*>\n(.*?)</textarea>', text, re.S)
    body = re.search(r'<textarea id="body"[^>]*>\n(.*?)</textarea>', text, re.S)
    assert fields is not None and body is not None
    form = {"csrf_token": token, "original": shown, "follows": "yes", "version": ""}
    form |= {"fields": html.unescape(fields.group(1)), "body": html.unescape(body.group(1))}
    saved = browser.post(f"{desk_site.base}/desk/translate/issue/2019-11-newsletter/ar", data=form)
    assert saved.status_code == 200 and "Gespeichert." in saved.text
    made = path.read_text("utf-8")
    assert sorted(made.splitlines()) == sorted(cli.splitlines())
    # A second page that also started it finds the file made: a conflict, nothing overwritten.
    clash = browser.post(
        f"{desk_site.base}/desk/translate/issue/2019-11-newsletter/ar",
        data={**form, "body": "Anderer Text\n"},
    )
    assert clash.status_code == 409
    assert path.read_text("utf-8") == made
    assert "Anderer Text" in clash.text  # what was typed stays in the form


def test_a_long_translation_in_arabic_script_is_saved(desk_site: DeskSite) -> None:
    browser = log_in(desk_site, desk_site.add("Erika", "editor"))
    text, token, _version, shown = _sides(browser, desk_site.base, f"event/{EVENT}/ar")
    fields = re.search(r'<textarea id="fields"[^>]*>\n(.*?)</textarea>', text, re.S)
    assert fields is not None
    # 15,000 characters in Arabic script: about 90 KB as a form, more than a form elsewhere.
    paragraph = "ورشة عمل للنساء في هانوفر " * 20
    body = "\n\n".join([paragraph.strip()] * 30) + "\n"
    assert len(body) > 15_000
    form = {"csrf_token": token, "version": "", "original": shown, "follows": "yes"}
    form |= {"fields": html.unescape(fields.group(1)), "body": body}
    saved = browser.post(f"{desk_site.base}/desk/translate/event/{EVENT}/ar", data=form)
    assert saved.status_code == 200 and "Gespeichert." in saved.text
    path = desk_site.root / "content" / "events" / f"{EVENT}.ar.md"
    assert path.read_text("utf-8").endswith(body)


def test_a_translation_changed_since_loading_is_never_overwritten(desk_site: DeskSite) -> None:
    browser = log_in(desk_site, desk_site.add("Erika", "editor"))
    _text, token, version, shown = _sides(browser, desk_site.base, f"event/{EVENT}/en")
    path = desk_site.root / "content" / "events" / f"{EVENT}.en.md"
    broken = browser.post(
        f"{desk_site.base}/desk/translate/event/{EVENT}/en",
        data={"csrf_token": token, "version": version, "original": shown,
              "fields": "title: Mine\n---\nsummary: x\n", "body": "My text.\n"},
    )  # fmt: skip
    assert broken.status_code == 409 and "must not contain a line &#39;---&#39;" in broken.text
    path.write_text(path.read_text("utf-8") + "\nA line from the terminal.\n", "utf-8")
    changed = path.read_text("utf-8")
    answer = browser.post(
        f"{desk_site.base}/desk/translate/event/{EVENT}/en",
        data={"csrf_token": token, "version": version, "original": shown, "follows": "yes",
              "fields": "title: Mine\n", "body": "My text.\n"},
    )  # fmt: skip
    assert answer.status_code == 409
    assert "was changed by someone else" in answer.text
    assert path.read_text("utf-8") == changed


def test_unknown_items_and_languages_are_not_found(desk_site: DeskSite) -> None:
    browser = log_in(desk_site, desk_site.add("Erika", "editor"))
    for path in (f"event/{EVENT}/de", f"event/{EVENT}/fr", "event/nothing/en", f"issue/{EVENT}/en"):
        assert browser.get(f"{desk_site.base}/desk/translate/{path}").status_code == 404, path
    assert (
        fetch("GET", f"{desk_site.base}/desk/translations", allow_redirects=False).status_code
        == 303
    )
