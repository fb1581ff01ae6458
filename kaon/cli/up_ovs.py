"""``kaon up``'s local agent on Open vSwitch: which agent, which OVS, and a private OVS started by pid.

**Which agent.** The local agent is the Open vSwitch agent when the files are
an OVS agent's (an ``[ovs]`` section or a file named openvswitch_agent.ini,
as for ``kaon agent``), or when ``[ml2] mechanism_drivers`` names
``openvswitch`` before ``linuxbridge`` (``kaon up --mechanism openvswitch``
writes that order into ``kaon.conf``). Its options then come from
``<state>/openvswitch_agent.ini`` (written once, edit freely), read after
``kaon.conf`` and before the user's ``--config-file``\\ s. That file is only
given to this node's own agent: ``kaon.conf`` is also what lab hosts and other
agents read, and an ``[ovs]`` section in it would turn all of them into OVS
agents.

**Which OVS** (:func:`prepare`):

* ``[ovs] ovsdb_connection`` set: that OVS, as the operator runs it;
* otherwise, when the agent works on this machine's own namespace and the
  system's ovsdb-server answers on ``unix:/var/run/openvswitch/db.sock``: the
  system OVS -- never a second one beside it;
* otherwise a private ovsdb-server + ovs-vswitchd (kaon.dataplane.ovs_daemons),
  started by pid in the agent's namespace, with the userspace datapath
  (``datapath_type = netdev`` unless the files say otherwise) and their rundir
  and database under ``<state>/ovs`` (or ``/run/kaon-ovs/<hash>`` when that path
  is too long for unix sockets). A system OVS cannot serve an agent in an
  ``[agent] namespace``: the DHCP and router veths are made there, where the
  system ovs-vswitchd cannot open them.

What this node made is recorded in ``<state>/ovs.json`` for ``kaon down``
(:func:`clean_ovs`): the private daemons are stopped by their pids (checked
against the recorded start times) and their rundir removed -- their bridges go
with them; on an OVS kaon did not start, only the bridges kaon made (the
agent's ``kaon-owner`` bridges that did not exist before this node first ran,
and the ``bridge_mappings`` bridges ``kaon up`` created), kaon-owned ports on
the bridges that stay, and flows with kaon's cookie there are removed.

Two nodes on one machine: two userspace-datapath OVS in one namespace cannot
both open the datapath (the second's ``ovs-netdev`` device is refused), so a
second private OVS where one runs is refused with a line that says to give the
node its own ``[agent] namespace``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from kaon.agent.ovs_config import DEFAULT_OVSDB, ovs_selected
from kaon.config import Config, parse_mapping
from kaon.dataplane.ovs_daemons import OvsDaemonError, OvsDaemons
from kaon.dataplane.ovs_model import KAON_COOKIE, OWNER_KEY, OWNER_VALUE

__all__ = ["AGENT_INI", "RECORD", "UpOvsError", "clean_ovs", "local_mechanism", "prefer", "prepare",
           "write_agent_ini"]

LINUXBRIDGE, OPENVSWITCH = "linuxbridge", "openvswitch"
AGENT_INI = "openvswitch_agent.ini"
RECORD = "ovs.json"
PRIVATE_DIR = "ovs"
SHORT_ROOT = Path("/run/kaon-ovs")  # when <state>/ovs is too long for unix socket paths
DAEMONS = ("ovsdb-server", "ovs-vswitchd")

AGENT_INI_TEXT = """\
# Written by `kaon up` on the first start of its local agent on Open vSwitch
# (Neutron's openvswitch_agent.ini names); edit freely. Read after kaon.conf,
# for this node's own agent only.
[ovs]
integration_bridge = br-int
tunnel_bridge = br-tun
# The bridge of the install guide's "provider" network. kaon up makes it when it
# is missing (empty: add the external NIC with ovs-vsctl add-port br-ex eth1).
bridge_mappings = provider:br-ex
local_ip = 127.0.0.1
# ovsdb_connection: unset, kaon up uses the system's OVS (unix:/var/run/openvswitch/db.sock)
# when it answers, and otherwise starts a private one by pid under the state directory
# (datapath_type = netdev, the userspace datapath, unless set here).

[agent]
tunnel_types = vxlan
l2_population = true
arp_responder = true

[securitygroup]
firewall_driver = openvswitch
"""


class UpOvsError(Exception):
    """The local Open vSwitch agent cannot get an OVS to program; the message says why and what to do."""


def local_mechanism(cfg: Config) -> str:
    """The L2 agent ``kaon up`` runs: the files' (an OVS agent's?), else the first of the two in mechanism_drivers."""
    if ovs_selected(cfg):
        return OPENVSWITCH
    return next((m for m in cfg.ml2.mechanism_drivers if m in (LINUXBRIDGE, OPENVSWITCH)), LINUXBRIDGE)


def prefer(drivers: str, mechanism: str) -> str:
    """``[ml2] mechanism_drivers`` with ``mechanism`` first among the L2 drivers (the others kept, in order)."""
    names = [d.strip() for d in drivers.split(",") if d.strip()]
    rest = [d for d in names if d != mechanism]
    return ",".join([mechanism, *rest])


def write_agent_ini(state: Path) -> Path:
    """``<state>/openvswitch_agent.ini``, written with kaon up's defaults when missing."""
    path = state / AGENT_INI
    if not path.exists():
        path.write_text(AGENT_INI_TEXT)
    return path


