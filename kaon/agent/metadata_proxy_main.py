"""One metadata proxy as a process of its own: ``python -m kaon.agent.metadata_proxy_main``.

Started by the DHCP and L3 roles (kaon.agent.metadata_proxy_process), one
per ``qdhcp-``/``qrouter-`` namespace that serves metadata, so that metadata
keeps answering while the agent is down or restarting. It daemonizes like
dnsmasq: the command returns once the proxy listens and its pid file names
it (exit 0), or with the reason on stderr (exit 1); the daemon has its own
session, so it outlives the agent, kill -9 included.

The process stays in the agent's network namespace -- the forward to the
metadata service leaves from there, where ``nova_metadata_host`` (127.0.0.1
on an all-in-one or lab machine) is reachable -- and only its listening
socket is made in the served namespace (kaon.dataplane.netns.open_socket).

Signals: SIGHUP rereads the table file (who may ask, the secret); SIGTERM
stops. It also stops by itself when the namespace it serves is gone or made
anew under the same name (another inode): its socket would otherwise keep
a deleted namespace, veths included, alive, and serve nobody.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
from pathlib import Path

from kaon.agent.metadata_proxy import ProxyServer, Table
from kaon.dataplane import netns

LOG = logging.getLogger("kaon.agent.metadata")

NAMESPACE_CHECK = 1.0  # seconds between looks at the served namespace
_IP_FREEBIND = getattr(socket, "IP_FREEBIND", 15)


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m kaon.agent.metadata_proxy_main")
    p.add_argument("--pid-file", required=True, type=Path)
    p.add_argument("--namespace", required=True)
    p.add_argument("--namespace-inode", required=True, type=int, help="the served namespace's inode when started")
    p.add_argument("--bind", required=True, help="ADDRESS:PORT inside the namespace")
    p.add_argument("--upstream", required=True, help="HOST:PORT of the metadata service")
    p.add_argument("--table", required=True, type=Path, help="JSON: secret, sources, local addresses")
    p.add_argument("--log-file", type=Path)
    return p.parse_args(argv)


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)


def _inode(ns: str) -> int | None:
    try:
        return os.stat(netns.path(ns)).st_ino
    except FileNotFoundError:
        return None


def listen(ns: str, inode: int, address: tuple[str, int]) -> socket.socket:
    """The listening socket in ``ns``, which must still be the namespace of ``inode``."""
    sock = netns.open_socket(ns, socket.AF_INET, socket.SOCK_STREAM)
    try:
        if _inode(ns) != inode:
            raise RuntimeError(f"namespace {ns} is not the one the proxy was started for (inode {inode})")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # The DHCP namespace's 169.254.169.254/32 may be added a moment later.
        sock.setsockopt(socket.IPPROTO_IP, _IP_FREEBIND, 1)
        sock.bind(address)
        sock.listen(128)
    except BaseException:
        sock.close()
        raise
    return sock


def _write_pid(path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(f"{os.getpid()}\n")
    os.replace(tmp, path)


class Ready:
    """The pipe to the waiting parent: "ok" once listening, else why not; closed after one answer."""

    def __init__(self, fd: int) -> None:
        self.fd: int | None = fd

    def answer(self, text: str) -> None:
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.write(self.fd, text.encode())
            os.close(self.fd)
            self.fd = None


async def serve(args: argparse.Namespace, ready: Ready) -> None:
    """Listen, tell the parent through ``ready``, serve until SIGTERM or the namespace goes."""
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    table = Table.from_json(args.table.read_text())
    proxy = ProxyServer(args.namespace, _address(args.upstream), table)

    def reload() -> None:
        try:
            proxy.table = Table.from_json(args.table.read_text())
            LOG.info("table reread: %d sources", len(proxy.table.sources))
        except (OSError, ValueError) as exc:
            LOG.warning("table %s not reread, the old one stays: %s", args.table, exc)

    # Handlers before the pid file exists: the agent signals only a proxy its pid file names.
    loop.add_signal_handler(signal.SIGHUP, reload)
    loop.add_signal_handler(signal.SIGTERM, done.set)
    loop.add_signal_handler(signal.SIGINT, done.set)
    sock = listen(args.namespace, args.namespace_inode, _address(args.bind))
    server = await proxy.start(sock)
    _write_pid(args.pid_file)
    ready.answer("ok")
    LOG.info("listening on %s in %s (pid %d), forwarding to %s", args.bind, args.namespace, os.getpid(),
             args.upstream)
    while not done.is_set():
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(done.wait(), NAMESPACE_CHECK)
        if _inode(args.namespace) != args.namespace_inode:
            LOG.info("namespace %s is gone or made anew: stopping", args.namespace)
            break
    server.close()
    LOG.info("stopped")


def _daemon(args: argparse.Namespace, ready: Ready) -> int:
    os.setsid()
    null = os.open(os.devnull, os.O_RDWR)
    log = os.open(args.log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600) if args.log_file else null
    os.dup2(null, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s")
    try:
        asyncio.run(serve(args, ready))
    except Exception as exc:
        LOG.error("metadata proxy in %s: %s: %s", args.namespace, type(exc).__name__, exc)
        ready.answer(f"{type(exc).__name__}: {exc}")
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    read_end, write_end = os.pipe()
    if os.fork() == 0:
        os.close(read_end)
        os._exit(_daemon(args, Ready(write_end)))
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        answer = pipe.read()  # "ok", or why it failed; EOF when the daemon is ready or gone
    if answer == b"ok":
        return 0
    print(f"metadata proxy in {args.namespace}: {answer.decode(errors='replace') or 'exited before it listened'}",
          file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
