"""benchmarks/dataplane_bench.py: ``--quiet``'s wait for a quiet machine before each run, and the
interval ``--concurrent`` (and nft_cost_bench's ``--paired``) print."""

from __future__ import annotations

import math
import time
from types import ModuleType

import pytest

from tests.unit.benchmark_module import load


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return load("dataplane_bench.py")


def test_busy_fraction_is_a_share_of_all_cpus(bench: ModuleType) -> None:
    assert 0.0 <= bench.busy_fraction(0.1) <= 1.0


def test_settle_stops_at_its_limit_on_a_machine_that_never_gets_quiet_enough(bench: ModuleType) -> None:
    t0 = time.monotonic()
    waited = bench.settle(0.35, window=0.1, busy=-1.0)  # nothing is ever below -100 % busy
    assert 0.35 <= waited < 1.0 and time.monotonic() - t0 >= 0.35


def test_settle_returns_after_one_window_when_the_machine_is_quiet(bench: ModuleType) -> None:
    assert bench.settle(5.0, window=0.1, busy=1.01) < 0.5  # any machine is below 101 % busy


def test_summary_gives_the_mean_an_interval_and_the_median(bench: ModuleType) -> None:
    text = bench.summary([0.96, 0.98, 1.00])
    half = 1.96 * 0.02 / math.sqrt(3)
    assert text == f"0.980 +- {half:.3f} (95 %), median 0.980, n = 3"
    assert "+- inf" in bench.summary([0.97])


def test_received_gbit_reads_iperf3s_report_or_says_it_has_none(bench: ModuleType) -> None:
    report = '{"end": {"sum_received": {"bits_per_second": 12.5e9, "bytes": 1}}}'
    assert bench.received_gbit(report) == 12.5
    assert bench.received_gbit("") is None
    assert bench.received_gbit('{"error": "unable to connect to server"}') is None
