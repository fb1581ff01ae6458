"""The metadata proxy's pure parts: options, signature, request parsing and
the forwarded request, the table file, the proxy's command line; the
router's redirect rule."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import replace

import pytest

from kaon.agent import l3_plan
from kaon.agent import metadata_proxy_process as proxies
from kaon.agent.metadata_proxy import (
    ProxyConfig,
    Table,
    identity_headers,
    parse_head,
    proxy_config,
    sign,
    upstream_request,
)
from kaon.config import load_config
from kaon.model.intent import MetadataSource, RouterIntent, RouterInterface


def test_options_are_neutrons_default_then_agent(tmp_path) -> None:  # type: ignore[no-untyped-def]
    conf = tmp_path / "a.ini"
    conf.write_text("[DEFAULT]\nmetadata_proxy_shared_secret = s\n[agent]\nnova_metadata_port = 18775\n")
    assert proxy_config(load_config([str(conf)])) == ProxyConfig("127.0.0.1", 18775, "s")
    conf.write_text("[DEFAULT]\nnova_metadata_host = 10.1.2.3\nnova_metadata_port = 8999\n")
    assert proxy_config(load_config([str(conf)])) == ProxyConfig("10.1.2.3", 8999, "")


def test_signature_is_hmac_sha256_hex_of_the_instance_id() -> None:
    assert sign("secret", "i-1") == hmac.new(b"secret", b"i-1", hashlib.sha256).hexdigest()


def test_the_forwarded_request_carries_identity_and_drops_spoofing() -> None:
    req = parse_head(b"GET /latest/meta-data/ HTTP/1.1\r\nHost: 169.254.169.254\r\nX-Instance-ID: evil\r\n"
                     b"x-tenant-id: evil\r\nConnection: keep-alive\r\n\r\n")
    extra = identity_headers("k", "10.0.0.5", MetadataSource("i-1", "p-1"))
    out = upstream_request(req, b"", extra).decode()
    assert out.startswith("GET /latest/meta-data/ HTTP/1.0\r\nHost: 169.254.169.254\r\n")
    assert "evil" not in out and "keep-alive" not in out
    assert f"X-Instance-ID: i-1\r\nX-Tenant-ID: p-1\r\nX-Instance-ID-Signature: {sign('k', 'i-1')}\r\n" in out
    assert "X-Forwarded-For: 10.0.0.5\r\n" in out and out.endswith("Connection: close\r\n\r\n")


@pytest.mark.parametrize("head", [b"GET\r\n\r\n", b"GET http://x/ HTTP/1.1\r\n\r\n", b"GET / SPDY\r\n\r\n",
                                  b"GET / HTTP/1.1\r\nno-colon\r\n\r\n"])
def test_malformed_requests_are_refused(head: bytes) -> None:
    with pytest.raises(ValueError):
        parse_head(head)


def test_a_router_with_interfaces_redirects_metadata_to_the_proxy() -> None:
    router = RouterIntent(True, (RouterInterface("p", "qr-x", "tapx", "fa:16:3e:00:00:01", ("10.0.0.1/24",), 1500),),
                          None, True, (), ())
    body = l3_plan.nat_body(router)
    pre = body.split("chain output")[0]
    assert 'iifname "qr-*" ip daddr 169.254.169.254 tcp dport 80 redirect to :9697' in pre
    assert "redirect" not in body.split("chain output")[1]
    assert "redirect" not in l3_plan.nat_body(replace(router, interfaces=()))


def test_the_table_file_round_trips_and_refuses_what_is_not_a_table() -> None:
    table = Table("k", {"10.0.0.5": MetadataSource("i-1", "p-1")}, frozenset({"10.0.0.1"}))
    assert Table.from_json(table.to_json()) == table
    assert Table.from_json(Table("k", {}).to_json()) == Table("k", {}, None)  # DHCP: no local addresses
    for text in ("[]", "{}", '{"secret": "k", "local": null, "sources": {"10.0.0.5": {}}}', "not json"):
        with pytest.raises(ValueError):
            Table.from_json(text)


def test_the_command_line_holds_what_needs_a_new_process(tmp_path) -> None:  # type: ignore[no-untyped-def]
    args = proxies.command(tmp_path, "qrouter-r", 42, ("0.0.0.0", 9697), ProxyConfig("127.0.0.1", 8775, "secret"))
    assert args[:3] == ["-m", proxies.MODULE, f"--pid-file={tmp_path / 'pid'}"]
    assert {"--namespace=qrouter-r", "--namespace-inode=42", "--bind=0.0.0.0:9697",
            "--upstream=127.0.0.1:8775"} <= set(args)
    assert not any("secret" in a for a in args)  # the secret is in the 0600 table file, not in ps
    assert args != proxies.command(tmp_path, "qrouter-r", 43, ("0.0.0.0", 9697), ProxyConfig())  # namespace anew
