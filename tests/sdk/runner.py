"""openstacksdk's own functional network tests against a kaon node with its agent.

openstacksdk ships its functional tests inside the package
(``openstack/tests/functional/network/v2``); they read the clouds
``devstack`` (member), ``devstack-alt`` (another project's member),
``devstack-admin`` and ``devstack-system-admin`` from clouds.yaml.  This
module starts ``kaon up`` (SQLite, embedded identity) with its local agent
in a namespace of its own (as scripts/tempest.sh does: the DHCP and L3 roles
build their namespaces under that prefix, "provider" is a veth inside it),
makes the external network ``public`` the floating IP tests look for,
writes those clouds, and runs the tests with the .venv-osc interpreter
(the same openstacksdk the CLI uses) under pytest with a JUnit report.

    python -m tests.sdk.runner [PYTEST-ARGS...]   # prints figures and problems, keeps nothing

The verdict (:func:`problems`): every test passes, or is skipped with one of
the reasons in ``MISSING_EXTENSION_SKIPS`` whose extension kaon indeed does
not list.  The agent tests list agents as the ``devstack`` member, who sees
none (Neutron shows agents to admins only), so they skip with "No agents
available"; a second run gives them the admin as their user cloud, and there
they must pass.

Needs root (namespaces); everything is removed by exact name or pid.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import yaml  # type: ignore[import-untyped]

from kaon.lab.api_client import load_cloud, password_token
from tests.fixtures.net import free_port
from tests.fixtures.netns import remove as remove_netns

REPO_ROOT = Path(__file__).resolve().parents[2]
OSC_PYTHON = REPO_ROOT / ".venv-osc" / "bin" / "python"
SDK_PACKAGE = "openstack.tests.functional.network.v2"

# The sdk's skip message -> the extension whose absence it reports.
MISSING_EXTENSION_SKIPS = {
    "Network Address Group extension disabled": "address-group",
    "Neutron auto-allocated-topology extension is required for this test": "auto-allocated-topology",
    "Neutron BGP Dynamic Routing Extension disabled": "bgp",
    "Neutron BGPVPN Extension disabled": "bgpvpn",
    "dvr service not supported by cloud": "dvr",
    "fwaas_v2 service not supported by cloud": "fwaas_v2",
    "Neutron flavor extension is required for this test": "flavors",
    "Network tag-creation extension disabled": "tag-creation",
    "L3 conntrack helper extension disabled": "l3-conntrack-helper",
    "Local IP extension disabled": "local_ip",
    "L3 ndp proxy extension disabled": "l3-ndp-proxy",
    "Network Segment Range extension disabled": "network-segment-range",
    "Floating IP Port Forwarding extension disabled": "floating-ip-port-forwarding",
    "Network qos extension disabled": "qos",
    "Network qos-bw-limit-direction extension disabled": "qos-bw-limit-direction",
    "Network qos-pps extension disabled": "qos-pps",
    "Network qos-pps-minimum extension disabled": "qos-pps-minimum",
    "Network qos-rule-type-details extension disabled": "qos-rule-type-details",
    "Segment extension disabled": "segment",
    "Neutron SFC Extension disabled": "sfc",
    "Neutron Tap-as-a-service Extension disabled": "taas",
    "Neutron Tap Mirror Extension disabled": "tap-mirror",
    "Network trunk extension disabled": "trunk",
    "vpnaas service not supported by cloud": "vpnaas",
}
# The agent tests as a member: rerun with the admin as user cloud (AGENT_TESTS).
NO_AGENTS_FOR_MEMBER = "No agents available"
AGENT_TESTS = "TestAgent"  # -k: TestAgent, TestAgentNetworks, TestAgentRouters
AS_ADMIN = {"OPENSTACKSDK_DEMO_CLOUD": "devstack-admin"}

# sdk cloud name -> kaon's bootstrap (user, project)
SDK_CLOUDS = {
    "devstack": ("demo", "demo"),
    "devstack-alt": ("alt_demo", "alt_demo"),
    "devstack-admin": ("admin", "admin"),
    # No network test uses the system-scoped cloud; base.py only builds a
    # Connection for it (no request is made), so a project-scoped admin does.
    "devstack-system-admin": ("admin", "admin"),
}


@dataclass
class Case:
    """One sdk test: ``outcome`` is passed, failed, error or skipped; ``detail`` the
    skip reason or the traceback."""

    name: str
    outcome: str
    detail: str = ""


@dataclass
class Results:
    cases: list[Case] = field(default_factory=list)

    def count(self, outcome: str) -> int:
        return sum(1 for c in self.cases if c.outcome == outcome)

    def summary(self) -> str:
        failed = self.count("failed") + self.count("error")
        return f"{self.count('passed')} passed, {failed} failed, {self.count('skipped')} skipped"


def parse_junit(path: Path) -> Results:
    """Cases of a pytest JUnit XML report."""
    results = Results()
    for tc in ET.parse(path).getroot().iter("testcase"):
        name = f"{tc.get('classname')}.{tc.get('name')}"
        outcome, detail = "passed", ""
        for child in tc:
            if child.tag in ("failure", "error"):
                # A failing test with a failing cleanup has both; keep the first.
                if outcome == "passed" or outcome == "skipped":
                    outcome = "failed" if child.tag == "failure" else "error"
                    detail = f"{child.get('message', '')}\n{child.text or ''}"
            elif child.tag == "skipped" and outcome == "passed":
                outcome, detail = "skipped", child.get("message", "")
        results.cases.append(Case(name, outcome, detail))
    return results


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


def write_sdk_clouds(path: Path, kaon_clouds: Path, passwords: dict[str, str]) -> None:
    """The clouds openstacksdk's functional tests read, from kaon's own clouds.yaml."""
    base = yaml.safe_load(kaon_clouds.read_text())["clouds"]["kaon-admin"]
    clouds = {}
    for name, (user, project) in SDK_CLOUDS.items():
        auth = {**base["auth"], "username": user, "password": passwords[user], "project_name": project}
        clouds[name] = {**base, "auth": auth}
    path.write_text(yaml.safe_dump({"clouds": clouds}, sort_keys=False))
    path.chmod(0o600)


@dataclass
class Node:
    """A running node: the sdk's clouds.yaml, kaon's API URL and the extension aliases it lists."""

    clouds: Path
    url: str
    extensions: set[str]
    log: Path


@contextlib.contextmanager
def kaon_node(workdir: Path) -> Iterator[Node]:
    """``kaon up`` with its agent in a namespace of its own (stopped and removed on exit)."""
    from tests.api.test_up import Up  # the same runner the api tier uses for `kaon up`

    ns = f"kaonsdk{uuid.uuid4().hex[:6]}"
    state = workdir / "state"
    state.mkdir(parents=True)
    _ip("netns", "add", ns)
    up = None
    try:
        _ip("-n", ns, "link", "set", "lo", "up")
        _ip("-n", ns, "link", "add", "provider0", "type", "veth", "peer", "name", "provider0p")
        _ip("-n", ns, "link", "set", "provider0", "up")
        _ip("-n", ns, "link", "set", "provider0p", "up")
        agent_conf = workdir / "agent.conf"
        agent_conf.write_text(
            f"[DEFAULT]\nhost = sdk-node\n[agent]\nnamespace = {ns}\nnamespace_prefix = {ns}-\n"
            "roles = dhcp, l3\n[linux_bridge]\nphysical_interface_mappings = provider:provider0\n"
        )
        up = Up(state, free_port(), workdir / "up.log", ["--config-file", str(agent_conf)])
        up.wait_ready(30)
        passwords = yaml.safe_load((state / "passwords.json").read_text())
        token, _ = password_token(load_cloud("kaon-admin", [state / "clouds.yaml"]))
        with httpx.Client(base_url=up.url + "/v2.0", headers={"X-Auth-Token": token}, timeout=30) as api:
            # The external network the floating IP and router gateway tests look for.
            net = api.post("/networks", json={"network": {
                "name": "public", "router:external": True, "provider:network_type": "flat",
                "provider:physical_network": "provider"}})
            net.raise_for_status()
            sub = api.post("/subnets", json={"subnet": {
                "name": "public-subnet", "network_id": net.json()["network"]["id"], "ip_version": 4,
                "cidr": "172.24.4.0/24", "enable_dhcp": False}})
            sub.raise_for_status()
            aliases = {e["alias"] for e in api.get("/extensions").json()["extensions"]}
        clouds = workdir / "clouds.yaml"
        write_sdk_clouds(clouds, state / "clouds.yaml", passwords)
        yield Node(clouds, up.url, aliases, workdir / "up.log")
    finally:
        if up is not None:
            up.stop()
        # The agent's qrouter-/qdhcp- namespaces carry "<ns>-"; dnsmasq goes by pid.
        listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split()
        for name in [n for n in listed if n.startswith(f"{ns}-")] + [ns]:
            remove_netns(name)


def run_sdk_tests(workdir: Path, clouds: Path, pytest_args: Sequence[str] = (), timeout: float = 1200,
                  env_extra: dict[str, str] | None = None, report_name: str = "sdk-junit.xml") -> tuple[Results, str]:
    """Run the sdk's network tests with .venv-osc's pytest; (results, pytest output)."""
    report = workdir / report_name
    ini = workdir / "pytest.ini"  # an empty config: nothing of kaon's own pytest setup applies
    ini.write_text("[pytest]\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "OPENSTACKSDK_", "PYTEST_"))}
    env.update(OS_CLIENT_CONFIG_FILE=str(clouds), OS_CLOUD="devstack-admin",
               OPENSTACKSDK_FUNC_TEST_TIMEOUT="60", PYTHONDONTWRITEBYTECODE="1", **(env_extra or {}))
    argv = [str(OSC_PYTHON), "-m", "pytest", "-c", str(ini), "--rootdir", str(workdir),
            "-p", "no:cacheprovider", "-q", "-rN", "--tb=long", f"--junitxml={report}",
            "-o", "junit_family=xunit2", "--pyargs", SDK_PACKAGE, *pytest_args]
    proc = subprocess.run(argv, cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout)
    if not report.exists():
        raise AssertionError(f"the sdk tests did not run (rc={proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return parse_junit(report), proc.stdout + proc.stderr


def problems(results: Results, agents_as_admin: Results, extensions: set[str]) -> list[str]:
    """What keeps the run from the acceptance bar, one entry per test, with its traceback."""
    out: list[str] = []
    admin_passed = {c.name for c in agents_as_admin.cases if c.outcome == "passed"}
    for case in results.cases:
        reason = case.detail.strip()
        if case.outcome == "passed":
            continue
        if case.outcome != "skipped":
            out.append(f"{case.name} {case.outcome}:\n{case.detail}")
        elif reason == NO_AGENTS_FOR_MEMBER:
            if case.name not in admin_passed:
                out.append(f"{case.name}: skipped as a member ({reason}) and did not pass with the admin "
                           "as user cloud")
        elif reason not in MISSING_EXTENSION_SKIPS:
            out.append(f"{case.name}: skipped for a reason that is not a missing extension: {reason!r}")
        elif MISSING_EXTENSION_SKIPS[reason] in extensions:
            out.append(f"{case.name}: skipped as if {MISSING_EXTENSION_SKIPS[reason]!r} were missing, "
                       "but kaon lists it")
    for case in agents_as_admin.cases:
        if case.outcome != "passed":
            out.append(f"{case.name} (admin as user cloud) {case.outcome}:\n{case.detail}")
    return out


def run_all(workdir: Path, node: Node) -> tuple[Results, Results]:
    """The whole network/v2 set as devstack has it, then the agent tests with the admin as user cloud."""
    results, _ = run_sdk_tests(workdir, node.clouds)
    agents, _ = run_sdk_tests(workdir, node.clouds, ["-k", AGENT_TESTS], env_extra=AS_ADMIN,
                              report_name="sdk-agents-junit.xml")
    return results, agents


def main(argv: list[str]) -> int:
    import tempfile

    with tempfile.TemporaryDirectory(prefix="kaon-sdk-") as tmp, kaon_node(Path(tmp)) as node:
        if argv:  # a selection: just run it and show what did not pass
            results, _ = run_sdk_tests(Path(tmp), node.clouds, argv)
            for case in results.cases:
                if case.outcome != "passed":
                    print(f"{case.outcome:8} {case.name}: {case.detail.strip()[-2000:]}")
            print(results.summary())
            return 0
        results, agents = run_all(Path(tmp), node)
        found = problems(results, agents, node.extensions)
    reasons: dict[str, int] = {}
    for case in results.cases:
        if case.outcome == "skipped":
            reasons[case.detail.strip()] = reasons.get(case.detail.strip(), 0) + 1
    for reason, n in sorted(reasons.items(), key=lambda kv: -kv[1]):
        print(f"{n:4} skipped: {reason}")
    for problem in found:
        print("PROBLEM", problem.splitlines()[0])
    print(f"network/v2: {results.summary()}; agent tests as admin: {agents.summary()}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
