"""kaon's metadata service (kaon.metadata): the signature decides (400 / 403),
the instance's port must hold the asking address in the asking project
(404 otherwise), and the EC2 keys and OpenStack JSON come from kaon's state;
served over HTTP by ``make_server`` and by ``kaon server`` with
``[metadata] serve = true``."""

from __future__ import annotations

import json
import threading
from typing import Any

import httpx

from kaon.agent.metadata_proxy import sign
from kaon.config import load_config
from kaon.metadata.server import make_server, service_secret
from kaon.metadata.service import respond
from tests.api import core_support
from tests.api.core_support import Api
from tests.api.test_l3_intents import ext_net
from tests.fixtures import free_port

make_api = core_support.make_api
SECRET = "s3cret"


def instance(api: Api) -> dict[str, Any]:
    """A VM port of project p-1 behind a router, with a floating IP."""
    admin = api.admin()
    ext, _ = ext_net(admin)
    net, sub = admin.net_with_subnet("10.0.0.0/24")
    router = admin.create("routers", name="r", external_gateway_info={"network_id": ext["id"]})
    api.client.put(f"/v2.0/routers/{router['id']}/add_router_interface", json={"subnet_id": sub["id"]},
                   headers={"X-Project-Id": "admin-project", "X-Roles": "admin"})
    port = admin.port(net["id"], device_id="inst-1", device_owner="compute:nova", project_id="p-1")
    fip = admin.create("floatingips", floating_network_id=ext["id"], port_id=port["id"], project_id="p-1")
    return {"ip": port["fixed_ips"][0]["ip_address"], "fip": fip["floating_ip_address"]}


def headers(ip: str, instance_id: str = "inst-1", project: str = "p-1", secret: str = SECRET) -> dict[str, str]:
    return {"X-Instance-ID": instance_id, "X-Tenant-ID": project, "X-Forwarded-For": ip,
            "X-Instance-ID-Signature": sign(secret, instance_id)}


def get(api: Api, path: str, hdrs: dict[str, str]) -> tuple[int, str]:
    reply = respond(api.engine, SECRET, "GET", path, hdrs)
    return reply.status, reply.body


def test_keys_come_from_kaons_state(make_api: Any) -> None:
    api = make_api(ml2_type_flat={"flat_networks": "provider"})
    vm = instance(api)
    h = headers(vm["ip"])
    assert get(api, "/latest/meta-data/instance-id", h) == (200, "inst-1")
    assert get(api, "/latest/meta-data/local-ipv4", h) == (200, vm["ip"])
    assert get(api, "/latest/meta-data/public-ipv4", h) == (200, vm["fip"])
    assert get(api, "/2009-04-04/meta-data/hostname", h) == (200, "host-" + vm["ip"].replace(".", "-"))
    assert get(api, "/latest/meta-data/", h) == (
        200, "hostname\ninstance-id\nlocal-hostname\nlocal-ipv4\npublic-ipv4\n")
    assert get(api, "/", h) == (200, "latest\n") and get(api, "/latest", h) == (200, "meta-data/\n")
    status, body = get(api, "/openstack/latest/meta_data.json", h)
    assert status == 200 and json.loads(body)["uuid"] == "inst-1" and json.loads(body)["project_id"] == "p-1"
    assert get(api, "/latest/meta-data/nope", h)[0] == 404


def test_signature_and_identity_are_checked(make_api: Any) -> None:
    api = make_api(ml2_type_flat={"flat_networks": "provider"})
    vm = instance(api)
    assert get(api, "/latest/meta-data/instance-id", headers(vm["ip"], secret="wrong"))[0] == 403
    assert get(api, "/latest/meta-data/instance-id", {"X-Forwarded-For": vm["ip"]})[0] == 400
    assert get(api, "/latest/meta-data/instance-id", headers("10.0.0.99"))[0] == 404  # not its address
    assert get(api, "/latest/meta-data/instance-id", headers(vm["ip"], project="p-2"))[0] == 404
    assert get(api, "/latest/meta-data/instance-id", headers(vm["ip"], instance_id="inst-2"))[0] == 404
    reply = respond(api.engine, SECRET, "PUT", "/latest/meta-data/", headers(vm["ip"]))
    assert reply.status == 405


def test_served_over_http_with_novas_secret_winning(make_api: Any) -> None:
    api = make_api(ml2_type_flat={"flat_networks": "provider"})
    vm = instance(api)
    cfg = load_config([], {"DEFAULT": {"nova_metadata_port": "0", "metadata_proxy_shared_secret": "other"},
                           "neutron": {"metadata_proxy_shared_secret": SECRET}})
    assert service_secret(cfg) == SECRET
    server = make_server(cfg, api.engine)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/latest/meta-data/instance-id"
        assert httpx.get(url, headers=headers(vm["ip"])).text == "inst-1"
        assert httpx.get(url, headers=headers(vm["ip"], secret="other")).status_code == 403
    finally:
        server.shutdown()
        server.server_close()


def test_kaon_server_serves_metadata_when_asked(live_server: Any) -> None:
    port = free_port()
    srv = live_server(extra_conf={"DEFAULT": {"nova_metadata_port": str(port),
                                              "metadata_proxy_shared_secret": SECRET},
                                  "metadata": {"serve": "true"}})
    r = httpx.get(f"http://127.0.0.1:{port}/latest/meta-data/", headers=headers("10.0.0.5"))
    assert r.status_code == 404  # signed, but no such instance: the service answered from the database
    r = httpx.get(f"http://127.0.0.1:{port}/latest/meta-data/", headers=headers("10.0.0.5", secret="x"))
    assert r.status_code == 403
    assert srv.proc.poll() is None
