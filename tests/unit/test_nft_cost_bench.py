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
def test_the_antispoofing_ablation_turns_exactly_that_hook_into_an_ordinary_chain(bench: ModuleType,
                                                                                  per_device: bool) -> None:
    full = bench.kaon_ruleset("h2", True, per_device=per_device)
    antispoof = "ingress device" if per_device else "hook prerouting"
    # per device: anti-spoofing, the tap's egress hook, inet forward; otherwise with the bridge forward hook
    assert full.count("type filter hook") == 3 and antispoof in full
    assert ("hook egress device" in full) is per_device and ("hook forward priority filter" in full) is not per_device
    no_spoof = bench.WITHOUT["no-antispoofing-hook"](full)
    assert antispoof not in no_spoof and no_spoof.count("type filter hook") == 2
    assert "chain from-tap-vm2" in no_spoof and "ether saddr fa:16:3e:00:01:02" in no_spoof  # the rules stay


def test_the_forward_hook_world_is_kaons_ruleset_with_the_receiver_named_by_the_bridge(bench: ModuleType) -> None:
    by_mac = bench.kaon_ruleset("h2", True, per_device=True)
    forward = bench.kaon_ruleset("h2", True, per_device=True, by_mac=False)
    assert '"brq-net1" . fa:16:3e:00:01:02 : goto in-tap-vm2' in by_mac and "hook forward priority filter" not in by_mac
    assert "hook forward priority filter" in forward and "hook egress device" not in forward
    assert "in_port" in forward and "in_mac" not in forward


def test_the_stateless_forward_hook_world_judges_what_the_port_receives_at_the_bridge(bench: ModuleType) -> None:
    tap = bench.kaon_ruleset("h2", False, per_device=True)
    forward = bench.kaon_ruleset("h2", False, per_device=True, by_mac=False)
    assert 'hook egress device "tap-vm2"' in tap and "hook forward priority filter" not in tap
    assert "hook forward priority filter" in forward and "hook egress device" not in forward
    assert '"tap-vm2" : jump to-tap-vm2' in forward and "ct " not in tap
