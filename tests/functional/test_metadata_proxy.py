"""The metadata proxy (kaon.agent.metadata_proxy) with a real namespace: a
client inside it reaches a listener made from outside it, the forward leaves
from the test's own namespace with Neutron's headers, spoofed identity
headers are dropped, unknown sources and wrong local addresses get 404, and a
namespace made anew under the same name gets a new listener."""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from kaon.agent.metadata_proxy import MetadataProxy, ProxyConfig, sign
from kaon.dataplane import netns
from kaon.model.intent import MetadataSource
from tests.fullstack.stack import require_root

pytestmark = pytest.mark.needs_root

SOURCE = {"127.0.0.1": MetadataSource("inst-1", "proj-1")}


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
def proxy(upstream: int) -> Iterator[MetadataProxy]:
    p = MetadataProxy(ProxyConfig("127.0.0.1", upstream, "s3cret"))
    try:
        yield p
    finally:
        p.close()


def wget(ns: str, *args: str) -> subprocess.CompletedProcess[str]:
    # No -T: Debian 12's busybox 1.35 wget segfaults with it.
    return subprocess.run(["ip", "netns", "exec", ns, "busybox", "wget", "-q", "-O", "-", *args,
                           "http://127.0.0.1:9697/latest/meta-data/"], capture_output=True, text=True, timeout=15)


def test_forwards_with_neutrons_headers_and_drops_spoofed_ones(ns: str, proxy: MetadataProxy) -> None:
    proxy.ensure(ns, ("127.0.0.1", 9697), SOURCE)
    r = wget(ns, "--header", "X-Instance-ID: someone-else")
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    h = got["headers"]
    assert got["path"] == "/latest/meta-data/"
    assert h["X-Instance-ID"] == "inst-1" and h["X-Tenant-ID"] == "proj-1" and h["X-Forwarded-For"] == "127.0.0.1"
    assert h["X-Instance-ID-Signature"] == sign("s3cret", "inst-1")
    assert h["Host"] == "127.0.0.1:9697"


def test_unknown_source_and_wrong_local_address_get_404(ns: str, proxy: MetadataProxy) -> None:
    proxy.ensure(ns, ("127.0.0.1", 9697), {})
    assert "404" in wget(ns, "-S").stderr
    proxy.ensure(ns, ("127.0.0.1", 9697), SOURCE, local=frozenset({"10.9.9.9"}))
    assert "404" in wget(ns, "-S").stderr
    proxy.ensure(ns, ("127.0.0.1", 9697), SOURCE, local=frozenset({"127.0.0.1"}))
    assert wget(ns).returncode == 0


def test_a_namespace_made_anew_gets_a_new_listener(ns: str, proxy: MetadataProxy) -> None:
    proxy.ensure(ns, ("127.0.0.1", 9697), SOURCE)
    proxy.remove(ns)
    assert proxy.namespaces() == []
    proxy.ensure(ns, ("127.0.0.1", 9697), SOURCE)
    netns.delete(ns)  # behind the proxy's back: its socket now holds an orphan namespace
    netns.create(ns)
    subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
    assert wget(ns).returncode != 0
    proxy.ensure(ns, ("127.0.0.1", 9697), SOURCE)
    assert wget(ns).returncode == 0
