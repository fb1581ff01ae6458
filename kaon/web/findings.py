"""``kaon doctor`` findings for the page (admins only, as ``GET /v2.0/doctor``).

The page shows the doctor's checks of stored state (its DATA checks: binding
failures, renamed hosts, generation lag, ...), not its configuration checks
(those open network connections and belong to ``kaon doctor`` on a host).
Each finding becomes ``{subject, severity, message}``: ``subject`` is the id
of the object the finding names (the first UUID in its subject) or its host,
so the page can show it beside that port or host; ``message`` is the doctor's
one line. The checks read the database, so their answer is kept for a few
seconds: an open page re-reads its view every second.
"""

from __future__ import annotations

import re
import threading
import time
from typing import Any

from kaon.core.access import policy

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
TTL_SECONDS = 3.0

_lock = threading.Lock()
_cache: dict[int, tuple[float, list[dict[str, Any]]]] = {}


def doctor_findings(services: Any, ctx: Any) -> list[dict[str, Any]]:
    """Findings to show on the page for ``ctx``: none for callers the doctor's policy refuses."""
    if not policy.current().allowed(ctx, "get_doctor", {}):
        return []
    key = id(services.engine)
    with _lock:
        hit = _cache.get(key)
        if hit is not None and time.monotonic() - hit[0] < TTL_SECONDS:
            return hit[1]
    from kaon.doctor import registry

    report = registry.run(services.cfg, engine=services.engine, kinds=(registry.DATA,))
    found = [_shown(f) for f in report.findings]
    with _lock:
        _cache[key] = (time.monotonic(), found)
    return found


def _shown(finding: Any) -> dict[str, Any]:
    named = _UUID.search(finding.subject)
    subject = named.group(0) if named else (finding.host or finding.subject)
    where = f"{finding.host}: " if finding.host and subject != finding.host else ""
    return {"subject": subject, "severity": finding.severity,
            "message": f"{where}{finding.subject}: {finding.evidence} — {finding.fix}"}
