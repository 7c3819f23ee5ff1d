"""An ingest worker that dies right before its first commit, as a power cut would kill it.

Run by test_ingest in a child process: ``python -m tests.server.crash_worker DB_URL PORT
PASSWORD CLIENT_ID``. It prints ``ready`` once subscribed, and exits with status 17 (without
cleaning up, without a DISCONNECT) at the moment it would have committed.
"""

from __future__ import annotations

import os
import sys
import threading

from pydantic import SecretStr
from sqlmodel import Session

from server.core.config import MqttSection, ServerSettings
from server.db import create_db_engine
from server.ingest import IngestWorker

CRASH_STATUS = 17


def main() -> None:
    url, port, password, client_id = sys.argv[1:5]
    Session.commit = lambda self: os._exit(CRASH_STATUS)  # this process only
    settings = ServerSettings(
        database_url=url,
        mqtt=MqttSection(port=int(port), password=SecretStr(password), client_id=client_id),
    )
    worker = IngestWorker(settings, create_db_engine(url))
    worker.start()
    if not worker.wait_subscribed(10):
        sys.exit("not subscribed")
    print("ready", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
