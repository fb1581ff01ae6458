"""The server's HTTP limits on a running ``kaon server`` (issue 13, defect 1):
request bodies over ``[oslo_middleware] max_request_body_size`` get 413
before they are read (Content-Length and chunked), on the Neutron API and on
/identity/v3; half-sent request heads are closed after
``request_head_timeout`` without slowing anybody else; idle keep-alive
connections close after ``client_socket_timeout``; an address may hold at
most ``max_connections_per_client`` connections; a head line over
``max_header_line`` is refused; an error answer keeps the connection.

Raw sockets, because an HTTP client library will not send half a request.
Other client addresses are 127.0.0.x (all of 127/8 is loopback on Linux).
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from kaon.asgi.limits import HttpLimits
from kaon.config import load_config
from tests.fixtures import start_kaon_server
from tests.fixtures.server import KaonServer

HEAD_TIMEOUT = 2
IDLE_TIMEOUT = 4
PER_CLIENT = 250
LIMIT = 114688


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KaonServer]:
    conf = {"DEFAULT": {"request_head_timeout": HEAD_TIMEOUT, "client_socket_timeout": IDLE_TIMEOUT,
                        "max_connections_per_client": PER_CLIENT}}
    with start_kaon_server(tmp_path_factory.mktemp("limits"), auth_strategy="kaon", extra_conf=conf) as srv:
        yield srv


@pytest.fixture(scope="module")
def token(server: KaonServer) -> str:
    password = json.loads((Path(server.state_dir) / "passwords.json").read_text())["admin"]
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "admin", "domain": {"id": "default"}, "password": password}}},
        "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}}
    r = httpx.post(f"{server.url}/identity/v3/auth/tokens", json=body, timeout=10)
    assert r.status_code == 201, r.text
    return r.headers["x-subject-token"]


def connect(server: KaonServer, source: str = "127.0.0.1") -> socket.socket:
    s = socket.create_connection((server.host, server.port), timeout=5, source_address=(source, 0))
    return s


def read_response(s: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One response (Content-Length framed) from ``s``."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        assert chunk, f"connection closed before a response: {data!r}"
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = s.recv(65536)
        assert chunk
        rest += chunk
    return status, headers, rest[:length]


def closed_by_peer(s: socket.socket, wait: float) -> bool:
    s.settimeout(wait)
    try:
        return s.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def request_head(method: str, path: str, extra: str = "", token: str | None = None) -> bytes:
    auth = f"X-Auth-Token: {token}\r\n" if token else ""
    return f"{method} {path} HTTP/1.1\r\nHost: kaon\r\n{auth}{extra}\r\n".encode()


# -- bodies ---------------------------------------------------------------
def test_declared_body_over_the_limit_is_refused_unread(server: KaonServer, token: str) -> None:
    cases = [("/identity/v3/auth/tokens", None), ("/v2.0/networks", token)]
    for path, tok in cases:
        s = connect(server)
        start = time.monotonic()
        s.sendall(request_head("POST", path, "Content-Type: application/json\r\nContent-Length: 104857600\r\n",
                               tok) + b"{" + b" " * 1000)
        status, headers, body = read_response(s)
        assert status == 413, body
        assert time.monotonic() - start < 2
        assert headers.get("connection") == "close"
        err = json.loads(body)
        if path.startswith("/identity"):
            assert err == {"error": {"code": 413, "title": "Request Entity Too Large",
                                     "message": "Request is too large."}}
        else:
            assert err == {"NeutronError": {"type": "HTTPRequestEntityTooLarge",
                                            "message": "Request is too large.", "detail": ""}}
        assert closed_by_peer(s, 2)
        s.close()


def test_chunked_body_is_counted_and_stopped(server: KaonServer, token: str) -> None:
    for path, tok in (("/identity/v3/auth/tokens", None), ("/v2.0/networks", token)):
        s = connect(server)
        s.sendall(request_head("POST", path, "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n", tok))
        chunk = b"x" * 16384
        sent = 0
        try:
            while sent < 4 * LIMIT:
                s.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        status, _, body = read_response(s)
        assert status == 413, body
        s.close()


def test_body_at_the_limit_is_read(server: KaonServer, token: str) -> None:
    padding = "x" * (LIMIT - 200)
    raw = json.dumps({"network": {"name": "big"}, "pad": padding}).encode()
    assert len(raw) <= LIMIT
    r = httpx.post(f"{server.url}/v2.0/networks", content=raw, timeout=10,
                   headers={"X-Auth-Token": token, "Content-Type": "application/json"})
    assert r.status_code == 201 and r.json()["network"]["name"] == "big"  # Neutron ignores "pad"


def test_limit_follows_the_option(tmp_path: Path) -> None:
    assert HttpLimits.from_config(load_config([])).max_request_body_size == 114688
    cfg = load_config([], {"oslo_middleware": {"max_request_body_size": "2048"},
                           "DEFAULT": {"client_socket_timeout": "0"}})
    limits = HttpLimits.from_config(cfg)
    assert limits.max_request_body_size == 2048 and limits.client_socket_timeout == 0


# -- heads ------------------------------------------------------------------
def test_endless_header_line_or_head_is_refused(server: KaonServer) -> None:
    for head in (b"GET / HTTP/1.1\r\nHost: kaon\r\nX-Long: " + b"a" * 20000,  # one line over 16384
                 b"GET / HTTP/1.1\r\n" + b"X-Many: " + b"b" * 1000 + b"\r\n" * 1 + b"".join(
                     b"X-%d: %s\r\n" % (i, b"c" * 1000) for i in range(140))):  # 140 kB of short lines
        s = connect(server)
        try:
            s.sendall(head)
        except (BrokenPipeError, ConnectionResetError):
            pass
        status, headers, body = read_response(s)
        assert status == 431, body
        assert json.loads(body)["NeutronError"]["type"] == "HTTPRequestHeaderFieldsTooLarge"
        assert closed_by_peer(s, 2)
        s.close()
    # A long token-sized header is fine.
    r = httpx.get(server.url + "/", headers={"X-Big": "t" * 12000}, timeout=5)
    assert r.status_code == 200


# -- connections ------------------------------------------------------------
def test_half_sent_heads_are_closed_and_cost_nobody(server: KaonServer) -> None:
    half = b"GET /v2.0/networks HTTP/1.1\r\nHost: kaon\r\nX-Slow: "
    sockets = []
    for _ in range(200):
        s = connect(server, "127.0.0.2")
        s.sendall(half)
        sockets.append(s)
    try:
        with httpx.Client(timeout=5) as client:
            client.get(server.url + "/")
            start = time.monotonic()
            for _ in range(5):
                assert client.get(server.url + "/").status_code == 200
            assert (time.monotonic() - start) / 5 < 0.2
        deadline = time.monotonic() + HEAD_TIMEOUT + 3
        for s in sockets:
            assert closed_by_peer(s, max(0.1, deadline - time.monotonic())), "a half-sent head is still open"
    finally:
        for s in sockets:
            s.close()


def test_idle_keep_alive_closes_and_errors_keep_the_connection(server: KaonServer) -> None:
    s = connect(server)
    try:
        for _ in range(2):  # an error answer, then the same connection again
            s.sendall(request_head("GET", "/v2.0/routers/%00"))
            status, headers, _ = read_response(s)
            assert status in (400, 401) and headers.get("connection") != "close"
        s.sendall(request_head("GET", "/"))
        assert read_response(s)[0] == 200
        # Idle past the head timeout: the keep-alive timeout, not the head one, applies.
        assert not closed_by_peer(s, HEAD_TIMEOUT + 0.5)
        assert closed_by_peer(s, IDLE_TIMEOUT + 2)
    finally:
        s.close()


def test_connections_per_client_are_capped(server: KaonServer) -> None:
    """At the cap, the address's oldest connection not serving a request makes
    room for the new one: a flood holds at most the cap, and a client that
    leaks idle keep-alive connections is not locked out by them."""
    held = []
    try:
        for _ in range(PER_CLIENT):
            held.append(connect(server, "127.0.0.3"))
        time.sleep(0.3)
        extra = connect(server, "127.0.0.3")
        extra.sendall(request_head("GET", "/"))
        assert read_response(extra)[0] == 200, "the new connection was not served"
        extra.close()
        assert closed_by_peer(held[0], 1.0), "the oldest idle connection was kept past the cap"
        assert not closed_by_peer(held[1], 0.2), "more than one connection was closed"
        # Another address is served meanwhile.
        other = connect(server, "127.0.0.4")
        other.sendall(request_head("GET", "/"))
        assert read_response(other)[0] == 200
        other.close()
    finally:
        for s in held:
            s.close()
    # Once they are gone the address may connect again.
    time.sleep(0.3)
    again = connect(server, "127.0.0.3")
    again.sendall(request_head("GET", "/"))
    assert read_response(again)[0] == 200
    again.close()
