"""A PostgreSQL cluster of a test's own, which the test may stop and start (an outage) or use
with the database's own tools as an operator would, disturbing no other test."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from .smtp_servers import free_port


def _binary(name: str) -> str:
    found = (
        shutil.which(name) or (sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}")) or [""])[-1]
    )
    if not found:
        pytest.skip("no PostgreSQL binaries (Debian package postgresql)")
    return found


class Cluster:
    """A PostgreSQL cluster of this test alone, so that stopping it disturbs nobody else."""

    def __init__(self) -> None:
        self.run_as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        self.folder = Path(tempfile.mkdtemp(prefix="comms-outage-"))
        if self.run_as:
            shutil.chown(self.folder, "postgres")
        self.data = self.folder / "data"
        self.port = free_port()
        subprocess.run(
            [*self.run_as, _binary("initdb"), "-D", str(self.data), "-A", "trust", "-U",
             "postgres", "-E", "UTF8", "--no-sync"],
            check=True, capture_output=True,
        )  # fmt: skip

    def _ctl(self, *args: str) -> None:
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.folder}"
        subprocess.run(
            [*self.run_as, _binary("pg_ctl"), "-D", str(self.data), "-o", options, "-l",
             str(self.folder / "log"), "-w", *args],
            check=True, capture_output=True,
        )  # fmt: skip

    def start(self) -> None:
        """Start the server (again) on the same port."""
        self._ctl("start")

    def stop(self) -> None:
        """Stop it as a crash would: every connection cut, nothing flushed politely."""
        self._ctl("-m", "immediate", "stop")

    def execute(self, sql: str) -> None:
        """Run one statement as the superuser, outside a transaction."""
        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{self.port}/postgres") as conn:
            conn.autocommit = True
            conn.execute(sql.encode())

    def url(self, user: str = "postgres") -> str:
        """A new database `comms` on the cluster, as comms names it (owned by `user`)."""
        self.execute(f"CREATE DATABASE comms OWNER {user}")
        return f"postgresql+psycopg://{user}@127.0.0.1:{self.port}/comms"

    def environ(self) -> dict[str, str]:
        """What the PostgreSQL client tools need to reach the cluster as its superuser."""
        folder = str(Path(_binary("pg_dump")).parent)
        return os.environ | {
            "PATH": f"{folder}:{os.environ.get('PATH', '')}",
            "PGHOST": "127.0.0.1",
            "PGPORT": str(self.port),
            "PGUSER": "postgres",
        }

    def remove(self) -> None:
        """Stop the server if it runs and delete its files."""
        subprocess.run(
            [*self.run_as, _binary("pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"],
            check=False, capture_output=True,
        )  # fmt: skip
        shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture(name="cluster")
def cluster_fixture() -> Iterator[Cluster]:
    """A started cluster of the test's own."""
    found = Cluster()
    try:
        found.start()
        yield found
    finally:
        found.remove()
