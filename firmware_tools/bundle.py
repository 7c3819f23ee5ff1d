"""A gate's provisioning bundle: the folder a gate starts from with
``campusgate edge --config DIR/gate.toml``.

Two kinds. A *password* bundle holds everything: ``gate.toml`` with the gate's secret (mode
0600), the deployment's CA certificate (``ca.crt``) to check the broker's TLS certificate, and
the server's gallery key (``gallery.pub``). A *claim* bundle holds a one-time claim token and
the server's address instead of the secret and the key; the gate exchanges the token at its
first start (:mod:`edge.claim`). Both carry ``bundle.json``, a manifest without secrets saying
what the bundle is for: site, device, broker, server and gallery addresses.

Paths inside ``gate.toml`` are relative, so the folder can be copied anywhere (an SD card,
``/etc/campusgate``) as a whole.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from edge.config import load_config
from edge.config_writer import write_config

CONFIG_FILE = "gate.toml"
CA_FILE = "ca.crt"
GALLERY_KEY_FILE = "gallery.pub"
MANIFEST_FILE = "bundle.json"
BUNDLE_FILES = (CONFIG_FILE, CA_FILE, GALLERY_KEY_FILE, MANIFEST_FILE)


class BundleExists(FileExistsError):
    """The folder already holds a bundle; pass ``force`` to replace it."""


@dataclass(frozen=True)
class GateBundle:
    """What every bundle of one gate says, whatever its credential."""

    site: str
    device: str
    direction: str
    broker_host: str
    broker_port: int
    ca_pem: bytes
    api_url: str
    camera: str | None = None
    data_dir: Path | None = None

    def _config(self) -> dict[str, dict[str, Any]]:
        # A 'line' gate needs its crossing line, which only the technician at the gate knows:
        # the file says 'in' and the server's retained config or an edit sets the line.
        direction = self.direction if self.direction in ("in", "out") else None
        return {
            "device": {"site": self.site, "device": self.device},
            "broker": {"host": self.broker_host, "port": self.broker_port, "ca_file": CA_FILE},
            "camera": {"source": self.camera},
            "gate": {"direction": direction},
            "storage": {"data_dir": self.data_dir},
            "gallery": {"public_key": GALLERY_KEY_FILE},
        }

    def _manifest(self, credential: str, **extra: Any) -> dict[str, Any]:
        return {
            "site": self.site,
            "device": self.device,
            "username": f"{self.site}.{self.device}",
            "credential": credential,
            "broker": f"{self.broker_host}:{self.broker_port}",
            "server_url": self.api_url,
            "gallery_url": f"{self.api_url}/gallery/{self.site}",
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            **extra,
        }

    def write_password_bundle(
        self, out: Path, password: str, gallery_key_pem: str, *, force: bool = False
    ) -> list[Path]:
        """The full bundle: the gate starts with no server call. Returns the files written."""
        config = self._config()
        config["broker"]["password"] = password
        _prepare(out, force)
        (out / GALLERY_KEY_FILE).write_text(gallery_key_pem)
        return self._write(out, config, self._manifest("password"))

    def write_claim_bundle(
        self, out: Path, token: str, expires_at: str, *, force: bool = False
    ) -> list[Path]:
        """The claim bundle: the token in place of the secret and the gallery key."""
        config = self._config()
        config["claim"] = {"server_url": self.api_url, "token": token}
        _prepare(out, force)
        (out / GALLERY_KEY_FILE).unlink(missing_ok=True)  # the claim brings the server's key
        return self._write(out, config, self._manifest("claim", expires_at=expires_at))

    def _write(
        self, out: Path, config: dict[str, dict[str, Any]], manifest: dict[str, Any]
    ) -> list[Path]:
        (out / CA_FILE).write_bytes(self.ca_pem)
        (out / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n")
        write_config(out / CONFIG_FILE, config)
        load_config(out / CONFIG_FILE)  # what gatectl writes, the gate must accept
        return sorted(path for path in out.iterdir() if path.name in BUNDLE_FILES)


def _prepare(out: Path, force: bool) -> None:
    if (out / CONFIG_FILE).exists() and not force:
        raise BundleExists(f"{out / CONFIG_FILE} exists; pass --force to replace the bundle")
    out.mkdir(parents=True, exist_ok=True, mode=0o700)
