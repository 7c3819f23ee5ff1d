"""Log lines are one greppable line each, with extra fields as key=value."""

from __future__ import annotations

import logging

from campusgate.logs import KeyValueFormatter


def test_extra_fields_become_key_value_pairs() -> None:
    record = logging.makeLogRecord(
        {
            "name": "server.ingest",
            "levelname": "WARNING",
            "msg": "rejected payload",
            "topic": "cg/v1/s/d/events",
            "reason": 'score: "bad"\nvalue',
            "count": 3,
        }
    )
    line = KeyValueFormatter().format(record)
    assert "\n" not in line
    _, level, logger, rest = line.split(" ", 3)
    assert (level, logger) == ("warning", "server.ingest")
    assert rest.startswith('"rejected payload" ')
    assert "topic=cg/v1/s/d/events" in rest
    assert 'reason="score: \\"bad\\"\\nvalue"' in rest
    assert rest.endswith("count=3")
