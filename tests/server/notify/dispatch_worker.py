"""A dispatcher in a process of its own, for test_dispatcher to kill in the middle of a send.

``python -m tests.server.notify.dispatch_worker DB_URL ESMS_URL``: one pass over the outbox with
an eSMS channel at ESMS_URL (whose local server never answers, so the process is still waiting
for the provider when the test sends SIGKILL).
"""

from __future__ import annotations

import sys

from server.db import create_db_engine
from server.notify.channels.esms import EsmsChannel, EsmsConfig
from server.notify.dispatcher import ChannelBook, Dispatcher
from tests.server.notify.family import SETTINGS
from tests.server.notify.test_esms import API_KEY, BRANDNAME, SECRET_KEY


def main() -> None:
    url, esms_url = sys.argv[1:3]
    config = EsmsConfig(
        url=esms_url, api_key=API_KEY, secret_key=SECRET_KEY, brandname=BRANDNAME, timeout_s=60
    )
    channels = ChannelBook({"sms": EsmsChannel("sms", config)})
    with Dispatcher(create_db_engine(url), channels, SETTINGS) as dispatcher:
        dispatcher.run_once()
    sys.exit("the provider answered; the test meant to kill this process before it did")


if __name__ == "__main__":
    main()
