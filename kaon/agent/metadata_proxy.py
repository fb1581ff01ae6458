"""The metadata proxy: 169.254.169.254 inside router and DHCP namespaces.

A VM asks ``http://169.254.169.254/...``. Its request reaches a listener in
the namespace of its router (nft redirects port 80 there to 9697, kaon.agent.
l3_plan) or of its network's DHCP port (isolated metadata: the listener binds
169.254.169.254:80 itself). The proxy names the instance from the request's
source address -- looked up in the table the server compiled for that
namespace (``metadata`` in the router's or network's part of the intent) --
and forwards the request to ``nova_metadata_host:nova_metadata_port`` with
Neutron's headers: ``X-Forwarded-For`` (the VM's address), ``X-Instance-ID``
(the port's device_id), ``X-Tenant-ID`` and ``X-Instance-ID-Signature``
(hex HMAC-SHA256 of the instance id with ``metadata_proxy_shared_secret``).
An unknown source gets 404 and nothing is forwarded.

This module is what one proxy serves (:class:`ProxyServer`, one listening
socket, one :class:`Table`) and the HTTP it speaks. Each proxy is a process
of its own (kaon.agent.metadata_proxy_main), started, adopted and stopped by
the DHCP and L3 roles (kaon.agent.metadata_proxy_process), so it keeps
answering while the agent restarts -- as Neutron's haproxy per router and
per network does.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import socket
from collections.abc import Mapping
from dataclasses import dataclass

from kaon.config import Config, parse_int
from kaon.model.intent import MetadataSource

LOG = logging.getLogger("kaon.agent.metadata")

ROUTER_PORT = 9697  # Neutron's: the router namespace's redirect target
METADATA_IP = "169.254.169.254"
REQUEST_TIMEOUT = 30.0
MAX_HEAD = 64 * 1024
MAX_BODY = 1024 * 1024
# Identity headers only the proxy may set, and hop-by-hop headers.
DROPPED = frozenset({"x-forwarded-for", "x-instance-id", "x-instance-id-signature", "x-tenant-id",
                     "x-neutron-router-id", "x-neutron-network-id", "connection", "keep-alive",
                     "proxy-connection", "content-length"})


@dataclass(frozen=True)
class ProxyConfig:
    nova_metadata_host: str = "127.0.0.1"
    nova_metadata_port: int = 8775
    shared_secret: str = ""


def proxy_config(cfg: Config) -> ProxyConfig:
    """Neutron's metadata agent options; ``[DEFAULT]`` first, then ``[agent]``."""
    def opt(name: str) -> str | None:
        value = cfg.get("DEFAULT", name)
        return value if value is not None else cfg.get("agent", name)

    port = opt("nova_metadata_port")
    return ProxyConfig(nova_metadata_host=(opt("nova_metadata_host") or "127.0.0.1").strip(),
                       nova_metadata_port=parse_int(port) if port else 8775,
                       shared_secret=opt("metadata_proxy_shared_secret") or "")


def sign(secret: str, instance_id: str) -> str:
    """Neutron's (and Nova's) X-Instance-ID-Signature."""
    return hmac.new(secret.encode(), instance_id.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Table:
    """What a proxy needs besides its socket; the file the agent rewrites and the proxy rereads on SIGHUP."""
    secret: str
    sources: Mapping[str, MetadataSource]  # source IPv4 -> who it is
    # Router namespaces: connections must arrive on an interface address
    # (what REDIRECT targets), not on the gateway from the outside.
    local: frozenset[str] | None = None

    def to_json(self) -> str:
        return json.dumps({"secret": self.secret, "local": sorted(self.local) if self.local is not None else None,
                           "sources": {ip: {"instance_id": s.instance_id, "project_id": s.project_id}
                                       for ip, s in sorted(self.sources.items())}}, indent=1) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Table:
        """ValueError (json's included) if ``text`` is not a table."""
        raw = json.loads(text)
        try:
            local = raw["local"]
            return cls(str(raw["secret"]),
                       {str(ip): MetadataSource(str(s["instance_id"]), str(s["project_id"]))
                        for ip, s in raw["sources"].items()},
                       frozenset(map(str, local)) if local is not None else None)
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"not a metadata proxy table: {type(exc).__name__}: {exc}") from None


