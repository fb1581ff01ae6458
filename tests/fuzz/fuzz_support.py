"""The fuzz tier's driver: schemathesis cases generated from kaon's own
``/openapi.json``, sent to a live server as an admin and as a member, with
a fixed seed (docs/design/fuzz.md).

Nothing is raised inside Hypothesis: every case runs, and what breaks the
rules (a 5xx, an answer slower than ``SLOW``) is collected as a
:class:`Finding` with the curl command that reproduces it. Shrinking is off
(phase ``generate`` only) so the budget is spent on new cases.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import requests
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hseed

SEED = 20261207
SLOW = 2.0  # seconds: the slowest answer the tier accepts
ROLES: dict[str, dict[str, str]] = {
    "admin": {"X-Project-Id": "fuzz-admin", "X-Roles": "admin,member,reader"},
    "member": {"X-Project-Id": "fuzz-member", "X-Roles": "member,reader"},
}


@dataclass
class Finding:
    operation: str
    role: str
    mode: str
    status: int | None
    seconds: float
    curl: str
    body: str = ""

    def __str__(self) -> str:
        return (f"{self.operation} as {self.role} ({self.mode}): {self.status} in {self.seconds:.2f}s\n"
                f"  {self.curl}\n  -> {self.body[:300]}")


@dataclass
class Report:
    requests: int = 0
    findings: list[Finding] = field(default_factory=list)
    not_generated: list[str] = field(default_factory=list)  # (operation, mode) Hypothesis could not fill
    seconds: float = 0.0
    waited: float = 0.0  # of which waiting for answers
    statuses: dict[int, int] = field(default_factory=dict)


def _sender(report: Report, label: str, mode: str, base_url: str, session: requests.Session) -> Callable[[Any], None]:
    """Hypothesis' test function: send one case as every role."""
    def send(case: Any) -> None:
        for role, headers in ROLES.items():
            t0 = time.monotonic()
            status: int | None = None
            text = ""
            try:
                response = case.call(base_url=base_url, session=session, headers=headers, timeout=30)
                status, text = response.status_code, response.text
            except requests.RequestException as exc:  # the node hung up or timed out
                text = repr(exc)
            seconds = time.monotonic() - t0
            report.requests += 1
            report.waited += seconds
            if status is not None:
                report.statuses[status] = report.statuses.get(status, 0) + 1
            if status is not None and status < 500 and seconds <= SLOW:
                continue
            report.findings.append(Finding(label, role, mode, status, seconds,
                                           case.as_curl_command(headers=headers, base_url=base_url), text))

    return send


def _negatable(op: Any) -> bool:
    """Whether there is anything to send wrong but the path (every path
    segment is a valid string, so a negative path parameter cannot be made)."""
    raw = op.definition.raw
    return "requestBody" in raw or any(p.get("in") == "query" for p in raw.get("parameters", []))


def _targeted(op: Any, targets: Mapping[str, dict[str, str]]) -> dict[str, str] | None:
    """The path parameters of a real object for ``op``, if one was made for it."""
    for prefix, params in targets.items():
        if op.path.startswith(prefix + "/{") and set(params) <= set(re.findall(r"{(\w+)}", op.path)):
            return params
    return None


def fuzz(base_url: str, doc: dict[str, Any], *, examples: int,
         targets: Mapping[str, dict[str, str]] | None = None,
         modes: tuple[str, ...] = ("positive", "negative")) -> Report:
    """Generate ``examples`` cases per operation and mode; send each as every role.

    ``targets`` maps a path prefix (``/v2.0/ports``) to the path parameters
    of a real object the run may change or delete (``{"id": ...}``): every
    operation on such a path gets a second positive pass on that object,
    the deletes last, so updates, tags and actions reach the service
    instead of stopping at a 404.
    """
    import schemathesis
    from schemathesis import GenerationMode
    from schemathesis.core.result import Err

    schema = schemathesis.openapi.from_dict(doc)
    report = Report()
    session = requests.Session()
    started = time.monotonic()

    def run(op: Any, mode: str, **params: Any) -> None:
        test = hseed(SEED)(settings(
            max_examples=examples, database=None, deadline=None, derandomize=False,
            phases=[Phase.generate], suppress_health_check=list(HealthCheck),
        )(given(op.as_strategy(generation_mode=GenerationMode(mode), **params))(
            _sender(report, op.label, mode if not params else f"{mode}, real object", base_url, session))))
        try:
            test()
        except Exception as exc:  # Hypothesis could not build cases
            report.not_generated.append(f"{op.label} {mode}: {type(exc).__name__}: {exc}"[:200])

    ops = []
    for result in schema.get_all_operations():
        if isinstance(result, Err):  # the document has an operation schemathesis cannot read
            raise result.err()
        ops.append(result.ok())
    for op in ops:
        for mode in modes:
            if mode == "positive" or _negatable(op):
                run(op, mode)
    on_real = [(op, params) for op in ops if (params := _targeted(op, targets or {})) is not None]
    for op, params in sorted(on_real, key=lambda pair: pair[0].method.upper() == "DELETE"):
        run(op, "positive", path_parameters=params)
    report.seconds = time.monotonic() - started
    return report
