"""The desk's TOTP secrets are sealed in the database (comms.core.credentials)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pyotp
import pytest
import sqlalchemy as sa

from comms.core.config import load_config
from comms.core.credentials import SEALED, open_totp, seal_totp
from comms.db.desk_accounts import DeskAccounts
from comms.db.store import open_store
from comms.db.tables import desk_accounts

from .deskkit import SECRET

OTHER = "Lq4sNd7hFj1cVb6xGz0pRt5wYeXk3v9QpZrT2mW8yB4"


def test_a_sealed_secret_opens_only_with_its_key() -> None:
    sealed = seal_totp(SECRET, "JBSWY3DPEHPK3PXP")
    assert sealed.startswith(SEALED) and "JBSWY3DPEHPK3PXP" not in sealed
    assert seal_totp(SECRET, "JBSWY3DPEHPK3PXP") != sealed  # a nonce of its own each time
    assert open_totp(SECRET, sealed) == "JBSWY3DPEHPK3PXP"
    assert open_totp(OTHER, sealed) is None
    assert open_totp(SECRET, sealed[:-4] + "AAAA") is None  # damaged
    assert open_totp(SECRET, "JBSWY3DPEHPK3PXP") == "JBSWY3DPEHPK3PXP"  # a row from before


@pytest.mark.database
def test_the_database_alone_does_not_give_the_second_factor(
    site_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COMMS_SECRET_KEY", SECRET)
    store = open_store(load_config(site_copy / "comms.toml"))
    try:
        accounts = DeskAccounts(store.engine, store.secret)
        issued = accounts.add("Paul", "paul@example.org", "approver")
        assert issued.totp_secret is not None
        with store.engine.connect() as conn:
            stored = conn.execute(sa.select(desk_accounts.c.totp_secret)).scalar_one()
        assert stored.startswith(SEALED) and issued.totp_secret not in stored
        code = pyotp.TOTP(issued.totp_secret).now()
        lockout = timedelta(minutes=15)
        # Under another secret key the stored value is no second factor at all.
        assert not DeskAccounts(store.engine, OTHER).check_code(issued.account.id, code, 5, lockout)
        assert accounts.check_code(issued.account.id, code, 5, lockout)
        # An account from before sealing (its secret stored as it is) still logs in.
        plain = pyotp.random_base32()
        with store.engine.begin() as conn:
            conn.execute(sa.update(desk_accounts).values(totp_secret=plain, totp_step=None))
        assert accounts.check_code(issued.account.id, pyotp.TOTP(plain).now(), 5, lockout)
    finally:
        store.close()
