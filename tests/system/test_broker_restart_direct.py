"""The broker restarted during a burst, with one ingest worker on a direct subscription
(``mqtt.share_group = ''``): Mosquitto restores a direct subscription of a persistent session
from its persistence file, so what gates publish before the worker is back waits for it.

Compare test_faults.test_broker_restarted_during_a_burst (two workers on a shared subscription):
Mosquitto does not restore shared subscriptions and drops those events, and the gates send them
again for want of the server's receipt.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.system.harness import PASSES, System, walk


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    tmp = tmp_path_factory.mktemp("system-direct")
    running = System(tmp, f"sqlite:///{tmp / 'campusgate.db'}", workers=1, share_group="")
    yield running
    running.close()


def test_broker_restarted_during_a_burst_with_one_direct_worker(system: System) -> None:
    batch = system.enroll("BD", PASSES)
    third = PASSES // 3
    with system.gate("gate-1") as gate:
        sent = walk(gate, batch.codes[:third])
        system.broker.stop()
        sent += walk(gate, batch.codes[third : 2 * third], interval_s=2.0 / third)
        system.broker.start()
        sent += walk(gate, batch.codes[2 * third :])
        gate.wait_drained(60)
        assert gate.link.stats.reconnects >= 1
    tally = system.settle("broker restarted (1 worker, direct subscription)", batch, sent)
    tally.assert_nothing_lost_or_doubled()
