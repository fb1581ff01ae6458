"""Answer one metadata request: check who asks, then look the answer up.

The proxy says who asks: ``X-Instance-ID`` (the port's device_id),
``X-Tenant-ID``, ``X-Forwarded-For`` (the VM's address) and
``X-Instance-ID-Signature``, the hex HMAC-SHA256 of the instance id with the
shared secret. As Nova does, a missing instance id is 400, a wrong signature
403 (the proxy's secret is not ours), and an instance whose port does not hold
that address, or belongs to another project, 404.

Paths (EC2 style, any version segment accepted, and OpenStack's JSON)::

    /                                   latest
    /latest/                            meta-data/
    /latest/meta-data/                  the keys below, one a line
    /latest/meta-data/instance-id       the device_id
    /latest/meta-data/hostname          dns_name, else Neutron's DHCP name (host-10-0-0-5)
    /latest/meta-data/local-hostname    same
    /latest/meta-data/local-ipv4        the fixed IP that asked
    /latest/meta-data/public-ipv4       its floating IP (absent without one)
    /openstack/latest/meta_data.json    {"uuid", "hostname", "name", "project_id"}
"""

from __future__ import annotations

import hmac
import json
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, select

from kaon.agent.metadata_proxy import sign
from kaon.compiler.dhcp_section import hostname as dhcp_hostname
from kaon.db.core_tables import ip_allocations, ports
from kaon.db.engine import read_txn
from kaon.db.l3_tables import floatingips

VERSION = re.compile(r"^(latest|\d{4}-\d{2}-\d{2})$")


@dataclass(frozen=True)
class Reply:
    status: int
    body: str
    content_type: str = "text/plain; charset=UTF-8"


@dataclass(frozen=True)
class Instance:
    instance_id: str
    project_id: str
    name: str
    hostname: str
    local_ipv4: str
    public_ipv4: str | None


def respond(engine: Engine, secret: str, method: str, path: str, headers: Any) -> Reply:
    """The reply to one request; ``headers`` is any case-insensitive mapping."""
    if method not in ("GET", "HEAD"):
        return Reply(405, "405 Method Not Allowed\n")
    instance_id = headers.get("X-Instance-ID")
    if not instance_id:
        return Reply(400, "X-Instance-ID header is missing from request\n")
    if not hmac.compare_digest(sign(secret, instance_id), headers.get("X-Instance-ID-Signature") or ""):
        return Reply(403, "403 Forbidden: the signature does not match this service's shared secret\n")
    address = (headers.get("X-Forwarded-For") or "").split(",")[0].strip()
    found = lookup(engine, instance_id, address)
    if found is None or found.project_id != (headers.get("X-Tenant-ID") or ""):
        return Reply(404, "404 Not Found\n")
    return answer(found, [p for p in path.split("?")[0].split("/") if p])


def lookup(engine: Engine, instance_id: str, address: str) -> Instance | None:
    """The instance's port that holds ``address``, with its floating IP."""
    with read_txn(engine) as conn:
        row = conn.execute(
            select(ports.c.id, ports.c.project_id, ports.c.name, ports.c.dns_name)
            .join(ip_allocations, ip_allocations.c.port_id == ports.c.id)
            .where(ports.c.device_id == instance_id, ip_allocations.c.ip_address == address)).first()
        if row is None:
            return None
        fip = conn.execute(select(floatingips.c.floating_ip_address)
                           .where(floatingips.c.fixed_port_id == row.id,
                                  floatingips.c.fixed_ip_address == address)).scalar()
    # The DHCP name is what the VM already calls itself (dnsmasq gives it).
    host = row.dns_name or dhcp_hostname(address)
    return Instance(instance_id, row.project_id, row.name or host, host, address, fip)


def meta_data(found: Instance) -> dict[str, str]:
    keys = {"hostname": found.hostname, "instance-id": found.instance_id, "local-hostname": found.hostname,
            "local-ipv4": found.local_ipv4}
    if found.public_ipv4:
        keys["public-ipv4"] = found.public_ipv4
    return keys


def answer(found: Instance, parts: list[str]) -> Reply:
    if not parts:
        return Reply(200, "latest\n")
    if parts[0] == "openstack":
        return _openstack(found, parts[1:])
    if not VERSION.match(parts[0]):
        return Reply(404, "404 Not Found\n")
    if len(parts) == 1:
        return Reply(200, "meta-data/\n")
    if parts[1] != "meta-data" or len(parts) > 3:
        return Reply(404, "404 Not Found\n")
    keys = meta_data(found)
    if len(parts) == 2:
        return Reply(200, "\n".join(keys) + "\n")
    value = keys.get(parts[2])
    return Reply(200, value) if value is not None else Reply(404, "404 Not Found\n")


def _openstack(found: Instance, parts: list[str]) -> Reply:
    if not parts:
        return Reply(200, "latest\n")
    if not VERSION.match(parts[0]) or len(parts) > 2:
        return Reply(404, "404 Not Found\n")
    if len(parts) == 1:
        return Reply(200, "meta_data.json\n")
    if parts[1] != "meta_data.json":
        return Reply(404, "404 Not Found\n")
    body = {"uuid": found.instance_id, "hostname": found.hostname, "name": found.name,
            "project_id": found.project_id}
    return Reply(200, json.dumps(body), "application/json")
