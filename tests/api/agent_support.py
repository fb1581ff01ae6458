"""Helpers for the agent, binding and scheduling API tests: state reports fed
straight to the service (as the bus will), on an app built like the others
(tests.api.core_support)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from kaon.core.agents.agents import ReportResult
from kaon.db.engine import write_txn
from kaon.ml2.binding import utcnow
from tests.api.core_support import Api

TYPES = {"lb": ("Linux bridge agent", "neutron-linuxbridge-agent", "q-agent-notifier"),
         "ovs": ("Open vSwitch agent", "neutron-openvswitch-agent", "q-agent-notifier"),
         "dhcp": ("DHCP agent", "neutron-dhcp-agent", "dhcp_agent"),
         "l3": ("L3 agent", "neutron-l3-agent", "l3_agent"),
         "meta": ("Metadata agent", "neutron-metadata-agent", "N/A")}

# Two agents, both on "compute", each able to carry vxlan and the physnet "provider".
AGENT_CONF = {"ml2": {"mechanism_drivers": "linuxbridge,openvswitch,l2population"}}


def services(api: Api) -> Any:
    return api.app.app.state.services


def ago(seconds: float) -> dt.datetime:
    return utcnow() - dt.timedelta(seconds=seconds)


def report(api: Api, kind: str, host: str, now: dt.datetime | None = None, zone: str | None = None,
           start: bool = False, health: dict[str, Any] | None = None, **configurations: Any) -> ReportResult:
    agent_type, binary, topic = TYPES[kind]
    body: dict[str, Any] = {"agent_type": agent_type, "binary": binary, "topic": topic, "host": host,
                            "configurations": configurations, "start_flag": start}
    if health is not None:
        body["health"] = health
    if zone is not None:
        body["availability_zone"] = zone
    svc = services(api)
    with write_txn(svc.engine) as conn:
        return svc.agents.report_state(conn, body, now)


def sweep(api: Api, now: dt.datetime | None = None) -> list[tuple[str, str]]:
    svc = services(api)
    with write_txn(svc.engine) as conn:
        return svc.scheduler.reschedule_dead_dhcp(conn, now or utcnow())
