"""The few iproute2 operations the lab needs, each idempotent, each by exact name.

Everything here acts inside a named network namespace (``ip -n NS ...``);
nothing takes a namespace argument that may be empty, so the root namespace's
interfaces and routes are never touched. ``ensure_*`` leaves an object as
asked whether or not it existed; ``delete_*`` accepts that it is already gone.

Why ``ip`` and not pyroute2: one process per call costs a few milliseconds,
which a lab of a handful of hosts does not notice, and every step can be
replayed by hand from the error message. (kaon/dataplane is the agent's
library; the lab keeps its own small one so it can plug a VM without it.)
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Sequence
from typing import Any

NETNS_DIR = "/run/netns"


class IpError(RuntimeError):
    """An ``ip`` command failed; the message holds the command and its stderr."""


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    cmd = ["ip", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if check and proc.returncode != 0:
        raise IpError(f"{' '.join(cmd)}: {proc.stderr.strip() or f'exit {proc.returncode}'}")
    return proc


def _ns(ns: str) -> str:
    if not ns:
        raise ValueError("a lab operation needs a namespace name (the root namespace is never touched)")
    return ns


# ------------------------------------------------------------------ namespaces
def netns_exists(ns: str) -> bool:
    return os.path.exists(os.path.join(NETNS_DIR, _ns(ns)))


def ensure_netns(ns: str) -> None:
    if not netns_exists(ns):
        ip("netns", "add", ns)
    set_up(ns, "lo")


def delete_netns(ns: str) -> None:
    """Kill what runs in ``ns`` and delete it (which destroys its veths and bridges); missing is fine.

    A process left inside would keep the namespace, and its devices, alive
    after its name is gone, so those processes go first -- by pid, found by
    the namespace's exact name.
    """
    if not netns_exists(ns):
        return
    for pid in netns_pids(ns):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    ip("netns", "delete", ns, check=False)


def netns_list(prefix: str) -> list[str]:
    """Names in /run/netns starting with ``prefix``."""
    try:
        return sorted(n for n in os.listdir(NETNS_DIR) if n.startswith(prefix))
    except FileNotFoundError:
        return []


def netns_pids(ns: str) -> list[int]:
    """Processes living in ``ns`` (``ip netns pids``)."""
    if not netns_exists(ns):
        return []
    out = ip("netns", "pids", ns, check=False).stdout
    return [int(p) for p in out.split() if p.isdigit()]


# ------------------------------------------------------------------ links
def links(ns: str) -> dict[str, dict[str, Any]]:
    """Interfaces in ``ns`` by name (``ip -j link``)."""
    out = ip("-j", "-n", _ns(ns), "link", "show").stdout
    return {item["ifname"]: item for item in json.loads(out or "[]")}


def link_exists(ns: str, name: str) -> bool:
    return ip("-n", _ns(ns), "link", "show", "dev", name, check=False).returncode == 0


def set_up(ns: str, name: str, *, master: str | None = None, mtu: int | None = None,
           mac: str | None = None) -> None:
    args = ["-n", _ns(ns), "link", "set", "dev", name]
    if master:
        args += ["master", master]
    if mtu:
        args += ["mtu", str(mtu)]
    if mac:
        args += ["address", mac]
    ip(*args, "up")


def ensure_bridge(ns: str, name: str) -> None:
    if not link_exists(ns, name):
        ip("-n", _ns(ns), "link", "add", name, "type", "bridge")
    set_up(ns, name)


def ensure_veth(ns_a: str, name_a: str, ns_b: str, name_b: str) -> None:
    """A veth pair, ``name_a`` in ``ns_a`` and ``name_b`` in ``ns_b``.

    A half left by an interrupted run (one end present, the other not) is
    deleted and the pair made again; deleting either end destroys both.
    """
    has_a, has_b = link_exists(ns_a, name_a), link_exists(ns_b, name_b)
    if has_a and has_b:
        return
    if has_a:
        delete_link(ns_a, name_a)
    if has_b:
        delete_link(ns_b, name_b)
    ip("-n", _ns(ns_a), "link", "add", name_a, "type", "veth", "peer", "name", name_b, "netns", _ns(ns_b))


def delete_link(ns: str, name: str) -> None:
    if netns_exists(ns) and link_exists(ns, name):
        ip("-n", ns, "link", "delete", "dev", name, check=False)


# ------------------------------------------------------------------ addresses and routes
def addresses(ns: str, name: str) -> list[str]:
    """``addr/prefixlen`` of ``name`` in ``ns``, link-local IPv6 left out."""
    out = ip("-j", "-n", _ns(ns), "addr", "show", "dev", name).stdout
    result = []
    for item in json.loads(out or "[]"):
        for a in item.get("addr_info", []):
            if a.get("scope") != "link":
                result.append(f"{a['local']}/{a['prefixlen']}")
    return result


def ensure_address(ns: str, name: str, cidr: str) -> None:
    extra = ["nodad"] if ":" in cidr else []
    ip("-n", _ns(ns), "addr", "replace", cidr, "dev", name, *extra)


def ensure_default_route(ns: str, gateway: str, device: str) -> None:
    family = "-6" if ":" in gateway else "-4"
    ip(family, "-n", _ns(ns), "route", "replace", "default", "via", gateway, "dev", device)


def exec_in(ns: str, cmd: Sequence[str], **kw: Any) -> subprocess.CompletedProcess[Any]:
    """Run ``cmd`` inside ``ns`` (``ip netns exec``); ``kw`` goes to subprocess.run."""
    return subprocess.run(["ip", "netns", "exec", _ns(ns), *cmd], **kw)
