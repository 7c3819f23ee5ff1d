"""The gate agent: everything a gate runs, assembled from its configuration.

Start-up order matters for "nothing lost" and for recognising students with the server down:
the model pack is checked (and the default one built if missing), the last good gallery is
loaded from disk, the outbox is opened (sending whatever a previous run left), and only then
does the camera start. The loop's passes become contract events written to the outbox before
anything is published.
"""

from __future__ import annotations

import importlib.metadata
import logging
import resource
import threading
import time
import uuid
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from broker.payloads import (
    Command,
    Event,
    GalleryNotice,
    GateConfig,
    StageTiming,
    Telemetry,
    utc_now,
)
from edge.camera import Camera
from edge.config import EdgeConfig
from edge.feedback import feedback_for
from edge.fetch import https_fetcher
from edge.gallery_store import GalleryStore
from edge.link import CommandFailed, GateLink, LinkSettings
from edge.loop import LoopSettings, Pass, RecognitionLoop
from edge.outbox import Outbox, OutboxFull
from models import default_pack
from models.engine import FaceEngine
from models.packs import Pack, default_models_dir, load_pack

log = logging.getLogger(__name__)

try:
    VERSION = importlib.metadata.version("campusgate")
except importlib.metadata.PackageNotFoundError:  # a source tree that was never installed
    VERSION = "0+unknown"


def load_model_pack(config: EdgeConfig) -> Pack:
    """The configured pack; the default one is built from the installed wheels when missing."""
    models_dir = config.recognition.models_dir or default_models_dir()
    if config.recognition.pack == default_pack.NAME:

        def report(what: str, done: int, total: int) -> None:
            if done == total:
                log.info("model pack step done", extra={"step": what})

        return default_pack.ensure_default_pack(models_dir, report)
    return load_pack(config.recognition.pack, models_dir)


def loop_settings(config: EdgeConfig, desired: GateConfig | None = None) -> LoopSettings:
    """The loop's settings from the file, overridden by the server's desired config if any."""
    rec, gate = config.recognition, config.gate
    settings = LoopSettings(
        detect_max_side=rec.detect_max_side,
        detect_fps=rec.detect_fps,
        min_face_px=rec.min_face_px,
        max_embeds_per_track=rec.max_embeds_per_track,
        confident_margin=rec.confident_margin,
        cooldown_s=rec.cooldown_s,
        direction=gate.direction,
        crossing_line=gate.crossing_line,
        threshold=rec.match_threshold,
    )
    if desired is None:
        return settings
    line = desired.crossing_line
    return LoopSettings(
        detect_max_side=settings.detect_max_side,
        detect_fps=desired.detect_fps,
        min_face_px=desired.min_face_px,
        max_embeds_per_track=settings.max_embeds_per_track,
        confident_margin=settings.confident_margin,
        cooldown_s=desired.cooldown_s,
        direction=desired.direction,
        crossing_line=(line.x1, line.y1, line.x2, line.y2) if line else None,
        threshold=desired.match_threshold,
    )


