#!/usr/bin/env bash
# Run the tempest network API suites against a throwaway kaon node.
#
#   scripts/tempest.sh [--mechanism linuxbridge|openvswitch] [REGEX] [extra run.sh args...]
#
# Starts `kaon up` in a temporary state directory on a free port (SQLite,
# embedded identity), hands its bootstrap accounts to ../shared/tools/tempest
# (setup.sh, then run.sh), prints run.sh's "N passed, N failed, N skipped"
# line, and stops the node by pid. Results: $OUT (default /tmp/kaon-tempest.json).
# --mechanism openvswitch (or MECHANISM=openvswitch): the node's local agent is
# the Open vSwitch agent, on a private OVS kaon up starts in the agent's
# namespace; `kaon down` stops it at the end.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="${TEMPEST_TOOLS:-$ROOT/../shared/tools/tempest}"
MECHANISM="${MECHANISM:-linuxbridge}"
if [ "${1:-}" = "--mechanism" ]; then MECHANISM="$2"; shift 2; fi
case "$MECHANISM" in linuxbridge|openvswitch) ;; *) echo "--mechanism: linuxbridge or openvswitch" >&2; exit 2;; esac
REGEX="${1:-^(tempest\.api\.network|neutron_tempest_plugin\.api)\.}"
shift || true
OUT="${OUT:-/tmp/kaon-tempest.json}"
WORKERS="${WORKERS:-1}"

bash "$TOOLS/setup.sh" >/dev/null
STATE="$(mktemp -d /tmp/kaon-tempest-state.XXXXXX)"
PORT="$("$ROOT/.venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
# As root, the node's local agent (L2 + DHCP + L3 roles) runs inside a
# namespace of its own, so tempest's routers and DHCP ports get a real data
# plane without touching this machine's network. "provider" (the physical
# network of `public`) is a veth in that namespace.
NS=""
# The node and tempest configured as neutron-tempest-plugin's gate job does
# (neutron-tempest-plugin-base in its zuul.d/base.yaml): its quotas (the
# plugin's RoutersTest keeps every router until the class ends and makes more
# than Neutron's default 10), the ML2 ranges, and the matching
# [neutron_plugin_options] (a VLAN physical network "foo", every type driver,
# agents in zone "nova").
cat >"$STATE/gate.conf" <<EOF
[quotas]
quota_router = 100
quota_floatingip = 500
quota_security_group = 150
quota_security_group_rule = 1000
[ml2_type_vlan]
network_vlan_ranges = foo:1:10
[ml2_type_vxlan]
vni_ranges = 1:2000
[ml2_type_gre]
tunnel_id_ranges = 1:1000
EOF
cat >"$STATE/tempest-extra.conf" <<EOF
[neutron_plugin_options]
provider_vlans = foo,
agent_availability_zone = nova
available_type_drivers = flat,geneve,vlan,gre,local,vxlan
provider_net_base_segm_id = 1
EOF
export TEMPEST_EXTRA_CONF="${TEMPEST_EXTRA_CONF:-$STATE/tempest-extra.conf}"
EXTRA=(--config-file "$STATE/gate.conf")
if [ "$(id -u)" = 0 ]; then
  NS="kaon-tempest-$$"
  ip netns add "$NS"
  ip -n "$NS" link set lo up
  ip -n "$NS" link add provider0 type veth peer name provider0p
  ip -n "$NS" link set provider0 up
  ip -n "$NS" link set provider0p up
  cat >"$STATE/agent.conf" <<EOF
[DEFAULT]
host = tempest-node
[agent]
namespace = $NS
namespace_prefix = $NS-
roles = dhcp, l3
EOF
  if [ "$MECHANISM" = linuxbridge ]; then
    printf '[linux_bridge]\nphysical_interface_mappings = provider:provider0\n' >>"$STATE/agent.conf"
  fi
  # On OVS, "provider" is br-ex (kaon up's openvswitch_agent.ini), made in the private OVS;
  # provider0 joins it once the node is up.
  EXTRA+=(--config-file "$STATE/agent.conf")
fi
"$ROOT/.venv/bin/python" -m kaon up --state-dir "$STATE" --port "$PORT" --mechanism "$MECHANISM" "${EXTRA[@]}" \
    >"$STATE/server.log" 2>&1 &
PID=$!
cleanup() {
  kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true
  if [ "$MECHANISM" = openvswitch ]; then
    # The private OVS (by the pids kaon up recorded), the qdhcp-/qrouter- namespaces, dnsmasq.
    "$ROOT/.venv/bin/python" -m kaon down --state-dir "$STATE" >&2 || true
  fi
  if [ -n "$NS" ]; then
    # The agent's qrouter-/qdhcp- namespaces carry "$NS-"; their processes (dnsmasq) go by pid.
    for n in $(ip netns list | awk '{print $1}' | grep -E "^$NS(-|\$)"); do
      for p in $(ip netns pids "$n" 2>/dev/null); do kill "$p" 2>/dev/null || true; done
      ip netns delete "$n" 2>/dev/null || true
    done
  fi
  if [ -n "${KEEP_STATE:-}" ]; then echo "state kept in $STATE" >&2; else rm -rf "$STATE"; fi
}
trap cleanup EXIT
for _ in $(seq 100); do
  [ -f "$STATE/clouds.yaml" ] && curl -sf "http://127.0.0.1:$PORT/" >/dev/null && break
  sleep 0.2
done
grep -E "Local agent|Open vSwitch" "$STATE/server.log" >&2 || true
if [ -n "$NS" ] && [ "$MECHANISM" = openvswitch ]; then
  DB="$("$ROOT/.venv/bin/python" -c "import json; print(json.load(open('$STATE/ovs.json'))['db'])")"
  ovs-vsctl --db="$DB" --may-exist add-port br-ex provider0
fi
pw() { "$ROOT/.venv/bin/python" -c "import json,sys; print(json.load(open('$STATE/passwords.json'))[sys.argv[1]])" "$1"; }
# The external network tempest's router and floating IP tests use.
osc() { OS_CLIENT_CONFIG_FILE="$STATE/clouds.yaml" "$ROOT/.venv-osc/bin/openstack" --os-cloud kaon-admin "$@" >/dev/null; }
osc network create public --external --provider-network-type flat --provider-physical-network provider
osc subnet create public-subnet --network public --subnet-range 172.24.4.0/24 --no-dhcp
export TEMPEST_MEMBER_USERNAME=demo TEMPEST_MEMBER_PASSWORD="$(pw demo)" TEMPEST_MEMBER_PROJECT=demo
export TEMPEST_READER_USERNAME=demo_reader TEMPEST_READER_PASSWORD="$(pw demo_reader)"
export TEMPEST_ALT_USERNAME=alt_demo TEMPEST_ALT_PASSWORD="$(pw alt_demo)" TEMPEST_ALT_PROJECT=alt_demo
export TEMPEST_ADMIN_USERNAME=admin TEMPEST_ADMIN_PASSWORD="$(pw admin)" TEMPEST_ADMIN_PROJECT=admin
"$TOOLS/run.sh" --auth-url "http://127.0.0.1:$PORT/identity/v3" --regex "$REGEX" \
    --workers "$WORKERS" --output "$OUT" "$@"
