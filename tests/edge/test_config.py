"""A gate's configuration is validated at start, with every bad field named."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.cards.reader import make_reader
from edge.config import ConfigError, load_config


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gate.toml"
    path.write_text(text)
    return path


def test_a_minimal_config_gets_safe_defaults_and_paths_beside_the_file(tmp_path) -> None:
    config = load_config(
        write(
            tmp_path,
            """
[device]
site = "school-a"
device = "gate-1"
[broker]
ca_file = "ca.crt"
[storage]
data_dir = "data"
""",
        )
    )
    assert config.username == "school-a.gate-1"
    assert config.broker.ca_file == tmp_path / "ca.crt"
    assert config.storage.data_dir == tmp_path / "data"
    assert config.recognition.pack == "dlib-r29-mtcnn" and config.gate.direction == "in"


def test_bad_fields_are_all_named(tmp_path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(
            write(
                tmp_path,
                """
[device]
site = "School A"
device = "gate-1"
[broker]
port = 70000
[recognition]
detect_fps = 0
[gate]
direction = "line"
[camera]
sorce = "0"
""",
            )
        )
    message = str(caught.value)
    for expected in (
        "device.site: String should match pattern",
        "broker.port: Input should be less than or equal to 65535",
        "recognition.detect_fps: Input should be greater than 0",
        "crossing_line is required",
        "camera.sorce: Extra inputs are not permitted",
    ):
        assert expected in message


def test_environment_overrides_the_file(tmp_path, monkeypatch) -> None:
    path = write(tmp_path, '[device]\nsite = "s"\ndevice = "d"\n[broker]\npassword = "old"\n')
    monkeypatch.setenv("CAMPUSGATE_EDGE__BROKER__PASSWORD", "from-env")
    assert load_config(path).broker.password.get_secret_value() == "from-env"


def test_unreadable_and_invalid_toml_files(tmp_path) -> None:
    with pytest.raises(ConfigError, match="No such file"):
        load_config(tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(tmp_path, "[device\nsite="))


def test_a_client_certificate_needs_its_key(tmp_path) -> None:
    with pytest.raises(ConfigError, match="broker: client_cert and client_key go together"):
        load_config(
            write(
                tmp_path, '[device]\nsite = "s"\ndevice = "d"\n[broker]\nclient_cert = "gate.crt"\n'
            )
        )


READER_GATE = """
[device]
site = "school-a"
device = "gate-1"
"""


def test_a_gate_s_reader_section_is_checked_at_start_with_each_field_named(tmp_path) -> None:
    path = tmp_path / "gate.toml"
    path.write_text(
        READER_GATE + '[reader]\nkind = "pn532"\nport = "/dev/serial0"\n[reader.options]\n'
        "passive_retries = 255\ncard_types = ['A', 'B']\n"
    )

    with pytest.raises(ConfigError, match=r"reader: options.passive_retries: .* 254"):
        load_config(path)

    path.write_text(READER_GATE + '[reader]\nkind = "rdm6300"\nport = "/dev/ttyUSB0"\n')
    config = load_config(path)
    assert config.reader is not None and make_reader(config.reader).baudrate == 9600
    assert config.gate.face_window_s == 5.0


def test_a_line_gate_must_say_which_way_card_taps_go(tmp_path) -> None:
    path = tmp_path / "gate.toml"
    reader = '[reader]\nkind = "line"\nport = "/dev/ttyACM0"\n'
    line_gate = '[gate]\ndirection = "line"\ncrossing_line = [0.5, 0.0, 0.5, 1.0]\n'
    path.write_text(READER_GATE + line_gate + reader)

    with pytest.raises(ConfigError, match=r"gate.toml: reader.direction is required"):
        load_config(path)

    path.write_text(READER_GATE + line_gate + reader + 'direction = "in"\n')
    assert load_config(path).reader.direction == "in"
