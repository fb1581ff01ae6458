"""The fuzz tier: schemathesis cases generated from kaon's own
``/openapi.json`` against a live node on SQLite and on PostgreSQL, each
case sent as an admin and as a member of another project (noauth with
X-Roles: the same policy code as tokens, docs/design/fuzz.md).

Passes when no answer is a 5xx, none takes over 2 s, the node is alive at the end and the objects made
before the run are exactly as they were. Fixed seed; the budget is
``KAON_FUZZ_EXAMPLES`` cases per operation and mode (default 6).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.fixtures.postgres import create_pg_database, drop_pg_database
from tests.fixtures.server import KaonServer, start_kaon_server
from tests.fuzz import seed_data
from tests.fuzz.fuzz_support import ROLES, SLOW, fuzz

EXAMPLES = int(os.environ.get("KAON_FUZZ_EXAMPLES", "6"))


@pytest.fixture(params=[pytest.param("sqlite", id="sqlite"),
                        pytest.param("postgresql", id="pg", marks=pytest.mark.needs_postgres)])
def node(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[KaonServer]:
    url = None
    if request.param == "postgresql":
        url = create_pg_database(request.getfixturevalue("postgres_server"), prefix="fuzz")
    try:
        with start_kaon_server(tmp_path_factory.mktemp("fuzz-node"), url) as srv:
            yield srv
    finally:
        if url is not None:
            drop_pg_database(url)


def test_fuzz_the_api(node: KaonServer) -> None:
    client = node.client()
    made = seed_data.make(client)
    before = seed_data.snapshot(client, made)
    doc = client.get("/openapi.json", headers=ROLES["member"]).json()

    report = fuzz(node.url, doc, examples=EXAMPLES, targets=seed_data.targets(client))

    print(f"\nfuzz: {report.requests} requests in {report.seconds:.1f}s "
          f"({report.waited:.1f}s waiting for answers); statuses {sorted(report.statuses.items())}")
    for line in report.not_generated:
        print(f"not generated: {line}")
    assert not report.findings, f"{len(report.findings)} answers were 5xx, slower than {SLOW}s or none:\n" + \
        "\n".join(str(f) for f in report.findings[:25])
    # Enough was sent to mean something: every operation, both roles.
    ops = sum(len(v) for v in doc["paths"].values())
    assert report.requests >= 2 * ops, report.requests
    assert sum(n for status, n in report.statuses.items() if status < 300) > ops // 2
    # The node is alive and the earlier data intact.
    assert node.proc is not None and node.proc.poll() is None, node.log_tail(50)
    assert client.get("/").status_code == 200
    assert seed_data.snapshot(client, made) == before
