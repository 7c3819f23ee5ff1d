"""A private PostgreSQL cluster in a temporary folder, on a free port, that a test may restart.

The machine's shared PostgreSQL serves everyone's tests and must never be restarted; this one is
made with Debian's own binaries (``/usr/lib/postgresql/<version>/bin``), trusts local
connections, and is deleted afterwards. PostgreSQL refuses to run as root, so as root the
cluster belongs to the ``postgres`` system user.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from broker.managed import free_port, wait_for_port


class ClusterUnavailable(RuntimeError):
    """No PostgreSQL server binaries here (or no user to run them as)."""


def _bin_dir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if not found:
        raise ClusterUnavailable(
            "no /usr/lib/postgresql/*/bin/pg_ctl: install postgresql (apt-get install postgresql)"
        )
    return Path(found[-1]).parent


class PrivateCluster:
    """``initdb`` + ``pg_ctl start`` on construction; :meth:`restart`, :meth:`close`."""

    def __init__(self) -> None:
        self._bin = _bin_dir()
        self._user: str | None = None
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                raise ClusterUnavailable("running as root and there is no postgres user") from None
            self._user = "postgres"
        # Not under pytest's tmp folder: as root that is closed to the postgres user.
        self.folder = Path(tempfile.mkdtemp(prefix="cg-pg-"))
        if self._user is not None:
            shutil.chown(self.folder, self._user)
        self.data = self.folder / "data"
        self.port = free_port()
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync")
        self.start()

    @property
    def url(self) -> str:
        """A URL for the cluster's ``postgres`` database (create databases from it)."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.folder}"
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.folder / "log"),
            "-w",
            "-o",
            options,
            "start",
        )
        wait_for_port(self.port)

    def restart(self) -> None:
        """Stop (``-m fast``: every connection is cut, open transactions roll back) and start."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        self.start()

    def close(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop", check=False)
        shutil.rmtree(self.folder, ignore_errors=True)

    def _run(self, program: str, *args: str, check: bool = True) -> None:
        command = [str(self._bin / program), *args]
        if self._user is not None:
            command = ["runuser", "-u", self._user, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, cwd=self.folder)
        if check and done.returncode != 0:
            raise RuntimeError(f"{program} failed: {done.stderr or done.stdout}")
