"""PostgreSQL restarted while students pass: ingest and the dispatcher wait for it and lose
nothing. The cluster is a private one (tests/system/postgres.py), never the machine's shared
server."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from server.db import create_database
from tests.system.harness import PASSES, System, walk
from tests.system.postgres import ClusterUnavailable, PrivateCluster


@pytest.fixture(scope="module")
def cluster() -> Iterator[PrivateCluster]:
    try:
        running = PrivateCluster()
    except ClusterUnavailable as exc:
        pytest.skip(f"no private PostgreSQL cluster: {exc}")
    yield running
    running.close()


@pytest.fixture(scope="module")
def system(cluster: PrivateCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    url = create_database(cluster.url, f"cg_system_{secrets.token_hex(4)}")
    running = System(tmp_path_factory.mktemp("system-pg"), url)
    yield running
    running.close()


def test_postgresql_restarted_while_students_pass(system: System, cluster: PrivateCluster) -> None:
    batch = system.enroll("DB", PASSES)
    with system.gate("gate-7") as gate:
        sent = walk(gate, batch.codes, at={PASSES // 2: cluster.restart})
        gate.wait_drained(60)
    system.settle("PostgreSQL restarted", batch, sent).assert_nothing_lost_or_doubled()
