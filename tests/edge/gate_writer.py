"""A gate process for the tests that kill one: it records events through GateLink and says so.

Run as a script by tests/edge/test_link.py. It connects (printing ``connected``), then stores
``--count`` card events through :meth:`GateLink.send_event`, printing ``put <event_id>`` once each
is durable in the outbox, while the link publishes them. Then it waits for the outbox to drain
(printing ``drained``) and, with ``--hold``, stays connected until it is killed. The password
comes from the environment (``CG_GATE_PASSWORD``), not the command line.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
import uuid
from pathlib import Path

from broker.payloads import Event, utc_now
from edge.link import GateLink, LinkSettings
from edge.outbox import Outbox


def card_event(site: str, device: str) -> Event:
    """A valid card event of this gate with a fresh event_id."""
    return Event(
        event_id=uuid.uuid4(),
        kind="card",
        ts=utc_now(),
        site=site,
        device=device,
        direction="in",
        card_uid="04A1B2C3D4E5F6",
        latency_ms=5.0,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--outbox", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ca-file", type=Path, required=True)
    parser.add_argument("--site", default="school-a")
    parser.add_argument("--device", default="gate-1")
    parser.add_argument("--count", type=int, default=0)
    parser.add_argument("--inflight", type=int, default=20)
    parser.add_argument("--hold", action="store_true")
    args = parser.parse_args()

    settings = LinkSettings(
        host="127.0.0.1",
        port=args.port,
        site=args.site,
        device=args.device,
        password=os.environ["CG_GATE_PASSWORD"],
        ca_file=args.ca_file,
        inflight=args.inflight,
        reconnect_min_delay_s=0.1,
        reconnect_max_delay_s=0.5,
    )
    outbox = Outbox(args.outbox)
    link = GateLink(
        settings,
        outbox,
        version="0.1.0",
        on_config=lambda _config: None,
        on_gallery=lambda _notice: None,
        on_command=lambda _command: {},
    )
    link.start()
    if not link.wait_connected(10):
        print("not connected", flush=True)
        return 1
    print("connected", flush=True)
    for _ in range(args.count):
        event = card_event(args.site, args.device)
        link.send_event(event)
        print(f"put {event.event_id}", flush=True)
    while outbox.depth():
        time.sleep(0.01)
    print("drained", flush=True)
    if args.hold:
        threading.Event().wait()
    link.stop()
    outbox.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
