"""benchmarks/nft_cost_bench.py: the ``--paired`` ratio and the ablations' rulesets (pure parts)."""

from __future__ import annotations

from types import ModuleType

import pytest

from tests.unit.benchmark_module import load


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return load("nft_cost_bench.py")


def test_paired_ratio_cancels_a_difference_between_the_two_copies(bench: ModuleType) -> None:
    # World A costs 4 % more than B; copy Y is 10 % slower than copy X; the machine is 20 % slower in
    # the second half of the round. The ratio sees only A's 4 %.
    a, b, y_slower, later = 1 / 1.04, 1.0, 0.9, 0.8
    x1, y1 = 10 * a, 10 * b * y_slower
    x2, y2 = 10 * b * later, 10 * a * y_slower * later
    assert bench.paired_ratio(x1, y1, x2, y2) == pytest.approx(a)
    assert bench.paired_ratio(5.0, 5.0, 5.0, 5.0) == 1.0


@pytest.mark.parametrize("per_device", [True, False])
def test_ablations_turn_exactly_one_hook_into_an_ordinary_chain(bench: ModuleType, per_device: bool) -> None:
    full = bench.kaon_ruleset("h2", True, per_device=per_device)
    antispoof = "ingress device" if per_device else "hook prerouting"
    assert full.count("type filter hook") == 3  # anti-spoofing, bridge forward, inet forward
    no_spoof = bench.WITHOUT["no-antispoofing-hook"](full)
    assert antispoof not in no_spoof and no_spoof.count("type filter hook") == 2
    assert "chain from-tap-vm2" in no_spoof and "ether saddr fa:16:3e:00:01:02" in no_spoof  # the rules stay
    no_forward = bench.WITHOUT["no-forward-hook"](full)
    assert "hook forward priority filter" not in no_forward
    assert "hook forward priority 0" in no_forward and no_forward.count("type filter hook") == 2
    assert "oifname vmap @to_port" in no_forward
