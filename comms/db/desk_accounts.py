"""The desk's accounts in the database: roles, password and TOTP checks with lockout, logins
(sessions) shared by every `comms serve`, and the audit log of what each account did."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from comms.core.clock import now_utc
from comms.core.credentials import (
    hash_password,
    new_password,
    new_totp_secret,
    open_totp,
    password_matches,
    seal_totp,
    totp_step,
)
from comms.core.errors import CommsError
from comms.db.engine import read_only
from comms.db.status import DESK_ROLES
from comms.db.tables import desk_accounts, desk_audit, desk_sessions

#: Roles that must log in with a TOTP code besides the password.
SECOND_FACTOR_ROLES = frozenset({"approver", "admin"})


@dataclass(frozen=True)
class Account:
    """A desk account as the pages see it (no secrets)."""

    id: int
    name: str
    email: str
    role: str
    disabled: bool
    two_factor: bool
    locked_until: datetime | None

    def may(self, role: str) -> bool:
        """Whether the account holds `role` or one above it (editor < approver < admin)."""
        return DESK_ROLES.index(self.role) >= DESK_ROLES.index(role)


@dataclass(frozen=True)
class Issued:
    """A new or reset account's secrets, shown once."""

    account: Account
    password: str
    #: None for an editor (no second factor).
    totp_secret: str | None


@dataclass(frozen=True)
class Login:
    """A login (session) and its account."""

    account: Account
    #: False while the TOTP code is still due.
    complete: bool
    csrf: str


@dataclass(frozen=True)
class AuditEntry:
    """One action on the desk."""

    at: datetime
    account: str
    action: str
    subject: str
    version: str | None
    detail: str


