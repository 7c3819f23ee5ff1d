"""A TCP proxy between a gate and the broker whose "cable" a test can pull and plug back in.

:meth:`NetCut.cut` makes the network silent the way a dead uplink is: bytes already on their way
vanish, new connections are accepted and then hear nothing, and nobody is told (no FIN, no RST),
so the gate finds out only from its keepalive. :meth:`NetCut.restore` drops every connection that
lived through the silence (as a rebooted router's NAT would) and passes traffic again.
"""

from __future__ import annotations

import contextlib
import socket
import threading


class NetCut:
    """Listens on 127.0.0.1:``port`` and relays to 127.0.0.1:``target_port``."""

    def __init__(self, target_port: int) -> None:
        self._target_port = target_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._up = threading.Event()
        self._up.set()
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, name="netcut-accept", daemon=True).start()

    def cut(self) -> None:
        """Silence: nothing passes either way, and nothing is closed."""
        self._up.clear()

    def restore(self) -> None:
        """Close every connection opened before, then relay normally again."""
        with self._lock:
            stale, self._sockets = self._sockets, []
        for sock in stale:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self._up.set()

    def close(self) -> None:
        self._listener.close()
        self.restore()

    def _accept(self) -> None:
        while True:
            try:
                downstream, _ = self._listener.accept()
            except OSError:
                return
            pair = [downstream]
            if self._up.is_set():
                try:
                    pair.append(socket.create_connection(("127.0.0.1", self._target_port)))
                except OSError:
                    downstream.close()
                    continue
            with self._lock:
                self._sockets += pair
            if len(pair) == 2:
                for source, sink in ((pair[0], pair[1]), (pair[1], pair[0])):
                    threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()
            # else: a connection made during the cut; it hears nothing until restore() closes it

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                if self._up.is_set():
                    sink.sendall(data)
        except OSError:
            pass
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
