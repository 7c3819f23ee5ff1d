"""Rendering the Mosquitto instance, and reading back what later commands need from it."""

from __future__ import annotations

from pathlib import Path

import pytest

from broker.mosquitto_config import MosquittoLayout, render_mosquitto, rendered_plain_port


def test_the_plain_port_is_read_back_from_the_rendered_conf(tmp_path: Path) -> None:
    """gatectl signs in there as the server after a sync, knowing only the directory, even when
    the gates' TLS listener is on loopback too."""
    rendered = MosquittoLayout(tmp_path, plain_port=18830, tls_port=18831, tls_bind="127.0.0.1")
    render_mosquitto(rendered, [], {})
    assert rendered_plain_port(MosquittoLayout(tmp_path)) == 18830


def test_a_conf_without_the_loopback_listener_is_refused(tmp_path: Path) -> None:
    layout = MosquittoLayout(tmp_path)
    with pytest.raises(FileNotFoundError):
        rendered_plain_port(layout)
    layout.conf_file.write_text("listener 8883 0.0.0.0\n")
    with pytest.raises(ValueError, match="no listener on 127.0.0.1"):
        rendered_plain_port(layout)