def private_rundir(state: Path) -> Path:
    candidate = state / PRIVATE_DIR
    try:
        OvsDaemons(candidate)
        return candidate
    except OvsDaemonError:  # too long for the daemons' unix sockets
        return SHORT_ROOT / hashlib.sha256(str(state).encode()).hexdigest()[:12]


def prepare(cfg: Config, state: Path, namespace: str | None) -> tuple[dict[str, dict[str, str]], str]:
    """Find or start the OVS the local agent programs: config overrides for the agent, and a line about it."""
    record = _read(state)
    explicit = (cfg.get("ovs", "ovsdb_connection") or "").strip()
    if explicit:
        if not _answers(explicit):  # the agent's start retries it, then says so (kaon.cli.agent.ovs_preflight)
            return {}, f"OVS at {explicit} (not answering)"
        _make_mapped_bridges(cfg, explicit, record, state, env=None)
        return {}, f"OVS at {explicit}"
    if namespace is None and record.get("kind") != "private" and _answers(DEFAULT_OVSDB):
        if subprocess.run(["ovs-appctl", "--timeout=2", "-t", "ovs-vswitchd", "version"], capture_output=True,
                          check=False).returncode != 0:
            # Its bridges would get no datapath; starting a private pair beside it would be a second OVS.
            raise UpOvsError(f"the system's ovsdb-server answers on {DEFAULT_OVSDB} but its ovs-vswitchd does "
                             "not: start it (/usr/share/openvswitch/scripts/ovs-ctl start)")
        _make_mapped_bridges(cfg, DEFAULT_OVSDB, record, state, env=None)
        return {}, f"the system's OVS at {DEFAULT_OVSDB}"
    return _start_private(cfg, state, namespace, record)


def _start_private(cfg: Config, state: Path, namespace: str | None,
                   record: dict[str, Any]) -> tuple[dict[str, dict[str, str]], str]:
    rundir = Path(record["rundir"]) if record.get("kind") == "private" else private_rundir(state)
    daemons = OvsDaemons(rundir, netns=namespace)
    if daemons.pid("ovs-vswitchd") is None and _link_exists(namespace, "ovs-netdev"):
        where = f"namespace {namespace}" if namespace else "this machine's namespace"
        raise UpOvsError(
            f"another Open vSwitch with the userspace datapath already runs in {where} (device ovs-netdev), "
            "and a second one there cannot open its datapath: give this node's agent a namespace of its own "
            "([agent] namespace), or point it at that OVS with [ovs] ovsdb_connection")
    try:
        daemons.start()
        daemons.wait_ready()
    except OvsDaemonError as exc:
        raise UpOvsError(f"cannot start a private Open vSwitch in {rundir}: {exc}") from exc
    datapath = (cfg.get("ovs", "datapath_type") or "").strip() or "netdev"
    record = {"kind": "private", "rundir": str(rundir), "netns": namespace, "db": daemons.db_remote,
              "pids": {d: _identity(daemons, d) for d in DAEMONS}}
    _write(state, record)
    _make_mapped_bridges(cfg, daemons.db_remote, record, state, env=daemons.env(), datapath=datapath)
    pids = ", ".join(f"{d} pid {record['pids'][d][0]}" for d in DAEMONS)
    overrides = {"ovs": {"ovsdb_connection": daemons.db_remote, "datapath_type": datapath}}
    return overrides, f"a private OVS ({pids}; {rundir}; datapath {datapath})"


def _make_mapped_bridges(cfg: Config, db: str, record: dict[str, Any], state: Path, env: dict[str, str] | None,
                         datapath: str | None = None) -> None:
    """Make the bridges of ``bridge_mappings`` that are missing (recorded as kaon up's), and remember which
    bridges an OVS kaon did not start had before this node first ran."""
    existing = _vsctl(db, env, "list-br").split()
    if record.get("kind") != "private" and "preexisting" not in record:
        record = {"kind": "external", "db": db, "preexisting": sorted(existing), "made": []}
    mappings: dict[str, str] = cfg.get_typed("ovs", "bridge_mappings", parse_mapping, {})
    datapath = datapath or (cfg.get("ovs", "datapath_type") or "").strip() or "system"
    made = list(record.get("made", []))
    for bridge in sorted(set(mappings.values()) - set(existing)):
        _vsctl(db, env, "--may-exist", "add-br", bridge, "--", "set", "bridge", bridge,
               f"datapath_type={datapath}", "fail_mode=standalone")
        made.append(bridge)
    record["made"] = sorted(set(made))
    _write(state, record)


