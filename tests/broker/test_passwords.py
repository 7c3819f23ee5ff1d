"""Password entries are Mosquitto's own format, checked both ways against mosquitto_passwd."""

from __future__ import annotations

import subprocess

import pytest

from broker.passwords import hash_password, new_password, verify_password, write_password_file
from tests.fixtures.mosquitto import mosquitto_binary


def test_hash_verifies_and_differs_per_salt() -> None:
    password = new_password()
    first, second = hash_password(password), hash_password(password)
    assert first != second
    assert verify_password(password, first) and verify_password(password, second)
    assert not verify_password(password + "x", first)
    assert not verify_password(password, "$6$garbage")
    assert not verify_password(password, "not a hash")


def test_reads_entries_made_by_mosquitto_passwd(tmp_path) -> None:
    tool = mosquitto_binary().replace("sbin/mosquitto", "bin/mosquitto_passwd")
    path = tmp_path / "passwd"
    subprocess.run([tool, "-c", "-b", str(path), "gate", "s3cret"], check=True)
    _, encoded = path.read_text().strip().split(":", 1)
    assert verify_password("s3cret", encoded)
    assert not verify_password("s3cre", encoded)


def test_password_file_is_private_and_refuses_bad_usernames(tmp_path) -> None:
    path = tmp_path / "passwd"
    write_password_file(path, {"b.gate": hash_password("x"), "a.gate": hash_password("y")})
    assert path.stat().st_mode & 0o777 == 0o600
    assert [line.split(":")[0] for line in path.read_text().splitlines()] == ["a.gate", "b.gate"]
    with pytest.raises(ValueError, match="cannot be stored"):
        write_password_file(path, {"evil:user": "h"})
    assert len(path.read_text().splitlines()) == 2  # unchanged
