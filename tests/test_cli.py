"""CLI tests through click's runner: exit codes and messages word for word."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from comms.cli import cli
from comms.content.reader import slugify
from comms.core.config import Settings, _section_model

from .conftest import BAD, ROOT
from .test_content_links import LINK_EXPECTED
from .test_reader import EXPECTED


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_check_strict_passes_on_sample_content() -> None:
    code, out, err = run("--config", str(ROOT / "comms.toml"), "check", "--strict")
    assert code == 0, out + err
    assert out == ""
    assert err.startswith("0 error(s), 0 warning(s); valid: ")


def test_check_reports_bad_content_and_exits_1() -> None:
    code, out, err = run("--config", str(BAD / "comms.toml"), "check")
    assert code == 1
    lines = out.splitlines()
    assert "events/empty.md:1: empty file: expected front matter between '---' lines" in lines
    assert all(re.match(r"^[\w/.-]+\.md:\d+: ", line) for line in lines)
    assert "Traceback" not in out + err
    # Issues last: "events/never-closed.md has errors; see above" comes after that file's error.
    closed = lines.index(
        "events/never-closed.md:1: front matter is never closed: add a '---' line after it"
    )
    see_above = next(i for i, line in enumerate(lines) if "has errors; see above" in line)
    assert closed < see_above
    assert all(line.startswith("issues/") for line in lines[see_above - 1 :])
    # The reader's cases and the link cases, each once: one gate, every error in one run.
    cases = [line for lines in [*EXPECTED.values(), *LINK_EXPECTED.values()] for line in lines]
    warnings = sum(1 for line in cases if ": warning: " in line)
    assert err.startswith(f"{len(cases) - warnings} error(s), {warnings} warning(s)")


def test_strict_turns_warnings_into_errors(tmp_path: Path) -> None:
    (tmp_path / "content" / "events").mkdir(parents=True)
    source = BAD / "events" / "unknown-key.md"
    (tmp_path / "content" / "events" / "unknown-key.md").write_bytes(source.read_bytes())
    (tmp_path / "comms.toml").write_text("", encoding="utf-8")
    code, out, _ = run("--config", str(tmp_path / "comms.toml"), "check")
    assert code == 0
    assert out == "content/events/unknown-key.md:9: warning: unknown key 'speaker'\n"
    code, _, _ = run("--config", str(tmp_path / "comms.toml"), "check", "--strict")
    assert code == 1


def test_bad_config_names_the_key(tmp_path: Path) -> None:
    (tmp_path / "comms.toml").write_text('[site]\nbase_url = "ftp://x"\n', encoding="utf-8")
    result = CliRunner().invoke(cli, ["--config", str(tmp_path / "comms.toml"), "check"])
    assert result.exit_code == 1
    assert isinstance(result.exception, Exception)


def test_new_creates_a_file_whose_placeholders_check_reports(site_copy: Path) -> None:
    config = str(site_copy / "comms.toml")
    args = ("--config", config, "new", "event", "Dialog „Wohnen“ in Göttingen")
    code, out, err = run(*args, "--date", "16.05.2020")
    assert code == 0, err
    name = "content/events/2020-05-16-dialog-wohnen-in-goettingen.md"
    assert out == f"created {name}\n"
    text = (site_copy / name).read_text(encoding="utf-8")
    assert 'title: "Dialog „Wohnen“ in Göttingen"' in text
    assert "start: 2020-05-16 10:00\n" in text
    code, out, err = run("--config", config, "check")
    assert code == 1
    assert out.splitlines() == [
        f"{name}:7: placeholder from the archetype not replaced: [[Veranstaltungsort]]",
        f"{name}:8: placeholder from the archetype not replaced: [[Straße Nr., PLZ Ort]]",
        f"{name}:9: placeholder from the archetype not replaced: [[Ort]]",
        f"{name}:19: placeholder from the archetype not replaced: "
        "[[Ein oder zwei Sätze, worum es geht.]]",
        f"{name}:22: placeholder from the archetype not replaced: "
        "[[Beschreibung der Veranstaltung: Programm, Zielgruppe, Anmeldung.]]",
    ]
    # Filled in, the file passes.
    for old, new in (
        ("[[Veranstaltungsort]]", "Rathaus"),
        ("[[Straße Nr., PLZ Ort]]", "Markt 1, 37073 Göttingen"),
        ("[[Ort]]", "Göttingen"),
        ("[[Ein oder zwei Sätze, worum es geht.]]", "Ein Dialog."),
        ("[[Beschreibung der Veranstaltung: Programm, Zielgruppe, Anmeldung.]]", "Programm."),
    ):
        text = text.replace(old, new)
    (site_copy / name).write_text(text, encoding="utf-8")
    code, out, err = run("--config", config, "check", "--strict")
    assert code == 0, out + err
    result = CliRunner().invoke(cli, [*args, "--date", "2020-05-16"])
    assert result.exit_code == 1
    assert "already exists; not overwritten" in str(result.exception)


def test_new_rejects_an_impossible_date(site_copy: Path) -> None:
    config = str(site_copy / "comms.toml")
    result = CliRunner().invoke(
        cli, ["--config", config, "new", "event", "Sommerfest", "--date", "31.04.2020"]
    )
    assert result.exit_code == 1
    assert str(result.exception) == (
        "--date: 31.04.2020: April has 30 days (dates are written YYYY-MM-DD or DD.MM.YYYY)"
    )


def test_new_issue_is_dated_numbered_and_has_send_at_and_award(site_copy: Path) -> None:
    config = str(site_copy / "comms.toml")
    code, out, err = run("--config", config, "new", "issue", "Ausgabe Mai", "--date", "2020-05-04")
    assert code == 0, err
    assert out == "created content/issues/2020-05-newsletter.md\n"
    text = (site_copy / "content" / "issues" / "2020-05-newsletter.md").read_text("utf-8")
    assert "number: 5\n" in text
    assert "send_at: 2020-05-04 09:00\n" in text
    assert "\naward:\n" in text
    # A second issue in the same month gets the day in its name.
    code, out, err = run("--config", config, "new", "issue", "Extra", "--date", "2020-05-20")
    assert out == "created content/issues/2020-05-20-newsletter.md\n"
    second = (site_copy / "content" / "issues" / "2020-05-20-newsletter.md").read_text("utf-8")
    assert "number: 6\n" in second


def test_new_practice_and_award_are_named_by_title(site_copy: Path) -> None:
    config = str(site_copy / "comms.toml")
    assert run("--config", config, "new", "practice", "Garten für alle")[1] == (
        "created content/practices/garten-fuer-alle.md\n"
    )
    assert run("--config", config, "new", "award", "Sonderpreis 2021")[1] == (
        "created content/awards/sonderpreis-2021.md\n"
    )


def test_new_award_follows_the_series_pattern(site_copy: Path) -> None:
    """Named like the sample's awards (sonderpreis-2020.md), so that an issue's `award:
    sonderpreis-2021` finds it instead of "did you mean 'sonderpreis-2020'"."""
    config = str(site_copy / "comms.toml")
    title = "Sonderpreis „Niedersachsen packt an“ 2021"
    code, out, err = run("--config", config, "new", "award", title)
    assert (code, out) == (0, "created content/awards/sonderpreis-2021.md\n"), err
    text = (site_copy / "content" / "awards" / "sonderpreis-2021.md").read_text("utf-8")
    assert "year: 2021\n" in text
    # Another series, its year from the deadline.
    code, out, _ = run(
        "--config", config, "new", "award", "Ehrenamtspreis Weser-Ems", "--date", "2022-03-31"
    )
    assert out == "created content/awards/ehrenamtspreis-weser-ems-2022.md\n"


def test_slugify() -> None:
    assert slugify("Fünf Jahre „Niedersachsen packt an“!") == "fuenf-jahre-niedersachsen-packt-an"
    assert slugify("Straße & Co.") == "strasse-co"


@pytest.mark.database
@pytest.mark.slow
def test_demo_prints_the_summary(site_copy: Path) -> None:
    code, out, err = run("--config", str(site_copy / "comms.toml"), "demo")
    assert code == 0, err
    assert "Check: 0 error(s), 0 warning(s)" in out
    assert (
        "Do., 16. April 2020, 09:30\u00a0Uhr – Schwerpunktkonferenz" in out
        or "16. April 2020" in out
    )
    assert "Next scheduled issue: #3 „Termine 2020" in out
    output = site_copy / "public"
    written = [p for p in output.rglob("*") if p.is_file() and p.name != ".comms-manifest.json"]
    assert f"Output: {output} ({len(written)} files)\n" in out
    assert (output / "feed.xml").is_file() and (output / "events.ics").is_file()
    # Without samples/subscribers.csv (not copied here) the demo sends nothing; it ends with
    # what the scheduler would run as of the reference date.
    assert out.endswith(
        f"Sending: skipped ({site_copy / 'samples' / 'subscribers.csv'} not found)\n"
        "Schedule as of Mi., 15. Januar 2020, 00:00 Uhr (`comms schedule` uses the clock):\n"
        "  Upcoming jobs (Europe/Berlin):\n"
        "    Mi., 15. Januar 2020, 00:05 Uhr  retry pass (every 5 min)\n"
        "    Mi., 15. Januar 2020, 00:15 Uhr  refresh feeds (every 15 min)\n"
        "    Mi., 15. Januar 2020, 02:30 Uhr  housekeeping: purge unconfirmed sign-ups, "
        "reduce ended ones (daily at 02:30)\n"
        "    Di., 4. Februar 2020, 07:00 Uhr  compose digest „Termine in der Region“ "
        "(termine-in-der-region), to send at 10:00 once ready\n"
        "    Di., 4. Februar 2020, 09:00 Uhr  send #3 „Termine 2020: Schwerpunktkonferenz am "
        "16. April und Sonderpreis“ (2020-02-newsletter)\n"
    )
    assert (output / "index.html").is_file()


def _config_keys() -> list[str]:
    keys = []
    for key in Settings.model_fields:
        section = _section_model(key)
        if section is None:
            keys.append(key)
        else:
            keys.extend(f"{key}.{sub}" for sub in section.model_fields)
    return keys


def test_bundled_config_uses_only_known_keys() -> None:
    raw = tomllib.loads((ROOT / "comms.toml").read_text(encoding="utf-8"))
    known = set(_config_keys())
    for key, value in raw.items():
        if isinstance(value, dict) and _section_model(key) is not None:
            assert {f"{key}.{sub}" for sub in value} <= known
        else:
            assert key in known


def test_paths_are_relative_to_the_config_folder_also_via_dotdot_and_symlinks(
    tmp_path: Path,
) -> None:
    (tmp_path / "real" / "events").mkdir(parents=True)
    (tmp_path / "real" / "events" / "empty.md").write_text("", encoding="utf-8")
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "comms.toml").write_text('content_dir = "../real"\n', encoding="utf-8")
    code, out, _ = run("--config", str(tmp_path / "site" / "comms.toml"), "check")
    assert code == 1
    assert (
        out == "../real/events/empty.md:1: empty file: expected front matter between '---' lines\n"
    )
    (tmp_path / "site" / "content").symlink_to(tmp_path / "real")
    (tmp_path / "site" / "comms.toml").write_text('content_dir = "content"\n', encoding="utf-8")
    code, out, _ = run("--config", str(tmp_path / "site" / "comms.toml"), "check")
    assert (
        out == "content/events/empty.md:1: empty file: expected front matter between '---' lines\n"
    )


@pytest.mark.sqlite_only("the check of the port; the database only has to open")
@pytest.mark.slow  # about 2 CPU-s or more (two or more builds of the sample site)
def test_a_port_in_use_is_a_clear_error(site_copy: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        for command in (["serve", "--no-scheduler"], ["preview"]):
            result = CliRunner().invoke(
                cli, ["--config", str(site_copy / "comms.toml"), *command, "--port", port]
            )
            assert result.exit_code == 1
            assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in str(
                result.exception
            )


def test_help_lists_commands_by_section_with_whole_summaries() -> None:
    code, out, _ = run("--help")
    assert code == 0
    titles = [line for line in out.splitlines() if line.endswith(":") and not line[0].isspace()]
    assert titles == [
        "Options:",
        "Editing:",
        "Sending:",
        "Subscribers:",
        "Server:",
        "Trying it out:",
    ]
    listing = out.split("Editing:")[1].splitlines()
    names = [line.split()[0] for line in listing if re.match(r"^  [a-z]", line)]
    assert names == cli.list_commands(click.Context(cli))
    assert sorted(names) == sorted(cli.commands)
    assert names.index("new") < names.index("check") < names.index("send") < names.index("serve")
    assert "..." not in out.split("Options:")[1]
    code, out, _ = run("subscribers", "--help")
    assert "Erase one person (GDPR Art. 17); only a suppression hash stays" in " ".join(out.split())
    assert "..." not in out.split("Options:")[1]


def test_check_writes_nothing(site_copy: Path) -> None:
    # The link check builds the site in memory; it must not record feed history (that would
    # mark every item as first seen at check time) nor any other state in var/. Caches of
    # what it read (var/cache/, safe to delete) are all it may leave.
    before = sorted(p.relative_to(site_copy) for p in site_copy.rglob("*"))
    code, _, err = run("--config", str(site_copy / "comms.toml"), "check")
    assert code == 0, err
    cache = Path("var") / "cache"
    after = [p.relative_to(site_copy) for p in site_copy.rglob("*")]
    assert (
        sorted(p for p in after if p not in (Path("var"), cache) and cache not in p.parents)
        == before
    )


def test_list_shows_slugs_status_dates_and_problems(site_copy: Path) -> None:
    config = str(site_copy / "comms.toml")
    code, out, err = run("--config", config, "list", "award")
    assert code == 0, err
    assert out.splitlines() == [
        "awards (3)",
        "  sonderpreis-2020    2020-07-31        ok  Sonderpreis „Niedersachsen packt an“ 2020",
        "  sonderpreis-2019    2019-07-31        ok  Sonderpreis „Niedersachsen packt an“ 2019",
        "  sonderpreis-2018    2018-07-31        ok  Sonderpreis „Niedersachsen packt an“ 2018",
    ]
    # A file with errors is listed too, with its count; the issue naming it counts its own.
    broken = site_copy / "content" / "awards" / "sonderpreis-2021.md"
    broken.write_text("---\ntitle: Sonderpreis 2021\nyear: zwanzig\n---\n", encoding="utf-8")
    code, out, err = run("--config", config, "list", "--json")
    assert code == 0, err
    items = {(item["kind"], item["slug"]): item for item in json.loads(out)}
    assert items[("award", "sonderpreis-2021")] == {
        "kind": "award",
        "slug": "sonderpreis-2021",
        "path": "content/awards/sonderpreis-2021.md",
        "title": "",
        "status": "invalid",
        "dates": {},
        "errors": 4,
        "warnings": 0,
        "translations": [],
    }
    assert items[("issue", "2020-02-newsletter")] | {"title": ""} == {
        "kind": "issue",
        "slug": "2020-02-newsletter",
        "path": "content/issues/2020-02-newsletter.md",
        "title": "",
        "status": "ready",
        "dates": {
            "date": "2020-02-04",
            "send_at": "2020-02-04T09:00+01:00",
            "published": "2020-02-04",
        },
        "errors": 0,
        "warnings": 0,
        "translations": ["de-x-ls"],
    }
    assert (
        len(items) == 23 + 4 + 7 + 4 + 1
    )  # events, awards (one broken), practices, issues, digest
    assert items[("digest", "termine-in-der-region")]["errors"] == 0
