"""kaon doctor's runner: one check's crash, refusal or absence does not hide
another check's finding, and the exit code follows the outcomes."""

from __future__ import annotations

from typing import Any

import pytest

from kaon.config import load_config
from kaon.doctor import registry
from kaon.doctor.finding import ERROR, Finding
from kaon.doctor.inputs import CannotCheck, NotApplicable


def _crash(inp: Any) -> list[Finding]:
    raise KeyError("boom")


def _cannot(inp: Any) -> list[Finding]:
    raise CannotCheck("ovsdb-server does not answer")


def _absent(inp: Any) -> list[Finding]:
    raise NotApplicable("nothing configured")


def _finds(inp: Any) -> list[Finding]:
    return [Finding("finds", ERROR, "thing", "is broken", "mend it", host="h1")]


def _quiet(inp: Any) -> list[Finding]:
    return []


def run(monkeypatch: pytest.MonkeyPatch, *checks: tuple[str, Any]) -> Any:
    monkeypatch.setattr(registry, "CHECKS", tuple(registry.Check(n, registry.CONFIG, f) for n, f in checks))
    return registry.run(load_config([], {}))


def test_a_crash_is_not_checked_and_the_others_still_run(monkeypatch: pytest.MonkeyPatch) -> None:
    out = run(monkeypatch, ("crash", _crash), ("finds", _finds), ("quiet", _quiet))
    assert [f.line() for f in out.findings] == ["h1: thing: is broken — mend it"]
    assert [(s.check, s.reason) for s in out.not_checked] == [("crash", "the check failed: KeyError: 'boom'")]
    assert out.passed == ["quiet"] and out.exit_code == 1


def test_exit_codes(monkeypatch: pytest.MonkeyPatch) -> None:
    assert run(monkeypatch, ("quiet", _quiet), ("absent", _absent)).exit_code == 0
    cannot = run(monkeypatch, ("quiet", _quiet), ("cannot", _cannot))
    assert cannot.exit_code == 2
    assert cannot.lines() == ["not checked: cannot: ovsdb-server does not answer"]
    assert run(monkeypatch, ("cannot", _cannot), ("finds", _finds)).exit_code == 1
    healthy = run(monkeypatch, ("quiet", _quiet), ("absent", _absent))
    assert healthy.lines() == ["healthy: 1 checks passed"]
    assert healthy.as_dict()["not_applicable"] == [{"check": "absent", "reason": "nothing configured"}]
