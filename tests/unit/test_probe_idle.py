"""The VXLAN prober waits when it has nothing to listen on (an OVS host before its first peer is
wired: no probe device, no socket) instead of spinning its loop, which took the agent's CPU and
made every bind on an OVS host ten times slower."""

from __future__ import annotations

import time
from typing import Any

from kaon.agent.probe import VxlanProber


class NoPeerEndpoint:
    always = False

    def ensure(self, peers: set[str], mtu: int) -> set[str]:
        return set()  # nothing wired yet

    def close(self) -> None:
        pass


def test_a_prober_without_a_socket_waits_out_its_rounds() -> None:
    prober = VxlanProber("10.0.0.1", None, lambda: {"10.0.0.2"}, interval=0.5, endpoint=NoPeerEndpoint())
    calls = 0
    receive = prober._receive

    def counting(timeout: float) -> Any:
        nonlocal calls
        calls += 1
        return receive(timeout)

    prober._receive = counting  # type: ignore[method-assign]
    prober.start()
    try:
        time.sleep(1.2)
    finally:
        prober.close()
    assert prober._sock is None and prober.error is None
    assert 1 <= calls <= 6, f"{calls} loop iterations in 1.2 s with a 0.5 s interval: the loop spins"
