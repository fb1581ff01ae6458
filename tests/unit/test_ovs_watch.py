"""The OVS agent's watcher (kaon.agent.ovs_manager.OvsManager.watch) outlives a read that races the IDL thread.

Under tempest the watcher thread died on ``AttributeError: Row instance has no
attribute 'type'`` (an Interface row the worker's transaction had just
inserted, read from the IDL cache before its columns arrived); from then on no
plug, unplug or ovs-vswitchd restart woke the agent. A fake OVSDB plays that
race here: the first reads fail as the IDL's do, a later one shows a new port.
"""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace
from typing import Any

from kaon.agent.ovs_config import OvsConfig
from kaon.agent.ovs_manager import WATCH_INTERVAL, OvsManager
from kaon.agent.ovs_plan import OvsAgentOptions


class RacingOvsdb:
    """``ports()`` raises as a racing IDL read does, ``failures`` times, then shows ``plugged``."""

    def __init__(self, failures: list[BaseException]) -> None:
        self.failures = failures
        self.plugged: dict[str, Any] = {}

    def ports(self) -> dict[str, Any]:
        if self.failures:
            raise self.failures.pop(0)
        return dict(self.plugged)


class NoDaemons:
    def vswitchd_identity(self) -> None:
        return None


def test_the_watcher_survives_racing_reads_and_still_wakes_the_agent_on_a_plug() -> None:
    db = RacingOvsdb([AttributeError("Row instance has no attribute 'type'"),
                      RuntimeError("dictionary changed size during iteration")] * 2)
    manager = OvsManager(OvsConfig(OvsAgentOptions()), db, openflow=object(), daemons=NoDaemons())  # type: ignore[arg-type]
    woken = threading.Event()
    stop = manager.watch(woken.set)
    try:
        time.sleep(WATCH_INTERVAL * 8)  # every racing read has happened by now
        assert not db.failures and not woken.is_set()  # an unknown tick is not a change
        db.plugged["tap1"] = SimpleNamespace(name="tap1", ofport=7, bridge="br-int")
        assert woken.wait(WATCH_INTERVAL * 10), "the watcher thread is gone: a plug no longer wakes the agent"
    finally:
        stop()
