"""Render the production Mosquitto configuration from the templates in ``broker/mosquitto/``.

One data directory holds everything a broker instance needs: ``mosquitto.conf``, the password
file, the ACL, the TLS files under ``certs/``, the persistence store and the log. ``gatectl``
renders it from the device registry; tests render it into a temporary directory.
"""

from __future__ import annotations

import getpass
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from string import Template

from broker.codec import MAX_PAYLOAD_BYTES
from broker.passwords import read_password_file, write_password_file
from broker.topics import check_id

SERVER_USERNAME = "campusgate-server"

# Room for the fixed header, the topic (at most ~200 bytes by the id rules) and properties.
MAX_PACKET_BYTES = MAX_PAYLOAD_BYTES + 1024


def device_username(site: str, device: str) -> str:
    """The broker username of a gate: ``{site}.{device}`` ('.' never occurs inside an id)."""
    return f"{check_id(site, 'site')}.{check_id(device, 'device')}"


@dataclass(frozen=True)
class DeviceAccount:
    """A gate known to the broker."""

    site: str
    device: str

    @property
    def username(self) -> str:
        return device_username(self.site, self.device)


@dataclass(frozen=True)
class MosquittoLayout:
    """Where an instance keeps its files and which ports it listens on."""

    data_dir: Path
    plain_port: int = 1883
    tls_port: int = 8883
    tls_bind: str = "0.0.0.0"
    run_as: str = ""
    # Per client. The server's ingest session queues every gate's events while the server is
    # down, and Mosquitto drops what exceeds this silently: a district's whole morning rush
    # (200 gates, 60,000 events) must fit with room to spare (about 0.5 KB each).
    max_queued_messages: int = 500_000

    @property
    def conf_file(self) -> Path:
        return self.data_dir / "mosquitto.conf"

    @property
    def password_file(self) -> Path:
        return self.data_dir / "passwd"

    @property
    def acl_file(self) -> Path:
        return self.data_dir / "acl"

    @property
    def certs_dir(self) -> Path:
        return self.data_dir / "certs"

    @property
    def cafile(self) -> Path:
        return self.certs_dir / "ca.crt"

    @property
    def certfile(self) -> Path:
        return self.certs_dir / "server.crt"

    @property
    def keyfile(self) -> Path:
        return self.certs_dir / "server.key"

    @property
    def persistence_dir(self) -> Path:
        return self.data_dir / "data"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "mosquitto.log"

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "mosquitto.pid"


def _template(name: str) -> Template:
    return Template(resources.files("broker").joinpath("mosquitto", name).read_text())


def render_acl(
    devices: Iterable[DeviceAccount], services: Iterable[str] = (SERVER_USERNAME,)
) -> str:
    """The ACL text: one block per service account, one per device."""
    service = _template("acl-service.tmpl")
    device = _template("acl-device.tmpl")
    return _template("acl.tmpl").substitute(
        service_blocks="\n".join(service.substitute(username=name) for name in services),
        device_blocks="\n".join(
            device.substitute(username=d.username, site=d.site, device=d.device)
            for d in sorted(devices, key=lambda d: d.username)
        ),
    )


def render_conf(layout: MosquittoLayout) -> str:
    """The ``mosquitto.conf`` text for ``layout``."""
    return _template("mosquitto.conf.tmpl").substitute(
        run_as=layout.run_as or getpass.getuser(),
        persistence_dir=layout.persistence_dir,
        max_packet_size=MAX_PACKET_BYTES,
        max_queued_messages=layout.max_queued_messages,
        log_file=layout.log_file,
        pid_file=layout.pid_file,
        plain_port=layout.plain_port,
        tls_port=layout.tls_port,
        tls_bind=layout.tls_bind,
        password_file=layout.password_file,
        acl_file=layout.acl_file,
        cafile=layout.cafile,
        certfile=layout.certfile,
        keyfile=layout.keyfile,
    )


def rendered_plain_port(layout: MosquittoLayout) -> int:
    """The port of the server's plain loopback listener in ``layout``'s ``mosquitto.conf``.

    ``layout`` need not know the ports: they are chosen when the instance is rendered and later
    updates keep them (:func:`update_credentials`), so the rendered file is where they live. The
    template puts that listener first. Raises :class:`FileNotFoundError` when nothing was
    rendered, :class:`ValueError` when the file has no such listener.
    """
    for line in layout.conf_file.read_text().splitlines():
        found = re.fullmatch(r"listener\s+(\d+)\s+127\.0\.0\.1", line.strip())
        if found:
            return int(found[1])
    raise ValueError(f"{layout.conf_file} has no listener on 127.0.0.1")


def render_mosquitto(
    layout: MosquittoLayout,
    devices: Iterable[DeviceAccount],
    password_hashes: Mapping[str, str],
    services: Iterable[str] = (SERVER_USERNAME,),
) -> Path:
    """Write conf, ACL and password file into ``layout.data_dir``; return the conf's path.

    ``password_hashes`` maps usernames to ``$7$`` hashes (see :mod:`broker.passwords`). The TLS
    files are expected under ``layout.certs_dir`` (see :mod:`broker.pki`).
    """
    devices = list(devices)
    layout.data_dir.mkdir(parents=True, exist_ok=True)
    layout.certs_dir.mkdir(exist_ok=True)
    layout.persistence_dir.mkdir(exist_ok=True)
    _write_atomically(layout.acl_file, render_acl(devices, services))
    write_password_file(layout.password_file, password_hashes)
    layout.conf_file.write_text(render_conf(layout))
    return layout.conf_file


def update_credentials(
    layout: MosquittoLayout,
    devices: Iterable[DeviceAccount],
    device_hashes: Mapping[str, str],
    services: Iterable[str] = (SERVER_USERNAME,),
) -> None:
    """Rewrite only the ACL and the password file of a rendered instance, for a reload.

    The service accounts' entries are kept from the current password file (the device registry
    does not hold them), the files keep their owner, and ``mosquitto.conf`` is left as
    rendered, ports and all. Raises :class:`FileNotFoundError` when ``layout`` was never
    rendered (no ACL or password file yet).
    """
    services = list(services)
    current = read_password_file(layout.password_file)
    kept = {name: current[name] for name in services if name in current}
    owners = {path: path.stat() for path in (layout.acl_file, layout.password_file)}
    _write_atomically(layout.acl_file, render_acl(devices, services))
    write_password_file(layout.password_file, {**device_hashes, **kept})
    if os.geteuid() == 0:
        # Mosquitto re-reads both files after dropping to its own user: run as root, hand the
        # new files to whoever owned the old ones, or the reload could not read them.
        for path, was in owners.items():
            os.chown(path, was.st_uid, was.st_gid)


def _write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` in one step, so a broker reloading meanwhile reads the old or the new."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)
