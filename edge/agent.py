"""The gate agent: everything a gate runs, assembled from its configuration.

Start-up order matters for "nothing lost" and for recognising students with the server down:
the model pack is checked (and the default one built if missing), the last good gallery is
loaded from disk, the outbox is opened (sending whatever a previous run left), and only then
does the camera start. The loop's passes and the card reader's taps meet in card + face fusion
(:mod:`edge.cards.fusion`, under the server's ``require_face`` policy), and its decisions become
contract events written to the outbox before anything is published. The card reader runs on its
own thread; a reader that is unplugged is logged and reopened, and never stops the camera.
"""

from __future__ import annotations

import importlib.metadata
import logging
import resource
import threading
import time
import uuid
from pathlib import Path

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
from edge.cards.fusion import CardFaceFusion, Outcome
from edge.cards.reader import CardReader, ReaderError, Tap, make_reader
from edge.clock import SYSTEM_CLOCK, GateClock
from edge.config import EdgeConfig
from edge.feedback import feedback_for
from edge.gallery_store import gate_gallery_store
from edge.link import CommandFailed, GateLink, LinkSettings
from edge.loop import LoopSettings, Pass, RecognitionLoop
from edge.outbox import Outbox, OutboxFull
from models import default_pack
from models.engine import FaceEngine
from models.packs import Pack, default_models_dir, load_pack

log = logging.getLogger(__name__)

CARD_TICK_S = 0.25
"""How often the card thread looks for a tap and closes fusion windows that ended."""
READER_RETRY_S = 5.0
"""Wait before reopening a card reader that failed (unplugged, not answering)."""

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
        self.gallery = gate_gallery_store(config)
        self.gallery.load_last_good()
        self.outbox = Outbox(data_dir / "outbox.db", config.storage.outbox_capacity)
        self.feedback = feedback_for(
            config.gate.led_green_pin, config.gate.led_red_pin, config.gate.buzzer_pin
        )
        self.reader: CardReader | None = make_reader(config.reader) if config.reader else None
        self.fusion: CardFaceFusion[Pass] = CardFaceFusion(
            self._card_owner,
            window_s=config.gate.face_window_s,
            require_face=self._requires_face(config.gate.require_face),
        )
        self.camera: Camera | None = None
        self.loop: RecognitionLoop | None = None
        self._desired: GateConfig | None = None  # the server's config, even if it came early
        self._started = time.monotonic()
        self._connected = False
        self.link = GateLink(
            LinkSettings(
                **config.broker.model_dump(),
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
        cards_stop = threading.Event()
        cards = threading.Thread(
            target=self._watch_cards, args=(cards_stop,), name="cards", daemon=True
        )
        cards.start()
        try:
            self.loop.run(stop)
        finally:
            cards_stop.set()
            cards.join(timeout=10)
            for outcome in self.fusion.flush():  # held faces and open windows: nothing lost
                self._publish(outcome)
            self.camera.stop()
            self.link.stop()
            self.outbox.close()

    def _emit(self, item: Pass) -> None:
        for outcome in self.fusion.face(item):
            self._publish(outcome)

    def _watch_cards(self, stop: threading.Event) -> None:
        """Feed taps to fusion and close its windows on time, until ``stop`` is set."""
        try:
            while not stop.is_set():
                tap = self._next_tap(stop)
                for outcome in self.fusion.card(tap) if tap else self.fusion.tick():
                    self._publish(outcome)
        finally:
            if self.reader is not None:
                self.reader.close()

    def _next_tap(self, stop: threading.Event) -> Tap | None:
        """A tap within ``CARD_TICK_S``, else None; a failed reader is logged and reopened later."""
        reader = self.reader
        if reader is None:
            stop.wait(CARD_TICK_S)
            return None
        try:
            if not reader.is_open:
                reader.open()
                log.info("card reader ready", extra=reader.info())
            return reader.read_tap(CARD_TICK_S)
        except ReaderError as exc:
            log.error("card reader unavailable", extra={"port": reader.port, "reason": str(exc)})
            reader.close()
            stop.wait(READER_RETRY_S)
            return None

    def _requires_face(self, policy: bool) -> bool:
        # Without a reader no tap can claim a face: holding faces would only delay them.
        return policy and self.reader is not None

    def _card_owner(self, uid: str) -> str | None:
        gallery = self.gallery.current()
        return gallery.card_owner(uid) if gallery else None

    def _card_direction(self) -> str:
        """Where card taps go: the reader's setting, else the gate's fixed direction."""
        reader = self.config.reader
        if reader is not None and reader.direction is not None:
            return reader.direction
        direction = self._desired.direction if self._desired else self.config.gate.direction
        # The config refuses a line gate without reader.direction; a server switching a gate
        # to 'line' later must not lose taps, so they count as entries then.
        return direction if direction != "line" else "in"

    def _publish(self, outcome: Outcome[Pass]) -> None:
        """Write one fusion decision as an event, and show a card decision at the gate."""
        event = self._event(outcome)
        if outcome.tap is not None:
            self.feedback.card(outcome.accepted)
        try:
            self.link.send_event(event)
        except OutboxFull:
            log.error("event lost: outbox full", extra={"event_id": str(event.event_id)})

    def _event(self, outcome: Outcome[Pass]) -> Event:
        gallery = self.gallery.current()
        return outcome_event(
            outcome,
            site=self.config.device.site,
            device=self.config.device.device,
            model_pack=self.pack.name,
            gallery_version=gallery.version if gallery else None,
            card_direction=self._card_direction(),
            now=time.monotonic(),
        )

    def _apply_config(self, desired: GateConfig) -> None:
        self._desired = desired
        self.fusion.require_face = self._requires_face(desired.require_face)
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


def outcome_event(
    outcome: Outcome[Pass],
    *,
    site: str,
    device: str,
    model_pack: str,
    gallery_version: int | None,
    card_direction: str,
    now: float,
    clock: GateClock = SYSTEM_CLOCK,
) -> Event:
    """The contract event for a fusion decision: face fields from the pass, card ones from the tap.

    ``now`` is ``time.monotonic()``. A card event is stamped with the time of its tap even when
    its verdict came at the end of the face window; latency counts from the last input the
    decision waited for (the tap, or the face that matched it). Stamps come from ``clock``, which
    a hand-set step of the system clock does not bend (:mod:`edge.clock`).
    """
    face, tap = outcome.face, outcome.tap
    face_fields = (
        {
            "score": max(0.0, min(1.0, face.score)),
            "track_id": face.track_id,
            "quality": round(face.quality, 4),
            "model_pack": model_pack,
        }
        if face is not None
        else {}
    )
    card_fields = {"card_uid": tap.uid, "face_check": outcome.face_check} if tap else {}
    return Event(
        event_id=uuid.uuid4(),
        kind=outcome.kind,
        ts=clock.at(now if tap is None else tap.at),
        site=site,
        device=device,
        direction=face.direction if face is not None else card_direction,
        student_id=outcome.student_id,
        gallery_version=gallery_version,
        latency_ms=round((now - outcome.decided_at) * 1000.0, 1),
        **face_fields,
        **card_fields,
    )


def _cpu_temperature() -> float | None:
    """The SoC temperature where the kernel exposes it (Raspberry Pi, Jetson), else None."""
    try:
        return int(Path("/sys/class/thermal/thermal_zone0/temp").read_text()) / 1000.0
    except (OSError, ValueError):
        return None