def clean_ovs(state: Path) -> list[str]:
    """Undo what the node on ``state`` did to OVS (see the module docstring); what was removed."""
    record = _read(state)
    if not record:
        return []
    removed: list[str] = []
    if record.get("kind") == "private":
        daemons = OvsDaemons(record["rundir"], netns=record.get("netns"))
        for daemon in ("ovs-vswitchd", "ovsdb-server"):  # vswitchd first: it needs the database to exit cleanly
            pid = daemons.pid(daemon)
            if pid is None or [pid, _start_ticks(pid)] != list(record["pids"].get(daemon) or []):
                continue  # not running, or not the process this node started
            if daemon == "ovs-vswitchd":
                # A plain SIGTERM leaves the userspace datapath's devices (ovs-netdev, one tap per
                # bridge) behind; "exit --cleanup" deletes them first.
                subprocess.run(["ovs-appctl", "--timeout=10", "-t", "ovs-vswitchd", "exit", "--cleanup"],
                               env=daemons.env(), capture_output=True, check=False)
                deadline = time.monotonic() + 10  # it answers before it is done: let it finish
                while daemons.pid(daemon) == pid and time.monotonic() < deadline:
                    time.sleep(0.05)
            daemons.stop_daemon(daemon)
            removed.append(f"{daemon} (pid {pid})")
        shutil.rmtree(record["rundir"], ignore_errors=True)
    elif _answers(record["db"]):
        removed += _clean_external(record)
    (state / RECORD).unlink(missing_ok=True)
    return removed


def _clean_external(record: dict[str, Any]) -> list[str]:
    db, keep = record["db"], set(record.get("preexisting", []))
    owned = f"external_ids:{OWNER_KEY}={OWNER_VALUE}"
    bridges = _vsctl(db, None, "list-br").split()
    going = [b for b in bridges if b not in keep
             and (b in record.get("made", []) or b in _names(db, "Bridge", owned))]
    removed: list[str] = []
    for bridge in (b for b in bridges if b not in going):  # the operator's: kaon's ports and flows only
        for port in sorted(set(_vsctl(db, None, "list-ports", bridge).split()) & _names(db, "Port", owned)):
            _vsctl(db, None, "--if-exists", "del-port", bridge, port)
            removed.append(f"OVS port {port}")
        subprocess.run(["ovs-ofctl", "del-flows", _openflow_target(db, bridge), f"cookie={KAON_COOKIE:#x}/-1"],
                       capture_output=True, check=False)
    for bridge in going:
        _vsctl(db, None, "--if-exists", "del-br", bridge)
        removed.append(f"OVS bridge {bridge}")
    return removed


def _names(db: str, table: str, condition: str) -> set[str]:
    return set(_vsctl(db, None, "--bare", "--columns=name", "find", table, condition).split())


def _openflow_target(db: str, bridge: str) -> str:
    """A bridge's OpenFlow socket sits beside a unix OVSDB socket (kaon.agent.ovs_config.OvsConfig)."""
    return f"unix:{db[len('unix:'):].rsplit('/', 1)[0]}/{bridge}.mgmt" if db.startswith("unix:") else bridge


def _vsctl(db: str, env: dict[str, str] | None, *args: str) -> str:
    res = subprocess.run(["ovs-vsctl", f"--db={db}", "--timeout=10", *args], env=env, capture_output=True,
                         text=True, check=False)
    if res.returncode != 0:
        raise UpOvsError(f"ovs-vsctl {' '.join(args[:3])} on {db}: {res.stderr.strip()}")
    return res.stdout


def _answers(db: str) -> bool:
    """Whether an ovsdb-server answers at ``db`` (a unix socket that is not there: no, at once)."""
    if db.startswith("unix:") and not os.path.exists(db[len("unix:"):]):
        return False
    res = subprocess.run(["ovs-vsctl", f"--db={db}", "--timeout=2", "show"], capture_output=True, check=False)
    return res.returncode == 0


def _link_exists(namespace: str | None, name: str) -> bool:
    cmd = ["ip", *(["-n", namespace] if namespace else []), "link", "show", name]
    return subprocess.run(cmd, capture_output=True, check=False).returncode == 0


def _identity(daemons: OvsDaemons, daemon: str) -> list[int] | None:
    pid = daemons.pid(daemon)
    return None if pid is None else [pid, _start_ticks(pid)]


def _start_ticks(pid: int) -> int:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return -1
    return int(stat[stat.rindex(")") + 2:].split()[19])


def _read(state: Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads((state / RECORD).read_text())
    except (OSError, ValueError):
        return {}
    return data


def _write(state: Path, record: dict[str, Any]) -> None:
    tmp = state / f".{RECORD}.tmp"
    tmp.write_text(json.dumps(record, indent=2))
    os.replace(tmp, state / RECORD)
