"""Bounce commands: `comms bounces fetch` reads the bounce mailbox and acts on what came back."""

from __future__ import annotations

import click

from comms.core.errors import CommsError

from .common import State, _open_store, cli


@cli.group()
def bounces() -> None:
    """Bounces and complaints that come back as mail."""


@bounces.command()
@click.option(
    "--mailbox",
    "url",
    metavar="URL",
    help="imaps://USER@HOST[:PORT]/FOLDER (password in COMMS_BOUNCES_PASSWORD) or "
    "maildir:///PATH; default: bounces.mailbox.",
)
@click.pass_obj
def fetch(state: State, url: str | None) -> None:
    """Read the bounce mailbox: suppress hard bounces and complaints, count soft bounces."""
    from comms.bounces.fetch import fetch as fetch_mailbox

    config = state.config()
    store = _open_store(config)
    try:
        summary = fetch_mailbox(config, store, url)
    finally:
        store.close()
    click.echo(summary.line())
    if summary.unreadable:
        raise CommsError(f"{summary.unreadable} message(s) could not be read; they stay in place")
