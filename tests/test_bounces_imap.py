"""The bounce mailbox over IMAP: a real Dovecot holding the DSN corpus, and the full loop.

send → the relay (aiosmtpd) accepts → a DSN to the VERP address lands in the mailbox →
`comms bounces fetch` → the person is bounced → the next issue skips them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from email import message_from_bytes
from pathlib import Path

import pytest

from . import dovecot
from .conftest import ROOT
from .ledgerkit import run_cli
from .smtp_servers import Handler, smtp_server
from .test_send import import_people

pytestmark = [
    pytest.mark.database,
    pytest.mark.slow,
    pytest.mark.skipif(not dovecot.available(), reason="dovecot-imapd is not installed"),
]

CORPUS = ROOT / "tests" / "bounces"
PEOPLE = "email,name\nanna@example.org,Anna\nbernd@example.org,Bernd\n"


@pytest.fixture(scope="module")
def server() -> Iterator[dovecot.Dovecot]:
    """One Dovecot for the module; each test uses its own folder."""
    yield from dovecot.running()


def imap_site(site: Path, server: dovecot.Dovecot, folder: str) -> dict[str, str]:
    """Point the site's config at `folder` on the test server; the environment for the CLI."""
    with (site / "comms.toml").open("a", encoding="utf-8") as toml:
        toml.write(f'\n[bounces]\nmailbox = "{server.url(folder)}"\nca_file = "{server.ca_file}"\n')
    return {"COMMS_BOUNCES_PASSWORD": dovecot.PASSWORD}


def test_the_corpus_is_read_over_imap_and_moved_to_processed(
    site_copy: Path, server: dovecot.Dovecot
) -> None:
    names = sorted(p.name for p in CORPUS.glob("*.eml"))
    server.imap_create("corpus")
    server.append(*((CORPUS / n).read_bytes() for n in names), folder="corpus")
    env = imap_site(site_copy, server, "corpus")
    code, out, err = run_cli(site_copy, "bounces", "fetch", env=env)
    assert code == 0, err
    # The placeholder VERP address names no delivery: everything is read, nothing changes.
    assert f"{len(names)} message(s) read" in out
    assert server.count("corpus") == 0 and server.count("Processed") >= len(names)


def test_certificates_are_verified_and_errors_exit_1(
    site_copy: Path, server: dovecot.Dovecot
) -> None:
    env = {"COMMS_BOUNCES_PASSWORD": dovecot.PASSWORD}
    url = server.url("INBOX")
    code, _, err = run_cli(site_copy, "bounces", "fetch", "--mailbox", url, env=env)
    assert code == 1 and "CERTIFICATE_VERIFY_FAILED" in err  # no private CA configured
    env_ca = imap_site(site_copy, server, "INBOX") | {"COMMS_BOUNCES_PASSWORD": "wrong"}
    code, _, err = run_cli(site_copy, "bounces", "fetch", env=env_ca)
    assert code == 1 and "mailbox imaps://" in err
    code, _, err = run_cli(site_copy, "bounces", "fetch", env={})
    assert code == 1 and "COMMS_BOUNCES_PASSWORD is not set" in err


@pytest.mark.usefixtures("without_approval")
def test_full_loop_send_bounce_fetch_suppress_skip(
    site_copy: Path, server: dovecot.Dovecot
) -> None:
    import_people(site_copy, "people.csv", PEOPLE)
    env = imap_site(site_copy, server, "loop")
    server.imap_create("loop")
    handler = Handler()
    with smtp_server(handler) as port:
        relay = f"smtp://127.0.0.1:{port}"
        code, out, err = run_cli(site_copy, "send", "2019-11-newsletter", "--transport", relay)
        assert code == 0, out + err
        envelope = {r.rcpt_tos[0]: r.mail_from for r in handler.received}
        # A plain `comms send` already uses VERP: one signed address per delivery.
        assert all(
            e.startswith("bounces+") and e.endswith("@example.org") for e in envelope.values()
        )
        assert len(set(envelope.values())) == 2

        # Reports to the plain bounce address (no VERP) about Bernd: one quoting the Message-ID
        # computed the old way from his link's uid, one quoting Anna's real one. Neither acts.
        ids = {r.rcpt_tos[0]: message_from_bytes(r.data)["Message-ID"] for r in handler.received}
        code, out, _ = run_cli(site_copy, "subscribers", "show", "bernd@example.org", "--json")
        uid = json.loads(out)["uid"]
        digest = hashlib.blake2b(f"2019-11-newsletter/{uid}".encode(), digest_size=12).hexdigest()
        old_way = f"<2019-11-newsletter.{digest}@newsletter.example.org>"
        for n, quoted in enumerate((old_way, ids["anna@example.org"])):
            forged = (CORPUS / "postfix-hard.eml").read_bytes()
            forged = forged.replace(b"bounces+VERP@example.org", b"bounces@example.org")
            forged = forged.replace(b"kijitora@example.org", b"bernd@example.org")
            forged = forged.replace(b"000@p351355", f"{n}@p351355".encode())
            returned = b"Content-Type: message/rfc822\n\n"
            forged = forged.replace(returned, returned + f"Message-ID: {quoted}\n".encode())
            server.append(forged, folder="loop")
        code, out, err = run_cli(site_copy, "bounces", "fetch", env=env)
        assert (code, out.split(": ")[-1]) == (0, "2 unknown\n"), err
        code, out, _ = run_cli(site_copy, "subscribers", "show", "bernd@example.org", "--json")
        assert json.loads(out)["status"] == "active"

        # The recipient's server refuses later; the relay's DSN goes to the VERP address.
        dsn = (CORPUS / "postfix-hard.eml").read_bytes()
        dsn = dsn.replace(b"bounces+VERP@example.org", envelope["anna@example.org"].encode())
        dsn = dsn.replace(b"kijitora@example.org", b"anna@example.org")
        server.append(dsn, folder="loop")
        code, out, err = run_cli(site_copy, "bounces", "fetch", env=env)
        assert code == 0, err
        assert "1 suppressed" in out

        code, out, _ = run_cli(site_copy, "subscribers", "show", "anna@example.org", "--json")
        anna = json.loads(out)
        assert anna["status"] == "bounced"
        assert anna["consent"][-1]["note"].startswith("hard bounce 5.1.1: ")
        code, out, _ = run_cli(site_copy, "status", "2019-11-newsletter", "--json")
        assert json.loads(out)["bounces"] == {"hard": 1, "soft": 0, "complaint": 0}

        handler.received.clear()
        code, out, err = run_cli(
            site_copy, "send", "2020-02-newsletter", "--now", "--transport", relay
        )
        assert code == 0, out + err
        assert [r.rcpt_tos[0] for r in handler.received] == ["bernd@example.org"]
