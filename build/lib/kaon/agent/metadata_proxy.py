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

Why one process and one socket per namespace instead of Neutron's haproxy
per namespace: a socket keeps the namespace it was created in for its whole
life (kaon.dataplane.netns.open_socket), so one asyncio loop in one thread of
the agent serves every namespace, and the forward leaves from the agent's own
namespace, where the metadata service's address (127.0.0.1 on the lab's or an
all-in-one machine) is reachable. Each listener knows which namespace it is
in, so overlapping tenant addresses never mix.

Lifecycle: a listener lives as long as the agent process. A restarted agent
binds anew at its first sync (SO_REUSEADDR; while an old agent still holds
the port, bind fails and the role retries). A listener also pins its
namespace: ``remove`` must run before the namespace is deleted, or the
namespace and its veths would outlive ``ip netns delete``; a namespace made
anew under the same name (another inode) gets a new listener.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
import socket
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kaon.config import Config, parse_int
from kaon.dataplane import netns

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
_IP_FREEBIND = getattr(socket, "IP_FREEBIND", 15)


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


@dataclass
class Listener:
    ns: str
    address: tuple[str, int]
    inode: int
    sock: socket.socket
    # source IPv4 -> {"instance_id", "project_id"}; replaced whole, never mutated
    sources: Mapping[str, Mapping[str, str]]
    # Router namespaces: connections must arrive on an interface address
    # (what REDIRECT targets), not on the gateway from the outside.
    local: frozenset[str] | None
    server: asyncio.AbstractServer | None = None
    clients: set[asyncio.StreamWriter] = field(default_factory=set)


class MetadataProxy:
    def __init__(self, config: ProxyConfig) -> None:
        self.config = config
        self._listeners: dict[str, Listener] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()

    # -- control, from the agent's worker thread ---------------------------
    def ensure(self, ns: str, address: tuple[str, int], sources: Mapping[str, Mapping[str, str]],
               local: frozenset[str] | None = None) -> None:
        """Listen on ``address`` in namespace ``ns`` for ``sources``; idempotent and cheap."""
        inode = os.stat(netns.path(ns)).st_ino
        have = self._listeners.get(ns)
        if have is not None and have.inode == inode and have.address == address:
            have.sources, have.local = dict(sources), local  # read by the loop thread: one reference swap
            return
        if have is not None:
            self.remove(ns)
        sock = netns.open_socket(ns, socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            # The DHCP namespace's 169.254.169.254/32 may be added a moment later.
            sock.setsockopt(socket.IPPROTO_IP, _IP_FREEBIND, 1)
            sock.bind(address)
            sock.listen(128)
            sock.setblocking(False)
            listener = Listener(ns, address, inode, sock, dict(sources), local)
            listener.server = self._call(self._start(listener))
        except BaseException:
            sock.close()
            raise
        self._listeners[ns] = listener
        LOG.info("metadata proxy listening on %s:%d in %s", address[0], address[1], ns)

    def remove(self, ns: str) -> None:
        """Stop listening in ``ns`` and drop its connections (they pin the namespace)."""
        listener = self._listeners.pop(ns, None)
        if listener is None:
            return
        self._call(self._stop(listener))
        listener.sock.close()
        LOG.info("metadata proxy stopped in %s", ns)

    def namespaces(self) -> list[str]:
        return sorted(self._listeners)

    def close(self) -> None:
        for ns in list(self._listeners):
            self.remove(ns)
        with self._lock:
            loop, self._loop = self._loop, None
        if loop is not None:
            loop.call_soon_threadsafe(loop.stop)

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._ensure_loop()).result(10)

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name="kaon-metadata", daemon=True).start()
                self._loop = loop
            return self._loop

    # -- the loop thread -----------------------------------------------------
    async def _start(self, listener: Listener) -> asyncio.AbstractServer:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            listener.clients.add(writer)
            try:
                await asyncio.wait_for(self._serve(listener, reader, writer), REQUEST_TIMEOUT)
            except Exception as exc:  # a broken client must not hurt the others
                LOG.debug("metadata request in %s: %s: %s", listener.ns, type(exc).__name__, exc)
            finally:
                listener.clients.discard(writer)
                writer.close()

        return await asyncio.start_server(handle, sock=listener.sock, limit=MAX_HEAD)

    async def _stop(self, listener: Listener) -> None:
        if listener.server is not None:
            listener.server.close()
        for writer in list(listener.clients):
            writer.close()

    async def _serve(self, listener: Listener, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")[0]
        here = writer.get_extra_info("sockname")[0]
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            request = parse_head(head)
        except (asyncio.LimitOverrunError, asyncio.IncompleteReadError, ValueError):
            return await _reply(writer, 400, "Bad Request")
        source = listener.sources.get(peer)
        if source is None or (listener.local is not None and here not in listener.local):
            LOG.info("metadata request from unknown source %s in %s", peer, listener.ns)
            return await _reply(writer, 404, "Not Found")
        length = int(request.headers.get("content-length", "0") or 0)
        if "transfer-encoding" in request.headers or not 0 <= length <= MAX_BODY:
            return await _reply(writer, 400, "Bad Request")
        body = await reader.readexactly(length) if length else b""
        await self._forward(request, body, identity_headers(self.config.shared_secret, peer, source), writer)

    async def _forward(self, request: Request, body: bytes, extra: list[tuple[str, str]],
                       writer: asyncio.StreamWriter) -> None:
        cfg = self.config
        try:
            up_reader, up_writer = await asyncio.open_connection(cfg.nova_metadata_host, cfg.nova_metadata_port)
        except OSError as exc:
            LOG.warning("metadata service %s:%d unreachable: %s", cfg.nova_metadata_host, cfg.nova_metadata_port, exc)
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


def identity_headers(secret: str, source_ip: str, source: Mapping[str, str]) -> list[tuple[str, str]]:
    instance = source["instance_id"]
    return [("X-Forwarded-For", source_ip), ("X-Instance-ID", instance), ("X-Tenant-ID", source["project_id"]),
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
