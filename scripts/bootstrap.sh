#!/usr/bin/env bash
# Set up everything kaon's tests and `make up` need; safe to run again and again.
#
#   1. Debian packages (as root, only when one is missing): apt-get update once,
#      then apt-get install -y --no-install-recommends, with daemons kept from
#      starting (policy-rc.d).  Not root: prints the command to run.
#   2. .venv with `pip install -e '.[test]'` (again only when pyproject.toml or
#      the interpreter changed: stamp in .venv/.kaon-bootstrap).
#   3. .venv-osc: python-openstackclient in a venv of its own (stamp likewise),
#      with what openstacksdk's functional tests (shipped inside openstacksdk)
#      need to run: pytest, fixtures, oslotest, testtools (tests/sdk).
#
# Environment:
#   PYTHON=python3              interpreter for the venvs (>= 3.11)
#   KAON_SKIP_APT=1             don't check or install Debian packages
#   KAON_SKIP_OSC=1             don't make .venv-osc
#   KAON_APT_EXTRA="pkg ..."    more Debian packages to install
#   KAON_OSC_SPEC=...           pip requirement for the CLI (default below)
#   KAON_BOOTSTRAP_FORCE=1      reinstall the venvs even if stamps match
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

VENV="$ROOT/.venv"
OSC_VENV="$ROOT/.venv-osc"
PYTHON="${PYTHON:-python3}"
OSC_SPEC="${KAON_OSC_SPEC:-python-openstackclient==10.5.0}"
# openstacksdk's functional tests import fixtures, oslotest and testtools;
# tests/sdk runs them under pytest with the same openstacksdk as the CLI.
OSC_TEST_DEPS=(pytest==9.2.0 fixtures==4.3.2 oslotest==6.1.1 testtools==2.9.1)

# Debian packages the suite uses:
#   postgresql              PostgreSQL tier (tests run initdb/pg_ctl themselves)
#   iproute2 kmod           ip netns/link/addr/route, modprobe (functional, fullstack)
#   util-linux procps psmisc runuser/nsenter/unshare, ps/pgrep/sysctl, fuser
#   iptables conntrack      SNAT/DNAT, security groups, conntrack -D of flows a removed rule forbids
#   dnsmasq-base            DHCP agent (dnsmasq without its system service)
#   openvswitch-switch      OVS driver (ovsdb-server/ovs-vswitchd, started by tests)
#   iputils-ping iputils-arping  pings in namespaces, gratuitous ARP
#   python3-venv            venv/ensurepip for Debian's own python3
#   rabbitmq-server         RabbitMQ bus tests (tests start a private broker and epmd)
#   busybox                 udhcpc and nc inside lab VMs
#   libnftables1            NAT and security groups (kaon.dataplane.nft loads it with ctypes)
#   socat                   TCP echo servers in the fullstack tests
#   tcpdump                 802.1Q tags on the provider link (OVS functional tests)
#   chromium                the topology page's browser tests (Playwright drives it; no browser download)
#   radvd                   IPv6 router advertisements from qrouter- namespaces (L3 agent)
#   isc-dhcp-client         dhclient -6: DHCPv6 inside lab VMs (busybox has no udhcpc6)
#   iperf3                  benchmarks/dataplane_bench.py (throughput, kaon next to bare kernel)
#   mariadb-server          MariaDB tests (tests start a private mariadbd by pid; nothing system-wide)
#   ethtool                 lab OVS hosts: checksum offload off on veths into the userspace datapath
#   linux-perf              benchmarks/nft_cost_bench.py (netfilter's perf samples per GB)
APT_PACKAGES=(
  postgresql iproute2 kmod util-linux procps psmisc iptables conntrack
  dnsmasq-base openvswitch-switch iputils-ping iputils-arping python3-venv
  rabbitmq-server busybox libnftables1 socat tcpdump chromium radvd isc-dhcp-client iperf3 mariadb-server
  ethtool linux-perf
)
# shellcheck disable=SC2206
APT_PACKAGES+=(${KAON_APT_EXTRA:-})

