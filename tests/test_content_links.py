"""Link and image checks: each case in tests/bad_content/ gives its exact message and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from comms.content.site import read_site
from comms.core.config import load_config
from comms.publish.gate import issue_problems, site_problems
from comms.publish.link_check import LinkChecker, Reference

from .conftest import BAD, ROOT

LINK_EXPECTED = {
    "events/every-error-at-once.md": [
        # A file with field errors still gets its links checked in the same run.
        "events/every-error-at-once.md:13: image file not found: static/images/graffiti.jpg "
        "(from '/images/graffiti.jpg')",
    ],
    "practices/body-image-without-alt.md": [
        "practices/body-image-without-alt.md:11: image file not found: static/images/film.jpg "
        "(from '/images/film.jpg')",
    ],
    "practices/link-bad-address.md": [
        "practices/link-bad-address.md:8: malformed e-mail address 'u.meyer@example': The part "
        "after the @-sign is not valid. It should have a period.",
        "practices/link-bad-address.md:10: mailto link with 'cc': mail clients handle only "
        "'subject' and 'body' alike",
    ],
    "practices/link-bad-scheme.md": [
        "practices/link-bad-scheme.md:8: malformed URL 'htps://example.org/anmeldung': unknown "
        "scheme 'htps:'; did you mean 'https:'?",
    ],
    "practices/link-dead-internal.md": [
        "practices/link-dead-internal.md:8: link to a page the build does not produce: "
        "'/events/gibtsnicht/'",
        "practices/link-dead-internal.md:9: link to a page the build does not produce: "
        "'https://newsletter.example.org/practices/auch-nicht/'",
        # /unsubscribe/ needs a token; /subscribe (line 11 too) is served by `comms serve`.
        "practices/link-dead-internal.md:11: link to a page the build does not produce: "
        "'/unsubscribe/'",
    ],
    "practices/link-front-matter.md": [
        "practices/link-front-matter.md:7: link to a page the build does not produce: "
        "'https://newsletter.example.org/gibtsnicht/'",
    ],
    "practices/link-missing-image.md": [
        "practices/link-missing-image.md:8: image file not found: static/images/auch-weg.jpg "
        "(from '/images/auch-weg.jpg')",
        "practices/link-missing-image.md:13: image file not found: static/images/fehlt.jpg "
        "(from '/images/fehlt.jpg')",
    ],
    "practices/link-relative.md": [
        "practices/link-relative.md:8: relative URL 'www.example.org/seite' breaks in e-mails: "
        "write https://www.example.org/seite",
    ],
    # images.example.net (line 10) is in render.embed_hosts of tests/bad_content/comms.toml.
    "practices/link-third-party-image.md": [
        "practices/link-third-party-image.md:8: 'https://tracker.example.com/p.gif' is loaded "
        "from tracker.example.com: a third party would see every reader; copy the file into "
        "static/ or add the host to render.embed_hosts",
    ],
}


def test_every_link_case_has_its_exact_message() -> None:
    config = load_config(BAD / "comms.toml")
    site, _ = read_site(config)
    found = sorted(p.format(BAD) for p in site_problems(config, site))
    assert found == sorted(line for lines in LINK_EXPECTED.values() for line in lines)


def test_sample_content_has_no_link_problems() -> None:
    config = load_config(ROOT / "comms.toml")
    site, _ = read_site(config)
    assert [p for p in site_problems(config, site) if not p.warning] == []


@pytest.mark.parametrize(
    ("url", "embedded", "message"),
    [
        ("https://example.org/x", False, None),
        ("#anker", False, None),
        ("mailto:info@example.org?subject=Hallo&body=Text", False, None),
        ("mailto:?subject=x", False, "'mailto:?subject=x' has no address"),
        (
            "https:/example.org",
            False,
            "malformed URL 'https:/example.org': expected https://host/path",
        ),
        ("http://localhost:8000/", False, None),
        (
            "//cdn.example.com/x.png",
            True,
            "'//cdn.example.com/x.png' has no scheme: write https://cdn.example.com/x.png",
        ),
        (
            "ftp://example.org/x",
            False,
            "malformed URL 'ftp://example.org/x': unknown scheme 'ftp:' "
            "(use https:, http: or mailto:)",
        ),
        (
            "bilder/x.jpg",
            True,
            "relative URL 'bilder/x.jpg' breaks in e-mails: write /bilder/x.jpg",
        ),
        ("/events/", False, None),
        ("/events", False, None),
        ("/feed.xml", False, None),
        ("/confirm/abc", False, None),
    ],
)
def test_single_references(url: str, embedded: bool, message: str | None) -> None:
    config = load_config(ROOT / "comms.toml")
    site, _ = read_site(config)
    assert LinkChecker(config, site).check(Reference(url, 1, embedded)) == message


def test_allow_list_is_validated(tmp_path: Path) -> None:
    from comms.core.errors import ConfigError

    (tmp_path / "comms.toml").write_text('[render]\nembed_hosts = ["https://x.org"]\n')
    with pytest.raises(ConfigError, match="embed_hosts"):
        load_config(tmp_path / "comms.toml")


def test_allow_list_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COMMS_RENDER_EMBED_HOSTS", "tracker.example.com, CDN.example.org")
    config = load_config(BAD / "comms.toml")
    assert config.settings.render.embed_hosts == ["tracker.example.com", "cdn.example.org"]
    site, _ = read_site(config)
    problems = [p.format(BAD) for p in site_problems(config, site)]
    assert not any("tracker.example.com" in line for line in problems)


def test_missing_logo_is_an_error_at_its_config_line(site_copy: Path) -> None:
    config_file = site_copy / "comms.toml"
    text = config_file.read_text(encoding="utf-8")
    config_file.write_text(
        text.replace('logo = "images/brand/logo.svg"', 'logo = "images/logo.png"'), encoding="utf-8"
    )
    config = load_config(config_file)
    site, errors = read_site(config)
    line = config_file.read_text(encoding="utf-8").splitlines().index('logo = "images/logo.png"')
    expected = (
        f"comms.toml:{line + 1}: field 'brand.logo': image file not found: "
        "static/images/logo.png (from '/images/logo.png')"
    )
    assert [p.format(site_copy) for p in site_problems(config, site)] == [expected]
    slug = sorted(site.issues)[0]
    assert [p.format(site_copy) for p in issue_problems(config, site, errors, slug)] == [expected]


def test_a_url_used_twice_is_reported_at_both_lines(site_copy: Path) -> None:
    event = site_copy / "content" / "events" / "2020-07-10-follow-up-werkstatt-frauen.md"
    text = event.read_text(encoding="utf-8")
    lines = text.splitlines()
    closing = lines.index("---", 1)
    lines[closing + 1 : closing + 1] = ["[Eins](/gibtsnicht/)", "", "[Zwei](/gibtsnicht/)", ""]
    event.write_text("\n".join(lines) + "\n", encoding="utf-8")
    config = load_config(site_copy / "comms.toml")
    site, _ = read_site(config)
    found = [p.line for p in site_problems(config, site) if p.path == event]
    assert found == [closing + 2, closing + 4]


def test_front_matter_links_in_block_and_flow_style_but_not_in_text() -> None:
    from comms.publish.link_check import _front_references

    front = (
        "registration: https://x.org/a#b\n"
        "image: {src: /images/a.jpg, alt: 'A, b'}\n"
        "image:\n"
        '  src: "/images/b.jpg"\n'
        "winners:\n"
        "  - name: A\n"
        "    url: https://w.org/\n"
        "  - {name: B, url: 'https://v.org/'}\n"
        "# url: https://auskommentiert.org\n"
        "summary: 'Text mit url: nix'\n"
    )
    assert list(_front_references(front, 2)) == [
        Reference("https://x.org/a#b", 2, False, front=True),
        Reference("/images/a.jpg", 3, True, front=True),
        Reference("/images/b.jpg", 5, True, front=True),
        Reference("https://w.org/", 8, False, front=True),
        Reference("https://v.org/", 9, False, front=True),
    ]
