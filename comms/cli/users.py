"""`comms users`: the accounts of the desk in the browser (add, list, disable, reset)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

from comms.db.status import DESK_ROLES

from .common import State, _open_store, cli

# What a command uses is imported when it runs (see comms.cli.common).
if TYPE_CHECKING:
    from comms.core.config import Config
    from comms.db.desk_accounts import Issued


def _by() -> str:
    """Who acts on the command line, as the audit log names them."""
    from comms.sending.approval import who

    return f"cli:{who()}"


def _show_secrets(config: Config, issued: Issued) -> None:
    from comms.core.credentials import totp_uri

    click.echo(f"password: {issued.password}")
    if issued.totp_secret is not None:
        issuer = config.settings.site.name or "comms"
        click.echo(f"TOTP secret: {issued.totp_secret}")
        click.echo(f"TOTP URI: {totp_uri(issued.totp_secret, issued.account.name, issuer)}")
    click.echo("Shown once: hand them to the person in person, not by e-mail.")


@cli.group()
def users() -> None:
    """Accounts of the desk in the browser (/desk/, `[desk] enabled`): editor, approver, admin.

    Approvers and admins log in with a password and a TOTP code (an authenticator app);
    editors with a password. Every change is written to the desk's audit log.
    """


@users.command("add")
@click.argument("name")
@click.option(
    "--role",
    type=click.Choice(DESK_ROLES),
    default="editor",
    show_default=True,
    help="editor: preview and proofs; approver: also approve; admin: also the audit log.",
)
@click.option("--email", default="", help="The account's own address: where its proofs go.")
@click.pass_obj
def users_add(state: State, name: str, role: str, email: str) -> None:
    """Create a desk account NAME; prints its password (and TOTP secret and URI for approvers
    and admins) once. NAME is also the approver's name an approval records."""
    from comms.db.desk_accounts import DeskAccounts
    from comms.db.people import normalise_address

    config = state.config()
    address = normalise_address(email) if email else ""
    store = _open_store(config)
    try:
        accounts = DeskAccounts(store.engine, store.secret)
        issued = accounts.add(name, address, role)
        accounts.audit(_by(), "account-add", issued.account.name, detail=role)
    finally:
        store.close()
    click.echo(f"added {issued.account.name} ({role})")
    _show_secrets(config, issued)


@users.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON.")
@click.pass_obj
def users_list(state: State, as_json: bool) -> None:
    """List the desk accounts: name, role, address, second factor, disabled or locked."""
    from comms.db.desk_accounts import DeskAccounts

    config = state.config()
    store = _open_store(config)
    try:
        found = DeskAccounts(store.engine, store.secret).accounts()
    finally:
        store.close()
    if as_json:
        rows = [
            {
                "name": a.name,
                "role": a.role,
                "email": a.email,
                "two_factor": a.two_factor,
                "disabled": a.disabled,
                "locked_until": a.locked_until.isoformat() if a.locked_until else None,
            }
            for a in found
        ]
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    if not found:
        click.echo("no desk accounts (comms users add NAME)")
    for a in found:
        flags = [a.role, "TOTP" if a.two_factor else "password only"]
        flags += ["disabled"] if a.disabled else []
        flags += [f"locked until {a.locked_until:%Y-%m-%d %H:%M} UTC"] if a.locked_until else []
        click.echo(f"{a.name} <{a.email or '-'}>: {', '.join(flags)}")


@users.command("disable")
@click.argument("name")
@click.pass_obj
def users_disable(state: State, name: str) -> None:
    """Disable the desk account NAME: it cannot log in and its logins end now."""
    from comms.db.desk_accounts import DeskAccounts

    config = state.config()
    store = _open_store(config)
    try:
        accounts = DeskAccounts(store.engine, store.secret)
        account = accounts.disable(name)
        accounts.audit(_by(), "account-disable", account.name)
    finally:
        store.close()
    click.echo(f"disabled {account.name}")


@users.command("reset")
@click.argument("name")
@click.pass_obj
def users_reset(state: State, name: str) -> None:
    """Give the desk account NAME a new password (and a new TOTP secret where its role needs
    one), printed once; enables and unlocks it and ends its logins."""
    from comms.db.desk_accounts import DeskAccounts

    config = state.config()
    store = _open_store(config)
    try:
        accounts = DeskAccounts(store.engine, store.secret)
        issued = accounts.reset(name)
        accounts.audit(_by(), "account-reset", issued.account.name)
    finally:
        store.close()
    click.echo(f"reset {issued.account.name} ({issued.account.role})")
    _show_secrets(config, issued)