say() { printf 'bootstrap: %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }

# One bootstrap at a time per checkout (parallel `make` runs).
if command -v flock >/dev/null 2>&1; then
  LOCK="${TMPDIR:-/tmp}/kaon-bootstrap-$(printf '%s' "$ROOT" | cksum | cut -d' ' -f1).lock"
  exec 9>"$LOCK"
  flock 9
fi

# ---------------------------------------------------------------- 1. Debian
missing_debs() {
  local st pkg
  # ${db:Status-Abbrev} is "ii " for an installed package; unknown ones are absent.
  st="$(dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' "${APT_PACKAGES[@]}" 2>/dev/null || true)"
  for pkg in "${APT_PACKAGES[@]}"; do
    if ! grep -qE "^ii +${pkg}(:[a-z0-9]+)?\$" <<<"$st"; then
      printf '%s\n' "$pkg"
    fi
  done
}

install_debs() {
  local -a missing
  mapfile -t missing < <(missing_debs)
  ((${#missing[@]})) || return 0
  if [[ $(id -u) -ne 0 ]]; then
    say "WARNING: missing Debian packages: ${missing[*]}"
    say "  as root: apt-get update && apt-get install -y --no-install-recommends ${missing[*]}"
    return 0
  fi
  say "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Keep package scripts from starting daemons (postgresql, openvswitch): the
  # tests start their own.  Only when no policy is set already.
  local policy=/usr/sbin/policy-rc.d made_policy=0
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    made_policy=1
  fi
  local rc=0
  {
    apt-get update -q &&
      apt-get install -y -q --no-install-recommends \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${missing[@]}"
  } >"${TMPDIR:-/tmp}/kaon-bootstrap-apt.log" 2>&1 || rc=$?
  ((made_policy)) && rm -f "$policy"
  if ((rc)); then
    tail -n 40 "${TMPDIR:-/tmp}/kaon-bootstrap-apt.log" >&2
    die "apt-get failed (rc=$rc); full log: ${TMPDIR:-/tmp}/kaon-bootstrap-apt.log"
  fi
  mapfile -t missing < <(missing_debs)
  ((${#missing[@]} == 0)) || die "still missing after apt-get install: ${missing[*]}"
}

if [[ ${KAON_SKIP_APT:-0} != 1 ]] && command -v dpkg-query >/dev/null 2>&1; then
  install_debs
fi

# ---------------------------------------------------------------- 2. .venv
command -v "$PYTHON" >/dev/null 2>&1 || die "$PYTHON not found (set PYTHON=...)"

# Fingerprint: pyproject.toml + the interpreter the venv is made from.
hash_of() { sha256sum "$@" | cut -c1-16; }
py_id() { "$1" -c 'import sys; print(sys.version.split()[0], sys.base_prefix)' 2>/dev/null; }

# $1 venv dir, prints "ok" when its python runs
venv_ok() { [[ -x $1/bin/python ]] && "$1/bin/python" -c 'import sys' >/dev/null 2>&1; }

make_venv() { # $1 dir
  local dir=$1
  "$PYTHON" -c 'import sys; assert sys.version_info >= (3, 11), sys.version' ||
    die "$PYTHON is older than 3.11"
  if ! "$PYTHON" -c 'import venv, ensurepip' >/dev/null 2>&1; then
    die "$PYTHON lacks venv/ensurepip (Debian: apt-get install python3-venv)"
  fi
  say "creating $dir"
  rm -rf "$dir"
  "$PYTHON" -m venv "$dir"
}

pip_quiet() { # $1 venv, rest: pip install args; output to a log, shown on failure
  local venv=$1 log
  shift
  log="$venv/.kaon-pip.log"
  if ! "$venv/bin/python" -m pip install --disable-pip-version-check --no-input "$@" >"$log" 2>&1; then
    grep -v "^WARNING: Location 'file://" "$log" | tail -n 40 >&2
    die "pip install $* failed (full log: $log)"
  fi
}

venv_ok "$VENV" || make_venv "$VENV"
want="$(hash_of pyproject.toml) $(py_id "$VENV/bin/python")"
stamp="$VENV/.kaon-bootstrap"
if [[ ${KAON_BOOTSTRAP_FORCE:-0} == 1 || ! -x $VENV/bin/kaon || "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
  say "pip install -e '.[test]' into .venv"
  pip_quiet "$VENV" -e '.[test]'
  printf '%s\n' "$want" >"$stamp"
fi

# ---------------------------------------------------------------- 3. .venv-osc
if [[ ${KAON_SKIP_OSC:-0} != 1 ]]; then
  venv_ok "$OSC_VENV" || make_venv "$OSC_VENV"
  want="$OSC_SPEC ${OSC_TEST_DEPS[*]} $(py_id "$OSC_VENV/bin/python")"
  stamp="$OSC_VENV/.kaon-bootstrap"
  if [[ ${KAON_BOOTSTRAP_FORCE:-0} == 1 || ! -x $OSC_VENV/bin/openstack || "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
    say "pip install $OSC_SPEC ${OSC_TEST_DEPS[*]} into .venv-osc (takes a minute)"
    pip_quiet "$OSC_VENV" "$OSC_SPEC" "${OSC_TEST_DEPS[@]}"
    printf '%s\n' "$want" >"$stamp"
  fi
  say "openstack CLI: $OSC_VENV/bin/openstack"
fi
say "ready: $VENV/bin/kaon"
