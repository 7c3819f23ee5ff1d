"""The web server (uvicorn) of ``campusgate server run``, in one process or several.

One Python process serves about 80 authenticated roll requests a second on one core. A school
with many teachers refreshing at once, or a district, runs several web processes on the same
port (``http.workers``); the ingest workers, the dispatcher and the jobs stay in the supervising
process. The listening socket is made here, with ``IPPROTO_TCP``, rather than by uvicorn's own
``--workers``: a socket uvicorn binds reports protocol 0, asyncio then leaves Nagle's algorithm
on for every accepted connection, and each keep-alive request waits ~40 ms for a delayed ACK
(Kludex/uvicorn#3149). With ``http.tls_certfile``/``tls_keyfile`` set, every process speaks
HTTPS on that socket.
"""

from __future__ import annotations

import socket

import uvicorn
from uvicorn.supervisors import Multiprocess

from campusgate.logs import logging_dict
from server.core.config import HttpSection

SHUTDOWN_GRACE_S = 5
"""Open live-roll streams (SSE) never end by themselves: without a limit, stopping the server
would wait for every teacher to close the page."""


def web_config(http: HttpSection, log_level: str = "info") -> uvicorn.Config:
    """uvicorn's settings for ``server.main:app``. One process keeps the logging campusgate set
    up; each of several is set up the same way (campusgate's key=value lines)."""
    certfile, keyfile = http.tls or (None, None)
    return uvicorn.Config(
        "server.main:app",
        host=http.host,
        port=http.port,
        workers=http.workers,
        log_config=logging_dict(log_level) if http.workers > 1 else None,
        timeout_graceful_shutdown=SHUTDOWN_GRACE_S,
        ssl_certfile=certfile,
        ssl_keyfile=keyfile,
    )


def listening_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` that says it is TCP, so accepted connections get
    TCP_NODELAY; shared by every web process."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


def serve(http: HttpSection, log_level: str = "info") -> None:
    """Serve until SIGINT/SIGTERM: in this process, or in ``http.workers`` child processes."""
    config = web_config(http, log_level)
    if http.workers == 1:
        uvicorn.Server(config).run()
        return
    sock = listening_socket(http.host, http.port)
    try:
        Multiprocess(config, sockets=[sock]).run()
    finally:
        sock.close()


if __name__ == "__main__":
    # The web part alone, on the CAMPUSGATE_SERVER__HTTP__… settings: for the benchmarks and
    # tests that measure or check it without ingest, the dispatcher and the jobs.
    from server.core.config import get_settings

    serve(get_settings().http)
