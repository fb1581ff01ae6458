"""The page's server side over HTTP, against a real server with the embedded
identity: who gets in, what each caller sees, the live stream, the trace form."""

from __future__ import annotations

import signal
import threading
import time
from typing import Any

import httpx
import orjson

from kaon.asgi.connections import SHUTDOWN_GRACE
from tests.fixtures.server import KaonServer
from tests.web.support import Caller


def test_the_page_sends_strangers_to_the_login_and_serves_its_files(web_server: KaonServer) -> None:
    with httpx.Client(base_url=web_server.url, timeout=10) as c:
        r = c.get("/ui/")
        assert r.status_code == 303 and r.headers["location"] == "/ui/login"
        assert c.get("/ui/", headers={"x-auth-token": "not-a-token"}).headers["location"] == "/ui/login"
        login = c.get("/ui/login")
        assert login.status_code == 200 and 'id="login"' in login.text
        script = c.get("/ui/static/app.js")
        assert script.status_code == 200 and "EventSource" in script.text
        # The data routes answer 401 in Keystone's shape, for the script to act on.
        assert c.get("/ui/api/topology").status_code == 401
        # Only the static folder is public: no way out of it.
        assert c.get("/ui/static/%2e%2e/routes.py").status_code == 404


def test_a_session_cookie_opens_the_page_and_nothing_else(web_server: KaonServer, demo: Caller) -> None:
    with httpx.Client(base_url=web_server.url, timeout=10) as c:
        r = c.post("/ui/session", headers={"x-auth-token": demo.token})
        assert r.status_code == 200, r.text
        cookie = r.headers["set-cookie"].lower()
        assert "kaon_ui_token=" in cookie and "httponly" in cookie and "path=/ui" in cookie
        assert "samesite=strict" in cookie
        assert c.get("/ui/").status_code == 200  # the client sends the cookie now
        assert c.get("/ui/api/topology").json()["is_admin"] is False  # demo's own view
        # The cookie is for /ui only: the v2.0 API still wants the header.
        assert c.get("/v2.0/networks", headers={"cookie": f"kaon_ui_token={demo.token}"}).status_code == 401
        # A session is made from a header, never re-made from the cookie itself.
        again = c.post("/ui/session")
        assert again.status_code == 400 and again.json()["NeutronError"]["type"] == "SessionNeedsHeader"
        out = c.post("/ui/logout")
        assert out.status_code == 303 and 'kaon_ui_token=""' in out.headers["set-cookie"]


def test_a_member_sees_what_the_api_shows_them(admin: Caller, demo: Caller) -> None:
    theirs = admin.network("admin-only")
    failed = admin.ghost_port(theirs["id"])
    mine = demo.network("demo-own")
    demo.create("ports", "port", network_id=mine["id"], device_owner="compute:nova", device_id="server-demo")
    member = demo.topology()
    names = {n["name"] for n in member["networks"]}
    assert mine["name"] in names and theirs["name"] not in names
    assert member["is_admin"] is False and member["hosts"] == []
    admin_only = {"binding:host_id", "binding:vif_type", "binding:failure_reason", "binding:profile"}
    assert member["ports"] and all(admin_only.isdisjoint(p) for p in member["ports"])
    assert {n["id"] for n in member["networks"]} == {n["id"] for n in demo.client.get("/v2.0/networks").json()["networks"]}

    view = admin.topology()
    port = next(p for p in view["ports"] if p["id"] == failed["id"])
    host = failed["binding:host_id"]
    assert port["binding:vif_type"] == "binding_failed"
    assert host in port["binding:failure_reason"]
    assert {"name": host, "ports": 1}.items() <= next(h for h in view["hosts"] if h["name"] == host).items()
    vm = next(v for v in view["vms"] if v["id"] == failed["device_id"])
    assert vm["binding_failed"] is True and vm["ports"] == [failed["id"]]
    # kaon doctor's finding stands beside the port it names (kaon.web.findings).
    found = [f for f in view["findings"] if f["subject"] == failed["id"]]
    assert len(found) == 1 and host in found[0]["message"]


