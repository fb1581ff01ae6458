"""Deleting connection entries from ovs-vswitchd's own conntrack (userspace datapath).

The userspace datapath (``datapath_type = netdev``) tracks connections inside
ovs-vswitchd, not in the kernel: ``conntrack -D`` never sees them. They are
deleted with ``ovs-appctl dpctl/flush-conntrack zone=N <ct-orig-tuple>``,
where the tuple may be partial (OVS ≥ 3.0: every entry matching the given
fields goes) but has no masks.

Except for IPv6 on OVS 3.1 (Debian 12's 3.1.0): a partial IPv6 tuple without
``ct_nw_proto`` makes ovs-vswitchd exit on the spot when the zone holds an
ICMPv6 entry, one with it deletes nothing, and an ICMPv6 entry's whole tuple
makes it exit too. An IPv6 tuple is therefore matched here against the zone's
dump, and each TCP/UDP/SCTP entry it covers is flushed by its whole original
tuple (the exact lookup); ICMPv6 entries are left to expire (30 s in OVS's
userspace conntrack; every ``ping`` run is a new ICMP id, hence a new entry
that meets the new rules).
"""

from __future__ import annotations

import ipaddress
import re
import subprocess

from kaon.dataplane import DataplaneError
from kaon.dataplane.ovs_daemons import OvsDaemons

__all__ = ["OvsConntrackError", "dump", "flush"]


class OvsConntrackError(DataplaneError):
    pass


def _target(daemons: OvsDaemons | None) -> list[str]:
    """The control socket of *this* ovs-vswitchd (a private one's is in its rundir), else the system's."""
    if daemons is None:
        return []
    pid = daemons.pid("ovs-vswitchd")
    if pid is None:
        raise OvsConntrackError(f"no ovs-vswitchd running for {daemons.rundir}")
    return ["-t", f"{daemons.rundir}/ovs-vswitchd.{pid}.ctl"]


def flush(daemons: OvsDaemons | None, zone: int, ct_tuple: str) -> None:
    """Delete the entries of ``zone`` whose original direction matches ``ct_tuple``; none is not an error."""
    if "ct_ipv6_" not in ct_tuple:
        _flush(daemons, zone, ct_tuple)
        return
    wanted = _fields(ct_tuple)
    for whole in entries(dump(daemons, zone)):
        if whole["ct_nw_proto"] != PROTO_NUMBERS["icmpv6"] and all(whole.get(k) == v for k, v in wanted.items()):
            _flush(daemons, zone, ",".join(f"{k}={v}" for k, v in whole.items()))


def _flush(daemons: OvsDaemons | None, zone: int, ct_tuple: str) -> None:
    argv = ["ovs-appctl", *_target(daemons), "dpctl/flush-conntrack", f"zone={zone}", ct_tuple]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    # A tuple that names every field is looked up exactly: no such entry is "No such file or directory".
    if r.returncode != 0 and "No such file or directory" not in r.stderr:
        raise OvsConntrackError(f"{' '.join(argv[1:])}: {r.stderr.strip() or r.returncode}")


PROTO_NUMBERS = {"icmp": "1", "tcp": "6", "udp": "17", "sctp": "132", "icmpv6": "58"}
# dump-conntrack's names for the original tuple's fields -> flush-conntrack's (the addresses by family).
_ORIG_FIELDS = {"sport": "ct_tp_src", "dport": "ct_tp_dst", "id": "icmp_id", "type": "icmp_type",
                "code": "icmp_code"}
_LINE = re.compile(r"^(\w+),orig=\(([^)]*)\)")


def _fields(ct_tuple: str) -> dict[str, str]:
    """A flush tuple as field -> value, addresses in canonical form (``2001:db8:0::1`` = ``2001:db8::1``)."""
    out = {}
    for item in ct_tuple.split(","):
        key, _, value = item.partition("=")
        out[key] = str(ipaddress.ip_address(value)) if key.startswith(("ct_nw_src", "ct_nw_dst", "ct_ipv6_")) \
            else value
    return out


def entries(dumped: str) -> list[dict[str, str]]:
    """The whole original tuples of a ``dump-conntrack`` listing, as flush-conntrack fields."""
    out = []
    for line in dumped.splitlines():
        m = _LINE.match(line.strip())
        if not m or m.group(1) not in PROTO_NUMBERS:
            continue  # a protocol the firewall does not flush by port (its entries go by address)
        orig = dict(item.split("=", 1) for item in m.group(2).split(","))
        kind = "ipv6" if ":" in orig["src"] else "nw"
        fields = {f"ct_{kind}_src": str(ipaddress.ip_address(orig["src"])),
                  f"ct_{kind}_dst": str(ipaddress.ip_address(orig["dst"])), "ct_nw_proto": PROTO_NUMBERS[m.group(1)]}
        fields.update({_ORIG_FIELDS[k]: v for k, v in orig.items() if k in _ORIG_FIELDS})
        out.append(fields)
    return out


def dump(daemons: OvsDaemons | None, zone: int | None = None) -> str:
    """``dpctl/dump-conntrack`` (of one zone): what tests and operators read."""
    argv = ["ovs-appctl", *_target(daemons), "dpctl/dump-conntrack", *([f"zone={zone}"] if zone is not None else [])]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    if r.returncode != 0:
        raise OvsConntrackError(f"{' '.join(argv[1:])}: {r.stderr.strip() or r.returncode}")
    return r.stdout
