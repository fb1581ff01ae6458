"""A finding and the report of one doctor run.

A finding reads as one line: ``HOST: SUBJECT: EVIDENCE — FIX`` (the host
only for per-host findings). ``--json`` gives the same fields as an object.
A check that could not look at all is not a finding: it goes to
``not_checked`` with the reason, and makes the exit code 2 when nothing
else was found (a finding is more useful to act on than "could not check").
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

ERROR, WARNING = "error", "warning"
HEALTHY, FINDINGS, UNCHECKED = 0, 1, 2


@dataclass(frozen=True)
class Finding:
    check: str
    severity: str  # error | warning
    subject: str  # what is wrong, e.g. "port p1 (3f2a...)"
    evidence: str  # what shows it
    fix: str  # what to do, as a command or a sentence
    host: str | None = None  # set for findings about one host

    def line(self) -> str:
        where = f"{self.host}: " if self.host else ""
        return f"{where}{self.subject}: {self.evidence} — {self.fix}"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Skipped:
    check: str
    reason: str


@dataclass
class Report:
    findings: list[Finding] = field(default_factory=list)
    not_checked: list[Skipped] = field(default_factory=list)
    not_applicable: list[Skipped] = field(default_factory=list)
    passed: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def exit_code(self) -> int:
        if self.findings:
            return FINDINGS
        return UNCHECKED if self.not_checked else HEALTHY

    def as_dict(self) -> dict[str, Any]:
        return {"findings": [f.as_dict() for f in self.findings],
                "not_checked": [asdict(s) for s in self.not_checked],
                "not_applicable": [asdict(s) for s in self.not_applicable],
                "passed": list(self.passed), "exit_code": self.exit_code}

    def lines(self) -> list[str]:
        out = [f.line() for f in self.findings]
        out += [f"not checked: {s.check}: {s.reason}" for s in self.not_checked]
        if not out:
            out.append(f"healthy: {len(self.passed)} checks passed")
        return out
