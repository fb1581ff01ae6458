"""A trace's question and its answer: :class:`Query` in, :class:`Trace` (a list of :class:`Hop`) out."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import netaddr

from kaon import errors

PROTOCOLS = ("icmp", "tcp", "udp")


class TraceError(errors.BadRequest):
    """A question the trace cannot ask (a malformed address, an ambiguous name): 400."""


class PortNotFound(errors.NotFound):
    """No port has that id or name: 404, Neutron's ``PortNotFound``."""


@dataclass(frozen=True)
class Query:
    to: str  # the destination address
    from_port: str | None = None  # a port's id or name ...
    from_external: str | None = None  # ... or an address outside the cloud (inbound)
    protocol: str = "icmp"
    dport: int | None = None  # tcp/udp destination port
    source: str | None = None  # the address the VM sends from (default: its own); another one tests spoofing

    def __post_init__(self) -> None:
        if (self.from_port is None) == (self.from_external is None):
            raise TraceError("give exactly one of a port to trace from and an external address")
        if self.protocol not in PROTOCOLS:
            raise TraceError(f"protocol {self.protocol!r} is not one of {', '.join(PROTOCOLS)}")
        if self.protocol in ("tcp", "udp") and self.dport is None:
            raise TraceError(f"{self.protocol} needs a destination port: --to ADDRESS:PORT")
        if self.dport is not None and not 0 < self.dport < 65536:
            raise TraceError(f"port {self.dport} is not between 1 and 65535")
        for label, value in (("destination", self.to), ("external address", self.from_external),
                             ("source address", self.source)):
            if value is not None and not netaddr.valid_ipv4(value) and not netaddr.valid_ipv6(value):
                raise TraceError(f"{label} {value!r} is not an IP address")

    @property
    def ip_version(self) -> int:
        return netaddr.IPAddress(self.to).version


def parse_to(text: str) -> tuple[str, int | None]:
    """``10.0.0.5``, ``10.0.0.5:22``, ``fd00::5`` or ``[fd00::5]:22`` → (address, port)."""
    text = text.strip()
    if text.startswith("["):
        address, _, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else None
    elif text.count(":") == 1:
        address, port = text.split(":")
    else:
        address, port = text, None
    if port is not None and not port.isdigit():
        raise TraceError(f"destination {text!r}: port {port!r} is not a number")
    return address, int(port) if port is not None else None


def query_from(params: Mapping[str, Any]) -> Query:
    """A query from the API's and the page's parameters: ``from_port`` or ``from_external``, ``to``
    (``ADDRESS[:PORT]``), ``port`` (instead of ``:PORT``), ``protocol`` (default icmp), ``source``."""
    to = params.get("to")
    if not isinstance(to, str) or not to:
        raise TraceError("give the destination: to=ADDRESS[:PORT]")
    address, port = parse_to(to)
    if params.get("port") not in (None, ""):
        try:
            port = int(params["port"])
        except (TypeError, ValueError):
            raise TraceError(f"port {params['port']!r} is not a number") from None
    values = {k: params.get(k) or None for k in ("from_port", "from_external", "source")}
    for k, v in values.items():
        if v is not None and not isinstance(v, str):
            raise TraceError(f"{k} must be a string")
    return Query(address, values["from_port"], values["from_external"], str(params.get("protocol") or "icmp"),
                 port, values["source"])


@dataclass(frozen=True)
class Hop:
    step: str  # source, port-security, egress, l2, router, nat, ingress, delivered
    text: str
    ok: bool = True  # False: the packet is dropped here
    ids: dict[str, str] = field(default_factory=dict)  # what the hop names: rule_id, router_id, port_id, ...


@dataclass
class Trace:
    query: Query
    hops: list[Hop] = field(default_factory=list)
    destination: str = ""  # where the packet was headed last: the fixed IP behind a floating IP (DNAT)

    @property
    def delivered(self) -> bool:
        return bool(self.hops) and self.hops[-1].step == "delivered"

    @property
    def verdict(self) -> str:
        last = self.hops[-1] if self.hops else None
        if last is None:
            return "not traced"
        return f"delivered {last.text}" if self.delivered else f"dropped at {last.step}: {last.text}"

    def lines(self) -> list[str]:
        return [f"{i:>2}. {h.step:<14} {'' if h.ok else 'DROPPED: '}{h.text}" for i, h in enumerate(self.hops, 1)]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Trace:
        """A trace from its JSON form (what ``GET /v2.0/trace`` answers)."""
        return cls(Query(**data["query"]), [Hop(h["step"], h["text"], bool(h["ok"]), dict(h.get("ids") or {}))
                                            for h in data["hops"]], str(data.get("destination") or ""))

    def as_dict(self) -> dict[str, Any]:
        return {"query": asdict(self.query), "delivered": self.delivered, "destination": self.destination,
                "verdict": self.verdict,
                "hops": [asdict(h) for h in self.hops]}
