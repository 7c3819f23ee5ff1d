"""The system tests' child processes: an ingest worker, a dispatcher and a gate, each as a
deployment runs it, so that a test can SIGKILL one and start it again.

``python -m tests.system.processes ingest INDEX`` / ``dispatch`` / ``gate DEVICE OUTBOX CODES``.
Settings and secrets come from the environment (``CG_SYSTEM``, JSON), never the command line.
Each prints ``ready`` once it is up; SIGTERM stops it cleanly. A gate prints ``put <event_id>``
as soon as each event is durable in its outbox (what the gate has "sent" even if it dies the
next moment), then ``drained`` once the server's receipts have emptied its outbox.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path

from pydantic import SecretStr

from server.core.config import MqttSection, ServerSettings
from server.db import create_db_engine
from server.ingest import run_worker
from server.notify.dispatcher import dispatch_loop
from server.notify.settings import NotifySection
from tests.system.gates import SyntheticGate, gate_settings


def _stop_on_sigterm() -> threading.Event:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    return stop


def ingest(config: dict, index: int) -> None:
    settings = ServerSettings(
        database_url=config["db_url"],
        mqtt=MqttSection(
            port=config["mqtt_port"],
            password=SecretStr(config["mqtt_password"]),
            client_id="system-ingest",
            share_group=config.get("share_group", "ingest"),
        ),
    )
    stop = _stop_on_sigterm()
    run_worker(
        settings, index, stop, on_ready=lambda ok: print("ready" if ok else "not subscribed")
    )


def dispatch(config: dict) -> None:
    stop = _stop_on_sigterm()
    engine = create_db_engine(config["db_url"])
    print("ready", flush=True)
    dispatch_loop(engine, NotifySection.model_validate(config["notify"]), stop)


def gate(config: dict, device: str, outbox: Path, codes: list[str]) -> None:
    password = config["gate_passwords"][device]
    settings = gate_settings(config["gate_port"], device, password, config["ca"])
    with SyntheticGate(settings, outbox) as synthetic:
        if not synthetic.link.wait_connected(20):
            sys.exit("the gate never connected")
        print("ready", flush=True)
        for code in codes:
            print(f"put {synthetic.pass_student(code)}", flush=True)
            time.sleep(config.get("pass_interval_s", 0.0))
        synthetic.wait_drained(60)
        print("drained", flush=True)
        _stop_on_sigterm().wait()


def main() -> None:
    sys.stdout.reconfigure(line_buffering=True)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(processName)s %(name)s %(levelname)s %(message)s"
    )
    config = json.loads(os.environ["CG_SYSTEM"])
    role, *args = sys.argv[1:]
    if role == "ingest":
        ingest(config, int(args[0]))
    elif role == "dispatch":
        dispatch(config)
    elif role == "gate":
        gate(config, args[0], Path(args[1]), args[2].split(",") if args[2] else [])
    else:
        sys.exit(f"unknown role {role!r}")


if __name__ == "__main__":
    main()
