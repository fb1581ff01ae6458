"""``kaon doctor`` findings for the page: the hook the page calls.

The doctor (issue 14, item 1) is being built in ``kaon/doctor`` at the same
time as this page; until it lands this hook returns no findings and the
page's "findings" panel says so. When it lands, this function is the one
place to connect it: return each finding as a dict with

* ``subject``  the id of the object it is about (port, network, router, agent)
               or a host name, so the page shows it beside that object;
* ``severity`` ``error`` or ``warning``;
* ``message``  the doctor's one line: what is wrong, the evidence, the fix.

Only admins see findings (the doctor's API, ``GET /v2.0/doctor``, is admin-only).
"""

from __future__ import annotations

from typing import Any


def doctor_findings(services: Any, ctx: Any) -> list[dict[str, Any]]:
    """Findings to show on the page for ``ctx``; empty until kaon.doctor exists."""
    # Connect kaon.doctor here when it lands (admins only); nothing to show before.
    return []
