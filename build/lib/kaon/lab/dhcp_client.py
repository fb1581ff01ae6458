"""The guest's DHCP client for lab VMs: busybox udhcpc in the VM namespace.

Debian's busybox ships no udhcpc hook script, so the lab writes one that
applies what the lease says: the address, the MTU (option 26) and either the
classless static routes (option 121, which includes the default route and,
on isolated networks, 169.254.169.254/32 via the DHCP port) or the router.
udhcpc runs in the foreground and quits once bound (``-q``), so nothing of it
outlives the call; it asks again a few times, since a port's host entry
reaches dnsmasq a moment after the port is created.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from kaon.lab import ip

SCRIPT = """#!/bin/sh
# Written by kaon lab: applies a udhcpc lease inside the VM namespace.
case "$1" in
  deconfig) ip -4 addr flush dev "$interface"; ip link set "$interface" up ;;
  bound|renew)
    ip -4 addr flush dev "$interface"
    ip addr add "$ip/$mask" dev "$interface"
    [ -n "$mtu" ] && ip link set "$interface" mtu "$mtu"
    if [ -n "$staticroutes" ]; then
      set -- $staticroutes
      while [ $# -ge 2 ]; do ip route replace "$1" via "$2" dev "$interface"; shift 2; done
    elif [ -n "$router" ]; then
      ip route replace default via "${router%% *}" dev "$interface"
    fi ;;
esac
"""


class DhcpError(ip.IpError):
    pass


def ensure_script(directory: Path) -> Path:
    path = directory / "udhcpc.script"
    if not path.exists() or path.read_text() != SCRIPT:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(SCRIPT)
    path.chmod(0o755)
    return path


def request(vm_ns: str, script: Path, timeout: float = 20.0, device: str = "eth0") -> list[str]:
    """Run udhcpc until it binds (or ``timeout``); the IPv4 addresses (CIDR) the device then has."""
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        cmd = ["busybox", "udhcpc", "-i", device, "-f", "-q", "-n", "-t", "3", "-T", "1",
               "-s", str(script), "-O", "staticroutes", "-O", "mtu"]
        try:
            r = ip.exec_in(vm_ns, cmd, capture_output=True, text=True, check=False, timeout=10)
            last = (r.stderr or "") + (r.stdout or "")
            if r.returncode == 0:
                return addresses(vm_ns, device)
        except subprocess.TimeoutExpired:
            last = "udhcpc timed out"
        if time.monotonic() >= deadline:
            raise DhcpError(f"no DHCP lease in {vm_ns} after {timeout:.0f} s: {last.strip()[-300:]}")
        time.sleep(0.2)


def addresses(vm_ns: str, device: str = "eth0") -> list[str]:
    r = ip.exec_in(vm_ns, ["ip", "-json", "-4", "addr", "show", "dev", device], capture_output=True,
                   text=True, check=True)
    return [f"{a['local']}/{a['prefixlen']}" for item in json.loads(r.stdout or "[]")
            for a in item.get("addr_info", []) if a.get("scope") == "global"]