def _events(client: httpx.Client):
    with client.stream("GET", "/ui/api/events") as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        event = None
        for line in r.iter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event == "topology":
                yield orjson.loads(line[6:])


def test_the_event_stream_sends_a_change_within_two_seconds(web_server: KaonServer, admin: Caller) -> None:
    with httpx.Client(base_url=web_server.url, headers={"x-auth-token": admin.token}, timeout=10) as c:
        stream = _events(c)
        first = next(stream)
        created = admin.network("live")
        started = time.monotonic()
        for view in stream:
            if any(n["id"] == created["id"] for n in view["networks"]):
                break
            assert view["revision"] != first["revision"]
        elapsed = time.monotonic() - started
        assert elapsed < 2.0, f"the new network showed after {elapsed:.2f} s"


def test_the_trace_form_answers_with_kaon_trace(admin: Caller, demo: Caller) -> None:
    net = admin.network("trace")
    port = admin.ghost_port(net["id"])
    r = admin.client.post("/ui/api/trace", json={"from_port": port["id"], "to": "10.0.0.1", "protocol": "icmp"})
    assert r.status_code == 200, r.text
    trace = r.json()["trace"]
    assert trace["delivered"] is False and trace["hops"][-1]["ids"] == {"port_id": port["id"]}
    assert f"failed to bind on host {port['binding:host_id']}" in trace["verdict"]
    assert trace["lines"][0].startswith(" 1. source") and "DROPPED: " in trace["lines"][0]
    r = admin.client.post("/ui/api/trace", json={"from_port": "no-such-port", "to": "10.0.0.1"})
    assert r.status_code == 404 and r.json()["NeutronError"]["type"] == "PortNotFound"
    r = admin.client.post("/ui/api/trace", json={"from_port": port["id"], "to": "10.0.0.1:x"})
    assert r.status_code == 400 and r.json()["NeutronError"]["type"] == "TraceError"
    r = admin.client.post("/ui/api/trace", content=b"not json", headers={"content-type": "application/json"})
    assert r.status_code == 400
    r = demo.client.post("/ui/api/trace", json={"from_port": port["id"], "to": "10.0.0.1"})
    assert r.status_code == 403  # get_trace is admin only: a trace reads every host's intent


def test_an_open_page_does_not_hold_the_server_at_shutdown(live_server: Any) -> None:
    srv = live_server()
    ended = threading.Event()

    def watch() -> None:
        try:
            with httpx.stream("GET", f"{srv.url}/ui/api/events", timeout=60) as r:
                for _ in r.iter_lines():
                    pass
        except httpx.HTTPError:
            pass
        ended.set()

    threading.Thread(target=watch, daemon=True).start()
    time.sleep(0.5)
    started = time.monotonic()
    code = srv.stop(timeout=SHUTDOWN_GRACE + 10)
    took = time.monotonic() - started
    assert ended.wait(5)
    # SIGKILL (-9) would mean the stream held the server past the grace period.
    assert code != -signal.SIGKILL and took < SHUTDOWN_GRACE + 5, f"exit {code} after {took:.1f} s"


def test_a_change_made_by_another_server_shows_within_two_seconds(live_server: Any, tmp_path: Any) -> None:
    # Two servers on one database, as two API workers or controllers are: the
    # second one's write does not bump the first one's counter, the stream's
    # periodic re-read finds it.
    db = f"sqlite:///{tmp_path / 'shared.sqlite'}"
    watched, writer = live_server(db_url=db), live_server(db_url=db)
    with httpx.Client(base_url=watched.url, timeout=10) as c:
        stream = _events(c)
        next(stream)
        r = httpx.post(f"{writer.url}/v2.0/networks", json={"network": {"name": "elsewhere"}}, timeout=10)
        assert r.status_code == 201, r.text
        created = r.json()["network"]["id"]
        started = time.monotonic()
        for view in stream:
            if any(n["id"] == created for n in view["networks"]):
                break
        elapsed = time.monotonic() - started
        assert elapsed < 2.0, f"the other server's network showed after {elapsed:.2f} s"