class ProxyServer:
    """One listening socket (already bound, in its namespace) and the table it answers from."""

    def __init__(self, name: str, upstream: tuple[str, int], table: Table) -> None:
        self.name = name  # the namespace, for the logs
        self.upstream = upstream
        self.table = table  # replaced whole (SIGHUP), never mutated

    async def start(self, sock: socket.socket) -> asyncio.AbstractServer:
        sock.setblocking(False)
        return await asyncio.start_server(self._handle, sock=sock, limit=MAX_HEAD)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await asyncio.wait_for(self._serve(reader, writer), REQUEST_TIMEOUT)
        except Exception as exc:  # a broken client must not hurt the others
            LOG.debug("metadata request in %s: %s: %s", self.name, type(exc).__name__, exc)
        finally:
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        table = self.table
        peer = writer.get_extra_info("peername")[0]
        here = writer.get_extra_info("sockname")[0]
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            request = parse_head(head)
        except (asyncio.LimitOverrunError, asyncio.IncompleteReadError, ValueError):
            return await _reply(writer, 400, "Bad Request")
        source = table.sources.get(peer)
        if source is None or (table.local is not None and here not in table.local):
            LOG.info("metadata request from unknown source %s in %s", peer, self.name)
            return await _reply(writer, 404, "Not Found")
        length = int(request.headers.get("content-length", "0") or 0)
        if "transfer-encoding" in request.headers or not 0 <= length <= MAX_BODY:
            return await _reply(writer, 400, "Bad Request")
        body = await reader.readexactly(length) if length else b""
        await self._forward(request, body, identity_headers(table.secret, peer, source), writer)

    async def _forward(self, request: Request, body: bytes, extra: list[tuple[str, str]],
                       writer: asyncio.StreamWriter) -> None:
        host, port = self.upstream
        try:
            up_reader, up_writer = await asyncio.open_connection(host, port)
        except OSError as exc:
            LOG.warning("metadata service %s:%d unreachable: %s", host, port, exc)
            return await _reply(writer, 502, "Bad Gateway")
        try:
            up_writer.write(upstream_request(request, body, extra))
            await up_writer.drain()
            first = True
            while chunk := await up_reader.read(65536):
                if first and chunk.split(b" ", 2)[1:2] == [b"403"]:
                    LOG.warning("the metadata service answered 403 Forbidden: does metadata_proxy_shared_secret "
                                "match the service's?")
                first = False
                writer.write(chunk)
                await writer.drain()
        finally:
            up_writer.close()


@dataclass(frozen=True)
class Request:
    method: str
    target: str
    headers: dict[str, str]  # lower-case names
    raw_headers: list[tuple[str, str]]


def parse_head(head: bytes) -> Request:
    """The request line and headers of an HTTP/1.x request (ValueError if malformed)."""
    lines = head.decode("latin-1").split("\r\n")
    method, target, version = lines[0].split(" ")
    if not version.startswith("HTTP/1.") or not target.startswith("/") or not method.isalpha():
        raise ValueError(f"bad request line {lines[0]!r}")
    raw = []
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise ValueError(f"bad header line {line!r}")
        raw.append((name, value.strip()))
    return Request(method, target, {n.lower(): v for n, v in raw}, raw)


def identity_headers(secret: str, source_ip: str, source: MetadataSource) -> list[tuple[str, str]]:
    instance = source.instance_id
    return [("X-Forwarded-For", source_ip), ("X-Instance-ID", instance), ("X-Tenant-ID", source.project_id),
            ("X-Instance-ID-Signature", sign(secret, instance))]


def upstream_request(request: Request, body: bytes, extra: list[tuple[str, str]]) -> bytes:
    """The request as forwarded: HTTP/1.0, so the answer ends when the connection does."""
    headers = [(n, v) for n, v in request.raw_headers if n.lower() not in DROPPED]
    headers += [*extra, ("Content-Length", str(len(body))), ("Connection", "close")]
    text = f"{request.method} {request.target} HTTP/1.0\r\n" + "".join(f"{n}: {v}\r\n" for n, v in headers)
    return (text + "\r\n").encode("latin-1") + body


async def _reply(writer: asyncio.StreamWriter, status: int, reason: str) -> None:
    body = f"{status} {reason}\n".encode()
    writer.write(f"HTTP/1.0 {status} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {len(body)}\r\n"
                 f"Connection: close\r\n\r\n".encode() + body)
    await writer.drain()
