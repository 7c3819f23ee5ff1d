"""Telling a running Mosquitto to re-read its password file and ACL (SIGHUP via its pid file).

Mosquitto 2.0 re-reads ``password_file`` and ``acl_file`` on SIGHUP and then checks every
connected client against them again: a client whose username left the password file (or whose
password no longer matches) is disconnected at once, and its reconnects are refused. That is how
a revoked gate is cut off without restarting the broker, so the other gates never notice. Such a
client's last will is not published (the broker, not the network, ended the session), so its
retained status keeps its last value; the server marks the device disabled.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path


class ReloadError(RuntimeError):
    """The broker could not be told to reload; the message says why and what to do instead."""


def reload_mosquitto(pid_file: Path) -> int:
    """Send SIGHUP to the Mosquitto whose pid ``pid_file`` holds; return that pid.

    Refuses (:class:`ReloadError`) a missing or malformed pid file, a pid that is not running,
    and a pid that is not a mosquitto process (a stale file whose pid was reused): SIGHUP ends
    most other programs.
    """
    try:
        pid = int(pid_file.read_text().strip())
    except FileNotFoundError:
        raise ReloadError(
            f"no pid file at {pid_file}: is Mosquitto running from this directory? "
            "(a broker run by systemd: `systemctl reload mosquitto`)"
        ) from None
    except ValueError:
        raise ReloadError(f"{pid_file} does not hold a process id") from None
    comm = Path(f"/proc/{pid}/comm")
    try:
        name = comm.read_text().strip() if comm.parent.parent.is_dir() else "mosquitto"
    except FileNotFoundError:
        raise ReloadError(f"Mosquitto (pid {pid} in {pid_file}) is not running") from None
    if name != "mosquitto":
        raise ReloadError(f"pid {pid} in {pid_file} is {name!r}, not mosquitto: stale pid file")
    try:
        os.kill(pid, signal.SIGHUP)
    except ProcessLookupError:
        raise ReloadError(f"Mosquitto (pid {pid} in {pid_file}) is not running") from None
    except PermissionError:
        raise ReloadError(
            f"not allowed to signal Mosquitto (pid {pid}): run as its user or with sudo"
        ) from None
    return pid
