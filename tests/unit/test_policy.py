"""The policy table and its evaluator (kaon/core/access/policy.py, policy_rules.py).

The evaluator compiles oslo.policy's parsed check trees itself (oslo's
Enforcer is ~300 µs a check); :func:`test_compiled_rules_agree_with_oslo_enforcer`
holds it to oslo.policy's own answers for every default rule."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from oslo_config import cfg
from oslo_policy import policy as oslo

from kaon import errors
from kaon.core.access import policy
from kaon.core.access.policy_rules import DEFAULTS
from kaon.core.context import Context
from kaon.model.address_scope import ADDRESS_SCOPE
from kaon.model.network import NETWORK
from kaon.model.port import PORT
from kaon.model.subnetpool import SUBNETPOOL

MEMBER = Context("u1", "pa", frozenset({"member", "reader"}))
READER = Context("u2", "pa", frozenset({"reader"}))
ADMIN = Context("u3", "adminp", frozenset({"admin", "member", "reader"}))
SERVICE = Context("nova", "service", frozenset({"service"}))


@pytest.fixture
def restore_policy() -> Iterator[None]:
    before = policy.current()
    yield
    policy.install(before)


def test_every_default_parses() -> None:
    parsed = oslo.Rules.from_dict(dict(DEFAULTS))
    broken = [name for name, check in parsed.items() if str(check) == "!" and dict(DEFAULTS)[name] != "!"]
    assert not broken
    assert len({name for name, _ in DEFAULTS}) == len(DEFAULTS), "a rule is defined twice"


def test_compiled_rules_agree_with_oslo_enforcer(tmp_path: Path) -> None:
    """Every default rule, for every caller against every target: kaon's
    compiled check gives oslo.policy's Enforcer's answer."""
    conf = cfg.ConfigOpts()
    conf([], project="kaon-test")
    empty = tmp_path / "policy.yaml"
    empty.write_text("{}\n")
    enforcer = oslo.Enforcer(conf, policy_file=str(empty))
    enforcer.register_defaults([oslo.RuleDefault(name, check) for name, check in DEFAULTS])
    enforcer.load_rules()
    ours = policy.Policy()
    callers = [MEMBER, READER, ADMIN, SERVICE, Context("u4", "pb", frozenset({"member", "reader"})),
               Context("u5", "pa", frozenset({"manager", "member", "reader"}))]
    targets: list[dict[str, Any]] = [
        {"project_id": "pa", "tenant_id": "pa", "network:tenant_id": "pa", "security_group:tenant_id": "pa"},
        {"project_id": "pa", "tenant_id": "pa", "network:tenant_id": "pb", "networks:shared": True,
         "device_owner": "network:dhcp"},
        {"project_id": "pb", "tenant_id": "pb", "network:tenant_id": "pb", "networks:shared": False,
         "device_owner": "compute:nova", "target_tenant": "*", "shared": True},
        {"project_id": "pa", "tenant_id": "pa", "target_tenant": "pb", "router:external": True},
        {},
    ]
    disagree, answers = [], []
    for (name, _), ctx, target in itertools.product(DEFAULTS, callers, targets):
        want = enforcer.enforce(name, target, policy.creds_of(ctx))
        answers.append(want)
        if ours.allowed(ctx, name, target) != want:
            disagree.append((name, sorted(ctx.roles), ctx.project_id, target, want))
    assert not disagree, disagree[:5]
    assert answers.count(True) > 500 and answers.count(False) > 500  # both answers well exercised


def test_neutron_defaults_for_a_few_rules() -> None:
    pol = policy.Policy()
    own = {"project_id": "pa", "tenant_id": "pa", "network:tenant_id": "pa"}
    assert pol.allowed(MEMBER, "create_network", own)
    assert not pol.allowed(READER, "create_network", own)
    assert not pol.allowed(MEMBER, "create_network", {**own, "project_id": "pb"})
    assert not pol.allowed(MEMBER, "update_port:mac_address", own)  # even the network owner
    assert pol.allowed(ADMIN, "update_port:mac_address", own) and pol.allowed(SERVICE, "update_port:mac_address", own)
    assert pol.allowed(MEMBER, "create_port:mac_address", own)  # network owner
    assert not pol.allowed(MEMBER, "create_port:mac_address", {**own, "network:tenant_id": "pb"})
    assert not pol.allowed(MEMBER, "create_port:binding:host_id", own)
    assert pol.allowed(SERVICE, "create_port:binding:host_id", own)
    assert pol.allowed(MEMBER, "create_port:device_owner", {**own, "network:tenant_id": "pb", "device_owner": ""})
    assert not pol.allowed(MEMBER, "create_port:device_owner",
                           {**own, "network:tenant_id": "pb", "device_owner": "network:router_interface"})
    assert not pol.allowed(MEMBER, "create_rbac_policy:target_tenant", {**own, "target_tenant": "*"})
    assert pol.allowed(MEMBER, "create_rbac_policy:target_tenant", {**own, "target_tenant": "pb"})


def test_create_checks_only_values_other_than_the_default() -> None:
    """Neutron's _is_attribute_explicitly_set: ``shared: false`` is the
    default, so a member may send it (openstacksdk, Terraform do)."""
    pol = policy.Policy()
    own = {"project_id": "pa", "tenant_id": "pa"}
    for resource in (NETWORK, SUBNETPOOL, ADDRESS_SCOPE):
        pol.check_attributes(MEMBER, resource, "create", {"name": "x", "shared": False}, own)
        with pytest.raises(errors.PolicyNotAuthorized) as exc:
            pol.check_attributes(MEMBER, resource, "create", {"name": "x", "shared": True}, own)
        assert exc.value.msg == f"(rule:create_{resource.name}:shared) is disallowed by policy"
        pol.check_attributes(ADMIN, resource, "create", {"shared": True}, own)


def test_update_checks_every_named_attribute() -> None:
    pol = policy.Policy()
    with pytest.raises(errors.PolicyNotAuthorized, match=r"rule:update_network:shared"):
        pol.check_attributes(MEMBER, NETWORK, "update", {"shared": False}, {"project_id": "pa"})


def test_sub_attribute_rules() -> None:
    pol = policy.Policy()
    target = {"project_id": "pa", "tenant_id": "pa", "network:tenant_id": "pb", "networks:shared": True}
    pol.check_attributes(MEMBER, PORT, "create", {"name": "p", "network_id": "n", "admin_state_up": True}, target)
    # rule:shared lets a subnet be named on a shared network, not an address.
    pol.check_attributes(MEMBER, PORT, "create", {"fixed_ips": [{"subnet_id": "s"}]}, target)
    with pytest.raises(errors.PolicyNotAuthorized, match=r"create_port:fixed_ips:ip_address"):
        pol.check_attributes(MEMBER, PORT, "create", {"fixed_ips": [{"subnet_id": "s", "ip_address": "10.0.0.5"}]},
                             target)
    # Not shared with the caller: not even a subnet.
    with pytest.raises(errors.PolicyNotAuthorized, match=r"\(rule:create_port:fixed_ips\)"):
        pol.check_attributes(MEMBER, PORT, "create", {"fixed_ips": [{"subnet_id": "s"}]},
                             {**target, "networks:shared": False})


def test_hidden_attributes() -> None:
    pol = policy.Policy()
    member_hidden = pol.hidden(MEMBER, PORT)
    assert {"binding:host_id", "binding:vif_type", "binding:vif_details", "binding:profile"} <= member_hidden
    assert "binding:vnic_type" not in member_hidden
    assert pol.hidden(ADMIN, PORT) == frozenset()
    assert pol.hidden(SERVICE, PORT) == frozenset()  # Nova reads the binding
    assert {"provider:network_type", "segments"} <= pol.hidden(MEMBER, NETWORK)
    assert "router:external" not in pol.hidden(MEMBER, NETWORK)


def test_overrides_replace_defaults_by_name() -> None:
    pol = policy.Policy({"create_network": "rule:admin_only",
                         "create_port:binding:host_id": "rule:admin_only or role:member"})
    own = {"project_id": "pa", "tenant_id": "pa"}
    assert not pol.allowed(MEMBER, "create_network", own)
    assert pol.allowed(ADMIN, "create_network", own)
    pol.check_attributes(MEMBER, PORT, "create", {"binding:host_id": "h1"}, own)
    assert pol.allowed(MEMBER, "create_subnetpool", own)  # the rest stays


def test_context_is_admin_follows_the_table(restore_policy: None) -> None:
    cloud_admin = Context("u", "p", frozenset({"cloud_admin"}))
    assert not cloud_admin.is_admin and ADMIN.is_admin
    policy.install(policy.Policy({"context_is_admin": "role:cloud_admin"}))
    assert cloud_admin.is_admin and not ADMIN.is_admin


def test_policy_file_and_its_errors(tmp_path: Path) -> None:
    good = tmp_path / "policy.yaml"
    good.write_text('# an operator\'s file\n"create_network": "rule:admin_only"\n')
    assert not policy.Policy.from_file(str(good)).allowed(MEMBER, "create_network", {"project_id": "pa"})
    bad = tmp_path / "bad.yaml"
    bad.write_text("create_network: [unclosed\n")
    with pytest.raises(errors.KaonError, match="bad.yaml"):
        policy.Policy.from_file(str(bad))
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("- a list\n")
    with pytest.raises(errors.KaonError, match="mapping of rule name"):
        policy.Policy.from_file(str(wrong))


def test_policy_path(tmp_path: Path) -> None:
    conf_dir = tmp_path / "etc"
    conf_dir.mkdir()
    conf_file = str(conf_dir / "neutron.conf")

    def config(option: str | None) -> Any:
        sections = {"oslo_policy": {"policy_file": option}} if option else {}
        return SimpleNamespace(files=(conf_file,),
                               get=lambda s, o: sections.get(s, {}).get(o))

    assert policy.policy_path(config(None)) is None  # no file: the defaults
    (conf_dir / "policy.yaml").write_text("{}\n")
    assert policy.policy_path(config(None)) == str(conf_dir / "policy.yaml")  # next to the config
    elsewhere = tmp_path / "custom.yaml"
    elsewhere.write_text("{}\n")
    assert policy.policy_path(config(str(elsewhere))) == str(elsewhere)
    (conf_dir / "named.yaml").write_text("{}\n")
    assert policy.policy_path(config("named.yaml")) == str(conf_dir / "named.yaml")
    assert policy.policy_path(config(str(tmp_path / "missing.yaml"))) is None


def test_a_changed_policy_file_is_reread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         restore_policy: None, caplog: pytest.LogCaptureFixture) -> None:
    """As Neutron rereads a changed policy file: no restart. A file that no
    longer parses leaves the rules in force."""
    monkeypatch.setattr(policy, "RELOAD_INTERVAL", 0.0)
    path = tmp_path / "policy.yaml"
    path.write_text('"create_network": "rule:admin_only"\n')
    conf = SimpleNamespace(files=(str(tmp_path / "neutron.conf"),), get=lambda s, o: None)
    policy.load(conf)
    own = {"project_id": "pa", "tenant_id": "pa"}
    assert not policy.current().allowed(MEMBER, "create_network", own)
    path.write_text('"create_network": "role:member"\n"create_subnetpool": "rule:admin_only"\n')
    assert policy.current().allowed(MEMBER, "create_network", own)
    assert not policy.current().allowed(MEMBER, "create_subnetpool", own)
    path.write_text("create_network: [unclosed and longer than before\n")
    assert policy.current().allowed(MEMBER, "create_network", own)  # still the last good table
    assert "not reloaded" in caplog.text
    path.unlink()
    assert policy.current().allowed(MEMBER, "create_subnetpool", own)  # gone: Neutron's defaults
