"""A wide editorial photo in a real browser: the preview's e-mail and the delivered mail fit 600
and 375 px without horizontal scrolling, and the photo loads from its resized copies."""

from __future__ import annotations

import threading
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from playwright.sync_api import Browser, Route
from werkzeug.serving import make_server

from comms.core.config import load_config
from comms.web.preview import Preview

from .conftest import copy_sample
from .ledgerkit import run_cli
from .smtp_servers import Handler, smtp_server
from .test_browser import SITE_HOST, browser
from .test_images import photo, with_body_line

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("chromium")]
__all__ = ["browser"]  # the shared chromium fixture

ISSUE = "2019-11-newsletter"
ALT = "Gruppenfoto der Werkstatt vor dem Rathaus"


def sample_with_photo(folder: Path) -> Path:
    """The sample site whose issue ISSUE opens with a 1,200 × 600 px photo."""
    root = copy_sample(folder)
    photo(root / "static" / "images" / "werkstatt.jpg", 1200, 600)
    with_body_line(root, f"![{ALT}](/images/werkstatt.jpg)", ISSUE)
    return root


def assert_fits(
    browser: Browser, width: int, *, url: str = "", html: str = "", output: Path | None = None
) -> int:
    """Open `url` (or the mail `html`) at `width` px: no horizontal scrolling, the photo loaded
    and no wider than the column; returns the photo's natural width (which copy was loaded).
    Requests to the site's host are answered from the built folder `output`, if given."""
    page = browser.new_page(viewport={"width": width, "height": 900})

    def route(route: Route) -> None:
        parts = urlsplit(route.request.url)
        if parts.hostname == "127.0.0.1":
            route.continue_()
            return
        file = output / unquote(parts.path).lstrip("/") if output is not None else None
        if parts.hostname == SITE_HOST and file is not None and file.is_file():
            route.fulfill(status=200, body=file.read_bytes(), content_type="image/jpeg")
        else:
            route.fulfill(status=404, body="")

    page.route("**/*", route)
    if url:
        page.goto(url)
    else:
        page.set_content(html)
    img = page.locator(f"img[alt='{ALT}']")
    img.scroll_into_view_if_needed()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=img.element_handle())
    scroll = page.evaluate("document.documentElement.scrollWidth")
    assert scroll <= width, f"horizontal scrolling at {width} px: {scroll}"
    box = img.bounding_box()
    assert box is not None and box["width"] <= min(width, 600) - 2 * 24
    natural: int = img.evaluate("img => img.naturalWidth")
    page.close()
    return natural


def test_the_preview_e_mail_fits_with_a_wide_photo(browser: Browser, tmp_path: Path) -> None:
    root = sample_with_photo(tmp_path)
    with Preview(load_config(root / "comms.toml")) as preview:
        httpd = make_server("127.0.0.1", 0, preview.app, threaded=True)
        thread = threading.Thread(target=httpd.serve_forever, daemon=True)
        thread.start()
        try:
            url = f"http://127.0.0.1:{httpd.server_port}/_preview/{ISSUE}/email.html"
            for width in (600, 375):
                # A screen of density 1 takes the 1× copy from the preview's own build.
                assert assert_fits(browser, width, url=url) == 552
        finally:
            httpd.shutdown()


@pytest.mark.database
@pytest.mark.usefixtures("without_approval")
def test_the_delivered_mail_fits_with_a_wide_photo(browser: Browser, tmp_path: Path) -> None:
    root = sample_with_photo(tmp_path)
    (root / "people.csv").write_text("email\nanna@example.org\n", encoding="utf-8")
    code, _, err = run_cli(
        root, "subscribers", "import", str(root / "people.csv"), "--confirmed",
        "--consent-note", "Testliste",
    )  # fmt: skip
    assert code == 0, err
    handler = Handler()
    with smtp_server(handler) as port:
        code, _, err = run_cli(
            root, "send", ISSUE, "--now", "--yes", "--transport", f"smtp://127.0.0.1:{port}"
        )
    assert code == 0, err
    [received] = handler.received
    message = message_from_bytes(received.data, policy=policy.default)
    assert isinstance(message, EmailMessage)
    part = message.get_body(("html",))
    assert part is not None
    # The send published the site first: the copies the mail loads are on the site.
    output = root / "public"
    assert (output / "_sized/images/werkstatt-1104w.jpg").is_file()
    for width in (600, 375):
        assert assert_fits(browser, width, html=part.get_content(), output=output) == 552
