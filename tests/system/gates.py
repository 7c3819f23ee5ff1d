"""Gates without a camera: the gate's real outbox and MQTT link, fed recognised passes.

A :class:`SyntheticGate` turns "student X walked in" into the event the gate's agent would send
(:func:`edge.agent.outcome_event` on a face pass, stamped by the gate's clock), stores it in a
real :class:`~edge.outbox.Outbox` file and publishes it through a real
:class:`~edge.link.GateLink` over TLS with the gate's own credential. Everything after the camera
and the recogniser is the production code.
"""

from __future__ import annotations

import time
from pathlib import Path
from types import TracebackType

from edge.agent import outcome_event
from edge.cards.fusion import Outcome
from edge.clock import SYSTEM_CLOCK, GateClock
from edge.link import GateLink, LinkSettings
from edge.loop import Pass
from edge.outbox import Outbox

SITE = "school-a"
INFLIGHT = 20


def gate_settings(port: int, device: str, password: str, ca_file: str | Path) -> LinkSettings:
    """A gate's link settings with quick reconnects (a test should not wait out a minute's
    backoff), the shortest keepalive, so a silent network is noticed within seconds, and a
    short wait for the server's receipt before an event is sent again (2 s, not 30 s)."""
    return LinkSettings(
        host="127.0.0.1",
        port=port,
        site=SITE,
        device=device,
        password=password,
        ca_file=Path(ca_file),
        inflight=INFLIGHT,
        keepalive_s=5,
        reconnect_min_delay_s=0.2,
        reconnect_max_delay_s=1.0,
        receipt_timeout_s=2.0,
        receipt_timeout_max_s=10.0,
    )


class SyntheticGate:
    """One gate: started on construction, stopped (outbox kept on disk) on close."""

    def __init__(self, settings: LinkSettings, outbox: Path, clock: GateClock = SYSTEM_CLOCK):
        self.clock = clock
        self.outbox = Outbox(outbox)
        self.link = GateLink(
            settings,
            self.outbox,
            version="system-test",
            on_config=lambda _config: None,
            on_gallery=lambda _notice: None,
            on_command=lambda _command: {},
        )
        self._tracks = 0
        self.link.start()

    def pass_student(self, code: str, direction: str = "in") -> str:
        """A recognised face of ``code`` crossing now; returns the event id once it is durable
        in the outbox."""
        now = time.monotonic()
        self._tracks += 1
        face = Pass(self._tracks, code, 0.93, 0.8, now, time.time(), direction, now - 0.5)
        event = outcome_event(
            Outcome("face", code, face=face),
            site=self.link.settings.site,
            device=self.link.settings.device,
            model_pack="dlib-r29-mtcnn",
            gallery_version=1,
            card_direction=direction,
            now=now,
            clock=self.clock,
        )
        self.link.send_event(event)
        return str(event.event_id)

    def wait_drained(self, timeout: float) -> None:
        """Until the server's receipts have emptied the outbox."""
        deadline = time.monotonic() + timeout
        while self.outbox.depth():
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.outbox.depth()} events still in the gate's outbox")
            time.sleep(0.05)

    def close(self) -> None:
        self.link.stop()
        self.outbox.close()

    def __enter__(self) -> SyntheticGate:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
