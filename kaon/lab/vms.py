"""A lab VM: what Nova and os-vif do for an instance, with a namespace for the instance.

Three steps, kept apart so that each can change alone:

1. **port** (Nova): create a port on the network with ``device_owner
   compute:nova``, a fresh ``device_id`` and ``binding:host_id`` = the host --
   or bind an existing port (``--port``) the same way;
2. **plug** (os-vif): the VM namespace and a veth whose host end is
   ``tap<port id[:11]>`` (kaon.model.names) in the host namespace, up and *not* enslaved (the
   agent puts it in its bridge), whose VM end ``eth0`` has the port's MAC and
   the network's MTU;
3. **address** (the guest): static -- the port's fixed IPs and a default
   route through each subnet's gateway -- or, with ``--dhcp``, a DHCP client
   in the VM namespace (kaon.lab.dhcp_client) for IPv4 and, for IPv6, SLAAC
   or dhclient -6 by the subnet's ``ipv6_address_mode``
   (kaon.lab.dhcp6_client); plug and port stay as they are.
"""

from __future__ import annotations

import ipaddress
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from kaon.lab import ip
from kaon.lab.api_client import ApiError, NeutronClient

DEVICE_OWNER = "compute:nova"
VM_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


@dataclass(frozen=True)
class PortRequest:
    """What ``vm create`` asks of the port."""

    vm: str
    host: str
    network: str
    ip: str | None = None
    subnet: str | None = None
    security_groups: Sequence[str] = ()
    port: str | None = None  # an existing port (name or id) to bind instead of creating one
    project_id: str | None = None


@dataclass(frozen=True)
class Addressing:
    """How the guest gets its addresses; ``mode`` "static" applies ``addresses``/``gateways``."""

    mode: str = "static"
    addresses: tuple[str, ...] = ()  # "10.0.0.5/24"
    gateways: tuple[str, ...] = ()   # one default route per IP version at most
    extra: dict[str, Any] = field(default_factory=dict)
    # IPv6 address (bare) -> its subnet's ipv6_address_mode: how a guest autoconfigures it.
    ipv6_modes: dict[str, str | None] = field(default_factory=dict)


# ------------------------------------------------------------------ 1. port
def _fixed_ips(client: NeutronClient, req: PortRequest, network_id: str) -> list[dict[str, str]]:
    if not (req.ip or req.subnet):
        return []
    entry: dict[str, str] = {}
    if req.subnet:
        entry["subnet_id"] = client.find("subnets", req.subnet, network_id=network_id)["id"]
    if req.ip:
        entry["ip_address"] = req.ip
    return [entry]


def _security_groups(client: NeutronClient, names: Sequence[str], project_id: str | None) -> list[str]:
    filters = {"project_id": project_id} if project_id else {}
    return [client.find("security-groups", sg, **filters)["id"] for sg in names]


def bind_port(client: NeutronClient, req: PortRequest) -> tuple[dict[str, Any], dict[str, Any], bool]:
    """(port, network, created): a new or existing port, bound to ``req.host`` for a VM."""
    network = client.find("networks", req.network)
    binding = {"device_owner": DEVICE_OWNER, "device_id": str(uuid.uuid4()), "binding:host_id": req.host}
    extra: dict[str, Any] = {}
    if req.security_groups:
        extra["security_groups"] = _security_groups(client, req.security_groups, req.project_id)
    if req.port:
        existing = client.find("ports", req.port, network_id=network["id"])
        if existing.get("device_owner") or existing.get("device_id"):
            raise ApiError(f"port {existing['id']} is in use by {existing.get('device_owner')} "
                           f"{existing.get('device_id')}", 409)
        fixed = _fixed_ips(client, req, network["id"])
        if fixed:
            extra["fixed_ips"] = fixed
        port = client.put(f"ports/{existing['id']}", {"port": {**binding, **extra}})["port"]
        return port, network, False
    body: dict[str, Any] = {"network_id": network["id"], "name": req.vm, **binding, **extra}
    fixed = _fixed_ips(client, req, network["id"])
    if fixed:
        body["fixed_ips"] = fixed
    if req.project_id:
        body["project_id"] = req.project_id
    return client.post("ports", {"port": body})["port"], network, True


def release_port(client: NeutronClient, port_id: str, created: bool) -> None:
    """Delete the port the lab made; unbind one it was given (as Nova does)."""
    if created:
        client.delete(f"ports/{port_id}")
        return
    try:
        client.put(f"ports/{port_id}", {"port": {"device_owner": "", "device_id": "", "binding:host_id": ""}})
    except ApiError as exc:
        if exc.status != 404:
            raise


def static_addressing(client: NeutronClient, port: dict[str, Any]) -> Addressing:
    """The port's fixed IPs with their subnets' prefix lengths, and the subnets' gateways."""
    addresses, gateways, versions = [], [], set()
    modes: dict[str, str | None] = {}
    for fixed in port.get("fixed_ips", []):
        subnet = client.get(f"subnets/{fixed['subnet_id']}")["subnet"]
        prefixlen = ipaddress.ip_network(subnet["cidr"]).prefixlen
        addresses.append(f"{fixed['ip_address']}/{prefixlen}")
        if subnet["ip_version"] == 6:
            modes[fixed["ip_address"]] = subnet.get("ipv6_address_mode")
        gateway = subnet.get("gateway_ip")
        if gateway and subnet["ip_version"] not in versions:
            versions.add(subnet["ip_version"])
            gateways.append(gateway)
    return Addressing("static", tuple(addresses), tuple(gateways), ipv6_modes=modes)


# ------------------------------------------------------------------ 2. plug
def plug(vm_ns: str, host_ns: str, tap: str, mac: str, mtu: int | None) -> None:
    """The VM namespace and its veth (``tap`` in the host, ``eth0`` in the VM); idempotent."""
    if not ip.netns_exists(host_ns):
        raise ip.IpError(f"host namespace {host_ns} does not exist (is the lab up?)")
    ip.ensure_netns(vm_ns)
    ip.ensure_veth(host_ns, tap, vm_ns, "eth0")
    ip.set_up(host_ns, tap, mtu=mtu)
    ip.set_up(vm_ns, "eth0", mtu=mtu, mac=mac)


def unplug(vm_ns: str) -> None:
    """Stop what runs in the VM namespace (by pid) and delete it; its veth goes with it."""
    ip.delete_netns(vm_ns)


# ------------------------------------------------------------------ 3. address
def configure(vm_ns: str, addressing: Addressing) -> None:
    if addressing.mode != "static":
        raise NotImplementedError(f"addressing mode {addressing.mode!r}")
    for cidr in addressing.addresses:
        ip.ensure_address(vm_ns, "eth0", cidr)
    for gateway in addressing.gateways:
        ip.ensure_default_route(vm_ns, gateway, "eth0")
