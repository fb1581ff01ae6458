"""The guest's IPv6 autoconfiguration for lab VMs: the kernel's SLAAC, and dhclient -6.

What a guest does on an IPv6 subnet depends on the subnet's
``ipv6_address_mode``, as in Neutron:

* ``slaac`` and ``dhcpv6-stateless``: the kernel takes the prefix of the
  router's advertisement (radvd in the qrouter- namespace) and forms its
  EUI-64 address from the MAC — the address Neutron's IPAM gave the port;
* ``dhcpv6-stateful``: the advertisement's managed flag says to ask DHCPv6;
  ``dhclient -6`` (isc-dhcp-client: Debian's busybox has no udhcpc6) asks
  the network's dnsmasq, which leases exactly the port's fixed IP to its MAC.

A VM namespace is new, so its kernel defaults apply (``accept_ra=1``,
forwarding off, EUI-64 addresses). One is changed before ``eth0`` exists:
router solicitations repeat every second until an advertisement comes
(``router_solicitations=-1``), because the first ones leave before the agent
has plugged the tap, and radvd's unsolicited advertisements are up to 100 s
apart.

dhclient runs with a hook script of the lab's own (Debian's dhclient-script
would rewrite the machine's /etc/resolv.conf), and is stopped, by its pid
file, once it has bound: the lease's address stays, as with udhcpc ``-q``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

from kaon.lab import ip

SCRIPT = """#!/bin/sh
# Written by kaon lab: applies a dhclient -6 lease inside the VM namespace.
case "$reason" in
  BOUND6|RENEW6|REBIND6|REBOOT6)
    [ -n "$new_ip6_address" ] && ip -6 addr replace "$new_ip6_address/${new_ip6_prefixlen:-128}" \\
      dev "$interface" nodad ;;
  EXPIRE6|RELEASE6|STOP6)
    [ -n "$old_ip6_address" ] && ip -6 addr del "$old_ip6_address/${old_ip6_prefixlen:-128}" \\
      dev "$interface" ;;
esac
exit 0
"""

SYSCTLS = {"router_solicitations": "-1", "router_solicitation_interval": "1",
           "router_solicitation_max_interval": "1"}


class Dhcp6Error(ip.IpError):
    pass


def prepare(vm_ns: str) -> None:
    """Before eth0 is made: solicit routers until one answers (see the module docstring)."""
    for key, value in SYSCTLS.items():
        ip.exec_in(vm_ns, ["sysctl", "-q", "-w", f"net.ipv6.conf.default.{key}={value}"], check=True,
                   capture_output=True)


def addresses(vm_ns: str, device: str = "eth0") -> list[str]:
    """The global IPv6 addresses of ``device`` (CIDR), tentative ones included."""
    r = ip.exec_in(vm_ns, ["ip", "-json", "-6", "addr", "show", "dev", device, "scope", "global"],
                   capture_output=True, text=True, check=True)
    return [f"{a['local']}/{a['prefixlen']}" for item in json.loads(r.stdout or "[]")
            for a in item.get("addr_info", []) if "local" in a]


def wait_slaac(vm_ns: str, expected: set[str], timeout: float = 30.0, device: str = "eth0") -> list[str]:
    """Wait until the kernel has formed every address of ``expected`` (bare addresses); the v6 addresses."""
    deadline = time.monotonic() + timeout
    while True:
        have = addresses(vm_ns, device)
        if expected <= {a.split("/")[0] for a in have}:
            return have
        if time.monotonic() >= deadline:
            raise Dhcp6Error(f"no SLAAC address {sorted(expected)} in {vm_ns} after {timeout:.0f} s: has {have}")
        time.sleep(0.2)


def ensure_script(directory: Path) -> Path:
    path = directory / "dhclient6.script"
    if not path.exists() or path.read_text() != SCRIPT:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(SCRIPT)
    path.chmod(0o755)
    return path


def request(vm_ns: str, directory: Path, expected: set[str], timeout: float = 30.0,
            device: str = "eth0") -> list[str]:
    """Run dhclient -6 until ``expected`` (bare addresses) are leased, or ``timeout``; the v6 addresses."""
    script = ensure_script(directory)
    base = directory / f"dhclient6-{vm_ns}"
    pid_file, lease_file = Path(f"{base}.pid"), Path(f"{base}.leases")
    # A fresh client identity: a DUID left by an earlier VM of the same name names its MAC.
    lease_file.unlink(missing_ok=True)
    deadline = time.monotonic() + timeout
    last = ""
    try:
        while True:
            # -1: one try, exit 2 without a lease; bound, it goes to the background (stopped below).
            cmd = ["dhclient", "-6", "-1", "-v", "-sf", str(script), "-pf", str(pid_file), "-lf", str(lease_file),
                   device]
            try:
                r = ip.exec_in(vm_ns, cmd, capture_output=True, text=True, check=False, timeout=15)
                last = (r.stderr or "") + (r.stdout or "")
            except subprocess.TimeoutExpired:
                last = "dhclient -6 timed out"
            have = addresses(vm_ns, device)
            if expected <= {a.split("/")[0] for a in have}:
                return have
            if time.monotonic() >= deadline:
                raise Dhcp6Error(f"no DHCPv6 lease of {sorted(expected)} in {vm_ns} after {timeout:.0f} s: "
                                 f"{last.strip()[-300:]}")
            time.sleep(0.5)
    finally:
        _stop(pid_file)


def _stop(pid_file: Path) -> None:
    """Stop the dhclient that wrote ``pid_file`` (checked by its command line), if it runs."""
    try:
        pid = int(pid_file.read_text().strip())
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return
    if str(pid_file).encode() in argv:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    pid_file.unlink(missing_ok=True)