class Gate:
    """A running gate; :meth:`run` blocks until ``stop`` is set or the camera ends."""

    def __init__(self, config: EdgeConfig) -> None:
        self.config = config
        site, device = config.device.site, config.device.device
        data_dir = config.storage.data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        self.pack = load_model_pack(config)
        self.engine = FaceEngine(self.pack, threads=config.recognition.threads)
        broker = config.broker
        password = broker.password.get_secret_value() if broker.password else None
        key = load_pem_public_key(Path(config.gallery.public_key).read_bytes())
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError(f"{config.gallery.public_key} is not an Ed25519 public key")
        client_cert = (broker.client_cert, broker.client_key) if broker.client_cert else None
        fetch = https_fetcher(config.username, password, broker.ca_file, client_cert)
        self.gallery = GalleryStore(data_dir / "gallery.cggal", self.pack.name, key, fetch)
        self.gallery.load_last_good()
        self.outbox = Outbox(data_dir / "outbox.db", config.storage.outbox_capacity)
        self.feedback = feedback_for(
            config.gate.led_green_pin, config.gate.led_red_pin, config.gate.buzzer_pin
        )
        self.camera: Camera | None = None
        self.loop: RecognitionLoop | None = None
        self._desired: GateConfig | None = None  # the server's config, even if it came early
        self._started = time.monotonic()
        self._connected = False
        self.link = GateLink(
            LinkSettings(
                **broker.model_dump(),
                site=site,
                device=device,
                telemetry_interval_s=config.telemetry.interval_s,
            ),
            self.outbox,
            version=VERSION,
            on_config=self._apply_config,
            on_gallery=self._gallery_notice,
            on_command=self._command,
            telemetry=self._telemetry,
            model_pack=self.pack.name,
            gallery_version=self.gallery.version,
        )

    def connect(self) -> None:
        """Start the MQTT link (once): status, config, gallery and the outbox's backlog."""
        if not self._connected:
            self._connected = True
            self.link.start()

    def run(self, stop: threading.Event) -> None:
        """Connect, then recognise until stopped; the outbox keeps what could not be sent."""
        self.connect()
        self.camera = Camera(self.config.camera.source, realtime=self.config.camera.realtime)
        self.loop = RecognitionLoop(
            self.camera,
            self.engine,
            self.gallery.current,
            self._emit,
            loop_settings(self.config, self._desired),
            feedback=self.feedback,
        )
        try:
            self.loop.run(stop)
        finally:
            self.camera.stop()
            self.link.stop()
            self.outbox.close()

    def _emit(self, item: Pass) -> None:
        config = self.config
        gallery = self.gallery.current()
        event = Event(
            event_id=uuid.uuid4(),
            kind="face",
            ts=utc_now(),
            site=config.device.site,
            device=config.device.device,
            direction=item.direction,
            student_id=item.person_id,
            score=max(0.0, min(1.0, item.score)),
            track_id=item.track_id,
            quality=round(item.quality, 4),
            model_pack=self.pack.name,
            gallery_version=gallery.version if gallery else None,
            latency_ms=round((time.monotonic() - item.captured_at) * 1000.0, 1),
        )
        try:
            self.link.send_event(event)
        except OutboxFull:
            log.error("event lost: outbox full", extra={"event_id": str(event.event_id)})

    def _apply_config(self, desired: GateConfig) -> None:
        self._desired = desired
        if self.loop is not None:
            self.loop.apply(loop_settings(self.config, desired))
        log.info("config applied", extra={"revision": desired.revision})

    def _gallery_notice(self, notice: GalleryNotice) -> None:
        # Fetching takes seconds; the MQTT network thread must not wait for it.
        def fetch() -> None:
            if self.gallery.apply(notice):
                self.link.update_status(
                    model_pack=self.pack.name, gallery_version=self.gallery.version
                )

        threading.Thread(target=fetch, name="gallery-fetch", daemon=True).start()

    def _command(self, command: Command) -> dict:
        if command.name == "test-beep":
            self.feedback.recognised("test")
            return {"beeped": True}
        if command.name == "reload":
            gallery = self.gallery.load_last_good()
            return {"gallery_version": gallery.version if gallery else -1}
        raise CommandFailed(f"{command.name} is not supported by this gate yet")

    def _telemetry(self) -> Telemetry:
        config = self.config
        camera = self.camera.stats if self.camera else None
        loop = self.loop.stats if self.loop else None
        uptime = time.monotonic() - self._started
        stages = loop.stages.summary_ms() if loop else {}
        return Telemetry(
            ts=utc_now(),
            site=config.device.site,
            device=config.device.device,
            fps_in=round(camera.fps_in, 2) if camera else 0.0,
            fps_processed=round(loop.frames_processed / uptime, 2) if loop else 0.0,
            frames_dropped=camera.frames_dropped if camera else 0,
            stages={
                name: StageTiming(p50_ms=p50, p95_ms=p95) for name, (p50, p95) in stages.items()
            },
            outbox_depth=self.outbox.depth(),
            cpu_temp_c=_cpu_temperature(),
            mem_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1),
            uptime_s=round(uptime, 1),
        )


def _cpu_temperature() -> float | None:
    """The SoC temperature where the kernel exposes it (Raspberry Pi, Jetson), else None."""
    try:
        return int(Path("/sys/class/thermal/thermal_zone0/temp").read_text()) / 1000.0
    except (OSError, ValueError):
        return None