def _session_id(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _account(row: sa.Row[tuple[object, ...]]) -> Account:
    m = row._mapping
    return Account(
        m["id"],
        m["name"],
        m["email"],
        m["role"],
        bool(m["disabled"]),
        m["totp_secret"] is not None,
        m["locked_until"],
    )


def _clean(name: str) -> str:
    return " ".join(name.split())


class DeskAccounts:
    """Accounts, logins and the audit log; used as `DeskAccounts(store.engine, store.secret)`
    (the secret key seals the TOTP secrets)."""

    def __init__(self, engine: Engine, secret_key: str) -> None:
        self.engine = engine
        self._key = secret_key

    def _sealed(self, totp_secret: str | None) -> str | None:
        return None if totp_secret is None else seal_totp(self._key, totp_secret)

    # Accounts (comms users)

    def add(self, name: str, email: str, role: str) -> Issued:
        """Create an account with a random password (and a TOTP secret for approvers and
        admins); a name that exists is a CommsError."""
        name = _clean(name)
        if not name or role not in DESK_ROLES:
            raise CommsError(f"an account needs a name and one of the roles {DESK_ROLES}")
        if self.find(name) is not None:
            raise CommsError(f"an account named {name!r} exists already")
        password = new_password()
        secret = new_totp_secret() if role in SECOND_FACTOR_ROLES else None
        with self.engine.begin() as conn:
            conn.execute(
                sa.insert(desk_accounts).values(
                    name=name,
                    email=email,
                    role=role,
                    password_hash=hash_password(password),
                    totp_secret=self._sealed(secret),
                    created_at=now_utc(),
                )
            )
        account = self.find(name)
        assert account is not None
        return Issued(account, password, secret)

    def find(self, name: str) -> Account | None:
        """The account named `name` (spacing ignored), or None."""
        with read_only(self.engine) as conn:
            row = conn.execute(
                sa.select(desk_accounts).where(desk_accounts.c.name == _clean(name))
            ).first()
        return None if row is None else _account(row)

    def accounts(self) -> list[Account]:
        """Every account, by name."""
        with read_only(self.engine) as conn:
            rows = conn.execute(sa.select(desk_accounts).order_by(desk_accounts.c.name))
            return [_account(row) for row in rows]

    def _require(self, name: str) -> Account:
        account = self.find(name)
        if account is None:
            raise CommsError(f"no account named {name!r}")
        return account

    def disable(self, name: str) -> Account:
        """Disable an account and end its logins."""
        account = self._require(name)
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(desk_accounts)
                .where(desk_accounts.c.id == account.id)
                .values(disabled=True)
            )
            conn.execute(sa.delete(desk_sessions).where(desk_sessions.c.account_id == account.id))
        return self._require(name)

    def reset(self, name: str) -> Issued:
        """A new password (and TOTP secret where the role needs one) for an account: it is
        enabled and unlocked, and its logins end."""
        account = self._require(name)
        password = new_password()
        secret = new_totp_secret() if account.role in SECOND_FACTOR_ROLES else None
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(desk_accounts)
                .where(desk_accounts.c.id == account.id)
                .values(
                    password_hash=hash_password(password),
                    totp_secret=self._sealed(secret),
                    totp_step=None,
                    disabled=False,
                    failed_logins=0,
                    locked_until=None,
                )
            )
            conn.execute(sa.delete(desk_sessions).where(desk_sessions.c.account_id == account.id))
        return Issued(self._require(name), password, secret)

    # Logging in

    def _failed(self, account_id: int, lockout_after: int, lockout: timedelta) -> None:
        a = desk_accounts.c
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(desk_accounts)
                .where(a.id == account_id)
                .values(failed_logins=a.failed_logins + 1)
            )
            conn.execute(
                sa.update(desk_accounts)
                .where(a.id == account_id, a.failed_logins >= lockout_after)
                .values(locked_until=now_utc() + lockout, failed_logins=0)
            )

    def _usable(self, name: str) -> sa.Row[tuple[object, ...]] | None:
        with read_only(self.engine) as conn:
            return conn.execute(
                sa.select(desk_accounts).where(desk_accounts.c.name == _clean(name))
            ).first()

    def check_password(
        self, name: str, password: str, lockout_after: int, lockout: timedelta
    ) -> Account | None:
        """The account when `password` is its own and it is neither disabled nor locked; a
        wrong password counts towards the lockout. Always as slow as one argon2 check."""
        row = self._usable(name)
        stored = None if row is None else str(row._mapping["password_hash"])
        matches = password_matches(stored, password)
        if row is None:
            return None
        account = _account(row)
        if account.disabled or self._locked(account):
            return None
        if not matches:
            self._failed(account.id, lockout_after, lockout)
            return None
        if not account.two_factor:
            self._succeeded(account.id, None)
        return account

    def check_code(
        self, account_id: int, code: str, lockout_after: int, lockout: timedelta
    ) -> bool:
        """Whether `code` is the account's current TOTP code, not used before; a wrong one
        counts towards the lockout."""
        with read_only(self.engine) as conn:
            row = conn.execute(
                sa.select(desk_accounts).where(desk_accounts.c.id == account_id)
            ).first()
        if row is None:
            return False
        m = row._mapping
        account = _account(row)
        if account.disabled or self._locked(account) or m["totp_secret"] is None:
            return False
        opened = open_totp(self._key, str(m["totp_secret"]))
        if opened is None:  # sealed under another secret key: `comms users reset` helps
            self._failed(account_id, lockout_after, lockout)
            return False
        step = totp_step(opened, code, m["totp_step"], now_utc().timestamp())
        if step is None:
            self._failed(account_id, lockout_after, lockout)
            return False
        self._succeeded(account_id, step)
        return True

    @staticmethod
    def _locked(account: Account) -> bool:
        return account.locked_until is not None and account.locked_until > now_utc()

    def _succeeded(self, account_id: int, step: int | None) -> None:
        values: dict[str, object] = {"failed_logins": 0, "locked_until": None}
        if step is not None:
            values["totp_step"] = step
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(desk_accounts).where(desk_accounts.c.id == account_id).values(**values)
            )

    # Sessions

    def start(self, account: Account, complete: bool, lifetime: timedelta) -> str:
        """Open a login for `account`; the cookie's value (only its hash is stored)."""
        token = secrets.token_urlsafe(32)
        at = now_utc()
        with self.engine.begin() as conn:
            conn.execute(
                sa.insert(desk_sessions).values(
                    id=_session_id(token),
                    account_id=account.id,
                    complete=complete,
                    csrf=secrets.token_urlsafe(32),
                    created_at=at,
                    seen_at=at,
                    expires_at=at + lifetime,
                )
            )
        return token

    def login(self, token: str | None, idle: timedelta) -> Login | None:
        """The login of a cookie's value, if it has not expired nor been idle for longer than
        `idle`, and its account is enabled; marks it as seen now."""
        if not token or len(token) > 200:
            return None
        sid, at = _session_id(token), now_utc()
        s, a = desk_sessions.c, desk_accounts.c
        query = (
            sa.select(desk_accounts, s.complete, s.csrf, s.seen_at, s.expires_at)
            .join(desk_sessions, s.account_id == a.id)
            .where(s.id == sid)
        )
        with read_only(self.engine) as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        m = row._mapping
        if m["expires_at"] <= at or m["seen_at"] + idle <= at or m["disabled"]:
            self.end(token)
            return None
        with self.engine.begin() as conn:
            conn.execute(sa.update(desk_sessions).where(s.id == sid).values(seen_at=at))
        return Login(_account(row), bool(m["complete"]), str(m["csrf"]))

    def complete(self, token: str, lifetime: timedelta) -> str:
        """The login passed its second factor: it gets a new cookie value (the old one ends),
        so a value seen before the code was typed is worth nothing, and lasts `lifetime`."""
        new, at = secrets.token_urlsafe(32), now_utc()
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(desk_sessions)
                .where(desk_sessions.c.id == _session_id(token))
                .values(
                    id=_session_id(new),
                    complete=True,
                    csrf=secrets.token_urlsafe(32),
                    expires_at=at + lifetime,
                )
            )
        return new

    def end(self, token: str) -> None:
        """Log out: the login ends (and expired ones are removed)."""
        with self.engine.begin() as conn:
            conn.execute(sa.delete(desk_sessions).where(desk_sessions.c.id == _session_id(token)))
            conn.execute(sa.delete(desk_sessions).where(desk_sessions.c.expires_at <= now_utc()))

    # The audit log

    def audit(
        self,
        account: str,
        action: str,
        subject: str = "",
        version: str | None = None,
        detail: str = "",
    ) -> None:
        """Record that `account` did `action` on `subject` (in content version `version`)."""
        with self.engine.begin() as conn:
            conn.execute(
                sa.insert(desk_audit).values(
                    at=now_utc(),
                    account=account[:200],
                    action=action,
                    subject=subject[:200],
                    version=version,
                    detail=detail,
                )
            )

    def audit_log(self, limit: int = 500) -> list[AuditEntry]:
        """The newest `limit` entries, newest first."""
        d = desk_audit.c
        query = (
            sa.select(d.at, d.account, d.action, d.subject, d.version, d.detail)
            .order_by(d.at.desc(), d.id.desc())
            .limit(limit)
        )
        with read_only(self.engine) as conn:
            return [AuditEntry(**row._mapping) for row in conn.execute(query)]
