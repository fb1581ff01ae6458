"""The metadata proxy process (kaon.agent.metadata_proxy_main, driven by
kaon.agent.metadata_proxy_process) with a real namespace: a client inside it
reaches a proxy whose process stays outside it, the forward leaves from the
test's own namespace with Neutron's headers, spoofed identity headers are
dropped, unknown sources and wrong local addresses get 404; a new table is
reread (same pid), the same command line is adopted, another one restarts
it, a dead proxy is started again, a namespace made anew makes the old proxy
leave, and ``stop`` ends it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from kaon.agent import metadata_proxy_process as proxies
from kaon.agent.metadata_proxy import ProxyConfig, Table, sign
from kaon.dataplane import DataplaneError, netns
from kaon.dataplane.dnsmasq import cmdline
from kaon.model.intent import MetadataSource
from tests.fullstack.stack import require_root

pytestmark = pytest.mark.needs_root

SOURCE = {"127.0.0.1": MetadataSource("inst-1", "proj-1")}
ADDRESS = ("127.0.0.1", 9697)


class Upstream(BaseHTTPRequestHandler):
    """Answers with the path and the headers it got, as JSON."""

    def do_GET(self) -> None:
        body = json.dumps({"path": self.path, "headers": dict(self.headers.items())}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def upstream() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def ns(make_netns: Any) -> str:
    require_root()
    name = str(make_netns("md"))
    subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
    return name


@pytest.fixture
def proxy_dir(tmp_path: Path) -> Iterator[Path]:
    d = tmp_path / "proxy"
    try:
        yield d
    finally:
        proxies.stop(d)


def ensure(d: Path, ns: str, upstream: int, table: Table) -> int:
    return proxies.ensure(d, ns, ADDRESS, ProxyConfig("127.0.0.1", upstream, "unused"), table)


def wget(ns: str, *args: str) -> subprocess.CompletedProcess[str]:
    # No -T: Debian 12's busybox 1.35 wget segfaults with it.
    return subprocess.run(["ip", "netns", "exec", ns, "busybox", "wget", "-q", "-O", "-", *args,
                           "http://127.0.0.1:9697/latest/meta-data/"], capture_output=True, text=True, timeout=15)


def gone(pid: int, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cmdline(pid) is None:
            return True
        time.sleep(0.05)
    return False


def test_forwards_with_neutrons_headers_and_drops_spoofed_ones(ns: str, upstream: int, proxy_dir: Path) -> None:
    pid = ensure(proxy_dir, ns, upstream, Table("s3cret", SOURCE))
    assert pid != os.getpid() and (proxy_dir / "table.json").stat().st_mode & 0o777 == 0o600  # holds the secret
    r = wget(ns, "--header", "X-Instance-ID: someone-else")
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    h = got["headers"]
    assert got["path"] == "/latest/meta-data/"
    assert h["X-Instance-ID"] == "inst-1" and h["X-Tenant-ID"] == "proj-1" and h["X-Forwarded-For"] == "127.0.0.1"
    assert h["X-Instance-ID-Signature"] == sign("s3cret", "inst-1")
    assert h["Host"] == "127.0.0.1:9697"
    # The process is not in the namespace: only its socket is (the forward left from here).
    assert str(pid) not in subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout


def test_a_new_table_is_reread_by_the_same_process(ns: str, upstream: int, proxy_dir: Path) -> None:
    pid = ensure(proxy_dir, ns, upstream, Table("s3cret", {}))
    assert "404" in wget(ns, "-S").stderr
    assert ensure(proxy_dir, ns, upstream, Table("s3cret", SOURCE, frozenset({"10.9.9.9"}))) == pid
    assert "404" in wget(ns, "-S").stderr
    assert ensure(proxy_dir, ns, upstream, Table("other", SOURCE, frozenset({"127.0.0.1"}))) == pid
    r = wget(ns)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["headers"]["X-Instance-ID-Signature"] == sign("other", "inst-1")


def test_adopted_when_unchanged_restarted_when_changed_or_dead(ns: str, upstream: int, proxy_dir: Path) -> None:
    table = Table("s3cret", SOURCE)
    pid = ensure(proxy_dir, ns, upstream, table)
    assert ensure(proxy_dir, ns, upstream, table) == pid  # what a restarted agent does: adopt
    moved = ensure(proxy_dir, ns, upstream + 1, table)  # another nova_metadata_port: a new process
    assert moved != pid and gone(pid)
    assert "502" in wget(ns, "-S").stderr
    os.kill(moved, signal.SIGKILL)  # killed by hand: started again
    assert gone(moved)
    again = ensure(proxy_dir, ns, upstream, table)
    assert again not in (pid, moved) and wget(ns).returncode == 0


def test_a_namespace_made_anew_makes_the_old_proxy_leave(ns: str, upstream: int, proxy_dir: Path) -> None:
    pid = ensure(proxy_dir, ns, upstream, Table("s3cret", SOURCE))
    netns.delete(ns)  # behind the proxy's back: its socket holds an orphan namespace until it leaves
    netns.create(ns)
    subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
    assert wget(ns).returncode != 0
    assert gone(pid), "the proxy outlived its namespace"
    assert ensure(proxy_dir, ns, upstream, Table("s3cret", SOURCE)) != pid
    assert wget(ns).returncode == 0


def test_stop_ends_it_and_a_stranger_is_never_signalled(ns: str, upstream: int, proxy_dir: Path) -> None:
    pid = ensure(proxy_dir, ns, upstream, Table("s3cret", SOURCE))
    assert proxies.stop(proxy_dir) and cmdline(pid) is None
    assert not proxies.stop(proxy_dir)
    (proxy_dir / "pid").write_text(f"{os.getpid()}\n")  # a pid that is not a proxy of this directory
    assert proxies.running(proxy_dir) is None and not proxies.stop(proxy_dir)


def test_a_proxy_that_cannot_listen_says_why(ns: str, upstream: int, proxy_dir: Path) -> None:
    blocker = netns.open_socket(ns, socket.AF_INET, socket.SOCK_STREAM)
    try:
        blocker.bind(ADDRESS)
        blocker.listen(1)
        with pytest.raises(DataplaneError, match="Address already in use"):
            ensure(proxy_dir, ns, upstream, Table("s3cret", SOURCE))
    finally:
        blocker.close()
    assert proxies.running(proxy_dir) is None
