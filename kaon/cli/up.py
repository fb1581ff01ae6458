"""``kaon up``: an all-in-one node on embedded defaults.

SQLite in the state directory, the embedded identity service with an admin
and a demo project, and ML2 set up the way the install guide's all-in-one
node is (a ``provider`` physical network for flat and VLAN, VXLAN for
self-service networks). Any ``--config-file`` given is read after the
defaults, so an existing ``neutron.conf``/``ml2_conf.ini`` wins.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from kaon.cli.server import run_server
from kaon.config import default_state_path, load_config

DEFAULTS = """\
# Written by `kaon up` on first start; edit freely, it is not rewritten.
[DEFAULT]
bind_host = 127.0.0.1
bind_port = 9696
auth_strategy = kaon

[ml2]
type_drivers = local,flat,vlan,vxlan,gre,geneve
tenant_network_types = vxlan
mechanism_drivers = linuxbridge,l2population

[ml2_type_flat]
flat_networks = provider

[ml2_type_vlan]
network_vlan_ranges = provider:100:200

[ml2_type_vxlan]
vni_ranges = 1:1000

[ml2_type_gre]
tunnel_id_ranges = 1:1000

[ml2_type_geneve]
vni_ranges = 1:1000
"""


def run_up(extra_files: list[str], state_dir: str | None, port: int | None) -> int:
    state = Path(state_dir or os.environ.get("KAON_STATE_DIR") or default_state_path()).expanduser()
    state.mkdir(parents=True, exist_ok=True)
    conf = state / "kaon.conf"
    if not conf.exists():
        conf.write_text(DEFAULTS)
    overrides: dict[str, Any] = {"DEFAULT": {"state_path": str(state)}}
    if port is not None:
        overrides["DEFAULT"]["bind_port"] = port
    cfg = load_config([str(conf), *extra_files], overrides)
    return run_server(cfg, announce=_announce)


def _announce(facts: dict[str, Any]) -> None:
    files = facts.get("client_files", {})
    lines = [
        "",
        "kaon is up (all-in-one: server + identity; API only, no host agents yet).",
        f"  Networking API : {facts['network_url']}/v2.0",
    ]
    if "identity_url" in facts:
        lines.append(f"  Identity (v3)  : {facts['identity_url']}")
    if "clouds.yaml" in files:
        lines += [
            "",
            "Use it with the openstack CLI:",
            f"  export OS_CLIENT_CONFIG_FILE={files['clouds.yaml']}",
            "  openstack --os-cloud kaon-admin network list     # admin",
            "  openstack --os-cloud kaon-demo network list      # demo project",
            f"  (or: . {files.get('admin-openrc', 'admin-openrc')})",
        ]
    lines.append("")
    print("\n".join(lines), flush=True)
