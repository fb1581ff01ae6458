"""``Lab``: the Python face of ``kaon lab`` (the CLI and the fullstack tests use it).

::

    lab = Lab("kt1a2b-", state_dir, config_files=[server_conf])
    lab.up(hosts=2, agents=False)
    vm = lab.create_vm("vm1", host="h1", network="net1")
    lab.exec("vm1", ["ping", "-c1", "10.0.0.1"])
    lab.down()

Every object the lab makes is recorded in ``<state_dir>/lab/<prefix>/lab.json``
(see :mod:`kaon.lab.state`) before it is made, and removed by exact name.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from kaon.lab import agents, dhcp6_client, dhcp_client, ip, ovs_host, topology, vms
from kaon.lab.agents import agent_alive
from kaon.lab.api_client import ApiError, NeutronClient, resolve_client
from kaon.lab.state import StateStore, empty_state, lab_dir, record_namespace
from kaon.model import names

# Progress of the long steps (`kaon lab up` and `seed` print it on stderr: kaon.cli.main logs INFO).
LOG = logging.getLogger("kaon.lab")

DEFAULT_PREFIX = "kl-"
LINUXBRIDGE, OPENVSWITCH = "linuxbridge", "openvswitch"
MECHANISMS = (LINUXBRIDGE, OPENVSWITCH)
PREFIX = re.compile(r"^[a-z][a-z0-9-]{0,11}$")


class LabError(RuntimeError):
    """Something the lab cannot do; the message says what to do instead."""


def default_state_dir() -> Path:
    from kaon.config import default_state_path

    return Path(os.environ.get("KAON_STATE_DIR") or default_state_path()).expanduser()


class Lab:
    """One lab, named by its namespace ``prefix``, recorded under ``state_dir``.

    ``config_files`` are the server's (given to each agent, and used to find
    the API); the default is ``<state_dir>/kaon.conf`` when it exists.
    ``client`` replaces the API client found from them (``cloud``,
    ``clouds_yaml``, ``network_url`` steer that search: see
    :func:`kaon.lab.api_client.resolve_client`).
    """

    def __init__(self, prefix: str = DEFAULT_PREFIX, state_dir: str | os.PathLike[str] | None = None, *,
                 config_files: Sequence[str] = (), host_names_prefix: str = "h",
                 client: NeutronClient | None = None, cloud: str | None = None,
                 clouds_yaml: str | None = None, network_url: str | None = None) -> None:
        if not PREFIX.match(prefix):
            raise LabError(f"prefix {prefix!r}: 1-12 characters, lower-case letters, digits and '-'")
        self.prefix = prefix
        self.state_dir = Path(state_dir) if state_dir else default_state_dir()
        self.names = topology.Names(prefix)
        self.directory = lab_dir(self.state_dir, prefix)
        self.store = StateStore(self.directory)
        self.host_names_prefix = host_names_prefix
        self._config_files = [str(f) for f in config_files]
        self._client = client
        self._client_args = {"cloud": cloud, "clouds_yaml": clouds_yaml, "network_url": network_url}

    # ------------------------------------------------------------------ helpers
    @property
    def config_files(self) -> list[str]:
        if self._config_files:
            return self._config_files
        state = self.store.load()
        if state and state.get("config_files"):
            return list(state["config_files"])
        default = self.state_dir / "kaon.conf"
        return [str(default)] if default.exists() else []

    @property
    def client(self) -> NeutronClient:
        if self._client is None:
            self._client = resolve_client(self.state_dir, self.config_files, **self._client_args)
        return self._client

    def state(self) -> dict[str, Any] | None:
        return self.store.load()

    def _require_state(self) -> dict[str, Any]:
        state = self.store.load()
        if state is None:
            raise LabError(f"no lab with prefix {self.prefix!r} under {self.state_dir} (run `kaon lab up`)")
        return state

    def host_namespace(self, host: str) -> str:
        hosts = self._require_state()["hosts"]
        if host not in hosts:
            raise LabError(f"no host {host!r} in the lab (hosts: {', '.join(hosts) or 'none'})")
        return str(hosts[host]["namespace"])

    def vm(self, name: str) -> dict[str, Any]:
        vms_ = self._require_state()["vms"]
        if name not in vms_:
            raise LabError(f"no VM {name!r} in the lab")
        return dict(vms_[name])

    # ------------------------------------------------------------------ up / down
    def up(self, hosts: int, *, agents: bool = True, network_nodes: Sequence[str] | None = None,
           mechanism: str | Mapping[str, str] = LINUXBRIDGE) -> dict[str, Any]:
        """Make (or complete) the lab with ``hosts`` hosts; start missing agents. Idempotent.

        ``network_nodes``: the hosts whose agents also run the DHCP and L3
        roles (default: the first Linux bridge host, whatever the host names are;
        the first host when all run Open vSwitch, whose DHCP and router ports then
        go on br-int: ``interface_driver = openvswitch``).
        ``mechanism``: ``linuxbridge`` or ``openvswitch`` for every host, or per
        host name (a mixed cloud); an Open vSwitch host gets its private OVS
        (kaon.lab.ovs_host) and runs the Open vSwitch agent.
        """
        if not 1 <= hosts <= topology.MAX_HOSTS:
            raise LabError(f"--hosts must be 1..{topology.MAX_HOSTS}")
        server_configs = self.config_files if agents else []
        if agents and not server_configs:
            raise LabError(f"no server config: give --config-file or run `kaon up` "
                           f"(which writes {self.state_dir / 'kaon.conf'}), or use --no-agents")
        if agents:
            self._require_node(server_configs)
        names = self.names
        wanted = {f"{self.host_names_prefix}{i}": i for i in range(1, hosts + 1)}
        mechs = {h: mechanism if isinstance(mechanism, str) else mechanism.get(h, LINUXBRIDGE) for h in wanted}
        bad = sorted({m for m in mechs.values() if m not in MECHANISMS})
        if bad:
            raise LabError(f"--mechanism {', '.join(bad)}: must be one of {', '.join(MECHANISMS)}")
        # A mixed cloud keeps its network node on Linux bridge, as it did before OVS hosts could be one.
        first = next((h for h in wanted if mechs[h] == LINUXBRIDGE), next(iter(wanted)))
        with self.store.edit(empty_state(self.prefix, self.host_names_prefix)) as state:
            extra = sorted(set(state["hosts"]) - set(wanted))
            if extra:
                raise LabError(f"the lab already has hosts {', '.join(extra)}: run `kaon lab down` first")
            changed = sorted(h for h, rec in state["hosts"].items() if rec.get("mechanism", LINUXBRIDGE) != mechs[h])
            if changed:
                raise LabError(f"hosts {', '.join(changed)} run another mechanism: run `kaon lab down` first")
            chosen = list(network_nodes) if network_nodes else state.get("network_nodes") or [first]
            unknown = [h for h in chosen if h not in wanted]
            if unknown:
                raise LabError(f"--network-nodes {', '.join(unknown)}: not a host of this lab "
                               f"(hosts: {', '.join(wanted)})")
            if state.get("network_nodes") and state["network_nodes"] != chosen and \
                    any(agent_alive(r.get("agent")) for r in state["hosts"].values()):
                raise LabError(f"the lab's network nodes are {', '.join(state['network_nodes'])}: run "
                               "`kaon lab down` first to change them")
            state["network_nodes"] = chosen
            if server_configs:
                state["config_files"] = server_configs
            for ns in [*names.fixed(), *(names.host(i) for i in wanted.values())]:
                record_namespace(state, ns)
            for host, i in wanted.items():
                rec = state["hosts"].setdefault(host, {"index": i, "namespace": names.host(i),
                                                       "local_ip": topology.local_ip(i), "agent": None,
                                                       "mechanism": mechs[host]})
                if mechs[host] == OPENVSWITCH and not rec.get("ovs"):
                    # Recorded before the daemons start: `down` finds their pidfiles in this rundir.
                    rec["ovs"] = {"rundir": str(ovs_host.ovs_rundir(self.directory, names.host(i)))}
            state["outside"] = {"namespace": names.outside, "addresses": list(topology.OUTSIDE_ADDRESSES)}
        # Namespaces are recorded: a failure from here on leaves nothing `down` cannot find.
        LOG.info("lab %s: underlay and provider bridges", self.prefix)
        topology.ensure_fabric(names)
        LOG.info("lab %s: outside namespace %s", self.prefix, names.outside)
        topology.ensure_outside(names)
        for host, i in wanted.items():
            LOG.info("lab %s: host %s (namespace %s, local_ip %s)", self.prefix, host, names.host(i),
                     topology.local_ip(i))
            topology.ensure_host(names, i)
        for host, i in wanted.items():
            if mechs[host] == OPENVSWITCH:
                for fabric, dev in ((names.underlay, f"ul-h{i}"), (names.provider, f"pn-h{i}"),
                                    (names.provider, f"p2-h{i}")):
                    ovs_host.checksum_offload_off(fabric, dev)
                record = ovs_host.start_host_ovs(self.directory, names.host(i), i)
                with self.store.edit() as state:
                    state["hosts"][host]["ovs"] = record
        if agents:
            self._start_agents(server_configs)
        return self._require_state()

    def _require_node(self, server_configs: list[str]) -> None:
        """Stop at once when no node answers where the agents would go (not 30 s later)."""
        from kaon.bus.unix import socket_path_of
        from kaon.config import load_config

        cfg = load_config(server_configs)
        transport = cfg.default.transport_url
        if transport.strip() and not transport.startswith("unix"):
            return  # a message queue: the agents wait for their server like Neutron's do
        path = socket_path_of(transport, cfg.default.state_path)
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(2.0)
            try:
                sock.connect(path)
                return
            except OSError:
                pass
        raise LabError(f"no kaon node is running for {', '.join(server_configs)}: nothing listens on its bus "
                       f"socket {path}; start one first (`kaon up --state-dir {self.state_dir}`), "
                       f"or use --no-agents")

    def network_nodes(self, state: dict[str, Any] | None = None) -> list[str]:
        """The hosts running the DHCP and L3 roles (labs from before the option: the first host)."""
        state = state if state is not None else self._require_state()
        return list(state.get("network_nodes") or sorted(state["hosts"], key=lambda h: state["hosts"][h]["index"])[:1])

    def compute_host(self) -> str:
        """A host for VMs: the first that is not a network node, as in the seeds (else the first)."""
        state = self._require_state()
        hosts = sorted(state["hosts"], key=lambda h: state["hosts"][h]["index"])
        if not hosts:
            raise LabError("the lab has no hosts (run `kaon lab up`)")
        nodes = self.network_nodes(state)
        return next((h for h in hosts if h not in nodes), hosts[0])

    def _start_agents(self, server_configs: list[str]) -> None:
        with self.store.edit() as state:
            for host, rec in state["hosts"].items():
                if agents.agent_alive(rec.get("agent")):
                    continue
                ini = self.directory / f"{host}.ini"
                if rec.get("mechanism") == OPENVSWITCH:
                    ini.write_text(ovs_host.agent_ini(host, rec["namespace"], rec["ovs"], self.prefix,
                                                      network_node=host in self.network_nodes(state)))
                else:
                    ini.write_text(agents.agent_ini(host, rec["namespace"], rec["local_ip"], self.prefix,
                                                    network_node=host in self.network_nodes(state)))
                rec["agent"] = agents.start_agent(server_configs, ini, self.directory / f"{host}.log")
                LOG.info("lab %s: agent of %s started (pid %s)", self.prefix, host, rec["agent"]["pid"])

    def wait_for_agents(self, timeout: float = 30.0) -> None:
        """Wait until every host's agent is alive in the API (``GET /v2.0/agents``).

        Raises :class:`LabError` at once when an agent process has exited
        (with the end of its log), or when ``timeout`` passes.
        """
        state = self._require_state()
        deadline = time.monotonic() + timeout
        waiting = sorted(state["hosts"])
        said: list[str] = []
        while True:
            if waiting != said:
                LOG.info("lab %s: waiting for the agents of %s to report alive", self.prefix, ", ".join(waiting))
                said = waiting
            for host in waiting:
                rec = state["hosts"][host].get("agent")
                if not agents.agent_alive(rec):
                    tail = Path(rec["log"]).read_text(errors="replace")[-2000:] if rec else "(never started)"
                    raise LabError(f"the agent of {host} is not running; its log ends with:\n{tail}")
            alive = {a["host"] for a in self.client.get("agents")["agents"]
                     if a.get("alive") and a.get("agent_type") in agents.L2_AGENT_TYPES}
            waiting = [h for h in waiting if h not in alive]
            if not waiting:
                return
            if time.monotonic() > deadline:
                raise LabError(f"agents not alive after {timeout:.0f}s: {', '.join(waiting)}")
            time.sleep(0.2)

    def foreign_network_agents(self) -> list[str]:
        """DHCP and L3 agents of hosts outside the lab that the scheduler may pick (e.g. `kaon up`'s own)."""
        hosts = set(self._require_state()["hosts"])
        out = []
        for a in self.client.get("agents")["agents"]:
            if a.get("agent_type") in ("DHCP agent", "L3 agent") and a.get("alive") and \
                    a.get("admin_state_up") and a.get("host") not in hosts:
                out.append(f"host {a['host']} (not in the lab) runs a live {a['agent_type']}: networks or routers "
                           f"may be scheduled there instead of the lab's network node; disable it with "
                           f"`openstack network agent set --disable {a['id']}` (or run `kaon up --no-agent`)")
        return out

    def stop_agents(self, hosts: Sequence[str] | None = None) -> list[str]:
        """Stop the agents of ``hosts`` (all by default); returns the hosts whose agent ran."""
        stopped = []
        with self.store.edit() as state:
            for host, rec in state["hosts"].items():
                if hosts is None or host in hosts:
                    if agents.stop_agent(rec.get("agent")):
                        stopped.append(host)
                    rec["agent"] = None
        return stopped

    def start_agents(self) -> None:
        """(Re)start every host's agent that is not running (after ``stop_agents``)."""
        configs = self.config_files
        if not configs:
            raise LabError("no server config to start agents with")
        self._start_agents(configs)

    def down(self, *, keep_logs: bool = False) -> list[str]:
        """Remove everything the lab recorded; returns the namespaces deleted. Fine when nothing is up."""
        state = self.store.load()
        if state is None:
            return []
        for rec in state["hosts"].values():
            agents.stop_agent(rec.get("agent"))
        if state["vms"]:
            self._release_ports(list(state["vms"].values()))
        for rec in state["hosts"].values():
            if rec.get("ovs"):  # the host's private OVS, by pid, before its namespace goes
                ovs_host.stop_host_ovs(rec["ovs"], rec["namespace"], rec["index"])
        deleted = []
        for ns in reversed(state["namespaces"]):
            if ip.netns_exists(ns):
                ip.delete_netns(ns)
                deleted.append(ns)
        # The agents' own DHCP and router namespaces carry the lab's prefix
        # ([agent] namespace_prefix); dnsmasq runs in them and goes by pid too.
        for ns in ip.netns_list(self.prefix):
            if ns[len(self.prefix):].startswith((names.DHCP_NAMESPACE, names.ROUTER_NAMESPACE)):
                ip.delete_netns(ns)
                deleted.append(ns)
        self.store.remove(keep_logs=keep_logs)
        return deleted

    def _release_ports(self, records: list[dict[str, Any]]) -> None:
        # Best effort: the server may be gone already; the namespaces go regardless.
        try:
            client = self.client
        except (ApiError, OSError, ValueError):
            return
        for rec in records:
            try:
                vms.release_port(client, rec["port_id"], rec.get("port_created", True))
            except ApiError as exc:
                if exc.status == 0:
                    return  # unreachable: don't wait out one timeout per VM

    # ------------------------------------------------------------------ VMs
    def create_vm(self, name: str, host: str, network: str, *, ip_address: str | None = None,
                  subnet: str | None = None, security_groups: Sequence[str] = (),
                  port: str | None = None, project_id: str | None = None, dhcp: bool = False) -> dict[str, Any]:
        """Bind a port to ``host`` for VM ``name`` and plug the VM namespace; returns its record.

        ``dhcp``: the guest asks DHCP for its address (kaon.lab.dhcp_client)
        instead of being given the port's; it must be the port's fixed IP."""
        if not vms.VM_NAME.match(name):
            raise LabError(f"VM name {name!r}: letters, digits, '_', '.', '-' (at most 63)")
        host_ns = self.host_namespace(host)
        vm_ns = self.names.vm(name)
        with self.store.edit() as state:
            if name in state["vms"]:
                raise LabError(f"VM {name!r} exists already (on {state['vms'][name]['host']})")
            # Reserve the name and record the namespace before anything is made.
            state["vms"][name] = {"name": name, "host": host, "namespace": vm_ns, "port_id": None}
            record_namespace(state, vm_ns)
        req = vms.PortRequest(name, host, network, ip_address, subnet, tuple(security_groups), port, project_id)
        port_rec: dict[str, Any] | None = None
        created = False
        try:
            port_rec, net, created = vms.bind_port(self.client, req)
            record = {
                "name": name, "host": host, "namespace": vm_ns, "port_id": port_rec["id"],
                "port_created": created, "device_id": port_rec["device_id"],
                "network_id": net["id"], "mac": port_rec["mac_address"],
                "tap": names.tap(port_rec["id"]), "mtu": net.get("mtu"),
            }
            addressing = vms.static_addressing(self.client, port_rec)
            record.update(ips=list(addressing.addresses), gateways=list(addressing.gateways),
                          addressing=addressing.mode)
            ip.ensure_netns(vm_ns)
            dhcp6_client.prepare(vm_ns)  # before eth0 exists: it takes the namespace's defaults
            vms.plug(vm_ns, host_ns, record["tap"], record["mac"], record["mtu"])
            ovs = self._host_ovs(host)
            if ovs:  # as os-vif plugs a VM on an OVS host: the tap joins br-int with the port's iface-id
                ovs_host.plug_vm(ovs, record["tap"], port_rec["id"], record["mac"], record["device_id"] or name)
                ovs_host.checksum_offload_off(vm_ns, "eth0")
            if dhcp:
                record.update(ips=self._autoconfigure(vm_ns, addressing), addressing="dhcp")
            else:
                vms.configure(vm_ns, addressing)
        except BaseException:
            self._undo_vm(name, vm_ns, port_rec, created)
            raise
        with self.store.edit() as state:
            state["vms"][name] = record
        return record

    def _autoconfigure(self, vm_ns: str, addressing: vms.Addressing) -> list[str]:
        """The guest's own configuration: DHCP for IPv4, SLAAC or DHCPv6 for IPv6 by the subnet's
        ipv6_address_mode; the port's addresses, once each is on eth0."""
        v4 = [a for a in addressing.addresses if ":" not in a]
        v6 = [a for a in addressing.addresses if ":" in a]
        got = self.renew_dhcp_ns(vm_ns, v4) if v4 else []
        stateful = {a.split("/")[0] for a in v6 if addressing.ipv6_modes.get(a.split("/")[0]) in
                    ("dhcpv6-stateful", None)}
        slaac = {a.split("/")[0] for a in v6} - stateful
        if slaac:
            dhcp6_client.wait_slaac(vm_ns, slaac)
        if stateful:
            dhcp6_client.request(vm_ns, self.directory, stateful)
        return got + v6

    def renew_dhcp_ns(self, vm_ns: str, expected: list[str]) -> list[str]:
        """Run the guest's DHCP client; the IPv4 addresses it got, which must be ``expected`` (the port's)."""
        expected = [a for a in expected if ":" not in a]
        got = dhcp_client.request(vm_ns, dhcp_client.ensure_script(self.directory))
        if sorted(got) != sorted(expected):
            raise LabError(f"DHCP gave {vm_ns} {got}, but its port has {expected}")
        return got

    def renew_dhcp(self, name: str) -> list[str]:
        """Ask DHCP again from VM ``name`` (a renewal, as a guest does); the addresses it got."""
        record = self.vm(name)
        return self.renew_dhcp_ns(record["namespace"], list(record["ips"]))

    def _host_ovs(self, host: str) -> dict[str, Any] | None:
        """The host's private OVS record, when the host runs Open vSwitch."""
        rec = self._require_state()["hosts"].get(host) or {}
        return rec.get("ovs") if rec.get("mechanism") == OPENVSWITCH else None

    def _undo_vm(self, name: str, vm_ns: str, port: dict[str, Any] | None, created: bool) -> None:
        host = self._require_state()["vms"].get(name, {}).get("host")
        ovs = self._host_ovs(host) if host else None
        if ovs and port is not None:
            ovs_host.unplug_vm(ovs, names.tap(port["id"]))
        vms.unplug(vm_ns)
        if port is not None:
            try:
                vms.release_port(self.client, port["id"], created)
            except ApiError:
                pass
        with self.store.edit() as state:
            state["vms"].pop(name, None)
            if vm_ns in state["namespaces"]:
                state["namespaces"].remove(vm_ns)

    def delete_vm(self, name: str) -> None:
        """Delete the VM namespace (its tap goes with it) and its port (unbind a given port)."""
        rec = self.vm(name)
        ovs = self._host_ovs(rec["host"])
        if ovs and rec.get("tap"):
            ovs_host.unplug_vm(ovs, rec["tap"])
        vms.unplug(rec["namespace"])
        if rec.get("port_id"):
            vms.release_port(self.client, rec["port_id"], rec.get("port_created", True))
        with self.store.edit() as state:
            state["vms"].pop(name, None)
            if rec["namespace"] in state["namespaces"]:
                state["namespaces"].remove(rec["namespace"])

    def vms(self) -> list[dict[str, Any]]:
        state = self.store.load()
        return [dict(v) for v in state["vms"].values()] if state else []

    def exec(self, name: str, cmd: Sequence[str], *, capture: bool = False, check: bool = False,
             timeout: float | None = None) -> subprocess.CompletedProcess[str]:
        """Run ``cmd`` inside VM ``name``'s namespace."""
        return ip.exec_in(self.vm(name)["namespace"], list(cmd), capture_output=capture, text=True,
                          check=check, timeout=timeout)

    def host_exec(self, host: str, cmd: Sequence[str], *, capture: bool = False, check: bool = False,
                  timeout: float | None = None) -> subprocess.CompletedProcess[str]:
        """Run ``cmd`` inside host ``host``'s namespace."""
        return ip.exec_in(self.host_namespace(host), list(cmd), capture_output=capture, text=True,
                          check=check, timeout=timeout)

    def outside_exec(self, cmd: Sequence[str], *, capture: bool = False, check: bool = False,
                     timeout: float | None = None) -> subprocess.CompletedProcess[str]:
        """Run ``cmd`` in the outside namespace."""
        return ip.exec_in(self.names.outside, list(cmd), capture_output=capture, text=True,
                          check=check, timeout=timeout)

    # ------------------------------------------------------------------ status
    def status(self) -> dict[str, Any]:
        """Hosts (namespace present, agent alive), outside, VMs, and recorded namespaces missing."""
        state = self.store.load()
        if state is None:
            return {"prefix": self.prefix, "up": False}
        hosts = {}
        for host, rec in state["hosts"].items():
            agent = rec.get("agent")
            hosts[host] = {"namespace": rec["namespace"], "local_ip": rec["local_ip"],
                           "present": ip.netns_exists(rec["namespace"]),
                           "agent_pid": agent["pid"] if agent else None,
                           "agent_alive": agents.agent_alive(agent),
                           "agent_log": agent["log"] if agent else None}
        vms_ = {name: {**rec, "present": ip.netns_exists(rec["namespace"])}
                for name, rec in state["vms"].items()}
        return {"prefix": self.prefix, "up": True, "state_file": str(self.store.path),
                "config_files": state["config_files"], "hosts": hosts, "outside": state["outside"],
                "vms": vms_, "missing": [ns for ns in state["namespaces"] if not ip.netns_exists(ns)]}
