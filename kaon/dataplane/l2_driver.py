"""The kernel driver the Linux bridge L2 manager programs through, as a Protocol.

kaon.dataplane.linux_l2.LinuxL2 implements it over rtnetlink; tests pass
fakes that are checked against it (``isinstance`` on this runtime-checkable
protocol, and mypy on the assignment). Every ``ensure_x`` is idempotent and
``delete_link`` takes ``missing_ok``; failures raise
kaon.dataplane.DataplaneError. An Open vSwitch backend has its own driver
(OVSDB and OpenFlow) behind its own L2 manager (kaon.agent.manager).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Protocol, runtime_checkable


class LinkLike(Protocol):
    """What the planner reads of a link (kaon.dataplane.rtmsg.Link has more)."""

    @property
    def name(self) -> str: ...

    @property
    def kind(self) -> str: ...

    @property
    def master(self) -> str | None: ...

    @property
    def up(self) -> bool: ...

    @property
    def mtu(self) -> int: ...

    @property
    def alias(self) -> str: ...

    @property
    def vxlan_id(self) -> int | None: ...

    @property
    def vxlan_local(self) -> str | None: ...

    @property
    def vxlan_proxy(self) -> bool | None: ...


@runtime_checkable
class BridgeDriver(Protocol):
    # -- read back ----------------------------------------------------------
    def links(self) -> Mapping[str, LinkLike]: ...

    def fdb(self, dev: str) -> set[tuple[str, str]]:
        """(MAC, destination) entries of a VXLAN device."""
        ...

    def neighbours(self, dev: str) -> set[tuple[str, str]]:
        """(IP, MAC) entries of a VXLAN device."""
        ...

    # -- program ------------------------------------------------------------
    def ensure_bridge(self, name: str, mtu: int | None = None, alias: str | None = None,
                      netfilter: bool | None = None) -> None: ...

    def ensure_vxlan(self, name: str, vni: int, local_ip: str, dev: str | None, *, dstport: int = 4789,
                     learning: bool = False, proxy: bool = True, group: str | None = None,
                     mtu: int | None = None, alias: str | None = None) -> None: ...

    def set_master(self, dev: str, bridge: str | None) -> None: ...

    def set_up(self, dev: str, up: bool = True) -> None: ...

    def set_mtu(self, dev: str, mtu: int) -> None: ...

    def fdb_add(self, dev: str, mac: str, dst: str) -> None: ...

    def fdb_del(self, dev: str, mac: str, dst: str) -> None: ...

    def neigh_replace(self, dev: str, ip: str, mac: str) -> None: ...

    def neigh_del(self, dev: str, ip: str, mac: str) -> None: ...

    def delete_link(self, name: str, missing_ok: bool = True) -> None: ...

    # -- events -------------------------------------------------------------
    def watch(self, callback: Callable[[str, str], None]) -> Callable[[], None]:
        """Call ``callback(event, link name)`` on link changes; returns the function that stops it."""
        ...

    def close(self) -> None: ...
