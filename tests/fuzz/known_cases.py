"""Fuzz findings already fixed on another branch, excluded from the CI run
until that branch is merged (then this module goes: the coordinator
deletes the rules below, and the tier must stay green without them).

Every rule names the fix. They are the 500s of issue 13 item 4, fixed on
branch ``hardening`` by commit 3596ebe "Hostile input answers 400, not 500"
(bounded integers, integer filters within the column's range, non-string
pool bounds, huge ?limit clamped, NUL refused, quota project id length,
DataError as 400). A rule matches only the request shape it names, so a
new kind of 500 still fails the tier.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from tests.fuzz.fuzz_support import Finding

HARDENING = "fixed on branch hardening (3596ebe)"
INT_RANGE = 2**31  # PostgreSQL's INTEGER; SQLite's is 2^63


def _values(query: Any) -> list[Any]:
    out: list[Any] = []
    for value in (query or {}).values():
        out.extend(value if isinstance(value, list) else [value])
    return out


def _big_int(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, float):
        return abs(value) >= INT_RANGE or value != int(value)
    try:
        return abs(int(value)) >= INT_RANGE
    except (TypeError, ValueError, OverflowError):
        return False


def nul_character(case: Any) -> bool:
    text = json.dumps([case.path_parameters, case.query, case.body], default=str)
    return "\\u0000" in text


def integer_query_out_of_range(case: Any) -> bool:
    """A filter (or ?limit) on an integer column beyond what the column holds."""
    return case.method == "GET" and any(_big_int(v) for v in _values(case.query))


def non_string_pool_bound(case: Any) -> bool:
    body = case.body if isinstance(case.body, dict) else {}
    subnet = body.get("subnet")
    items = [subnet] if isinstance(subnet, dict) else body.get("subnets") or []
    for item in items if isinstance(items, list) else []:
        item = item.get("subnet", item) if isinstance(item, dict) else item
        pools = item.get("allocation_pools") if isinstance(item, dict) else None
        if isinstance(pools, list) and any(
                isinstance(p, dict) and not all(isinstance(p.get(k), str) for k in ("start", "end") if k in p)
                for p in pools):
            return True
    return False


def unbounded_pool_quota(case: Any) -> bool:
    """Subnet-pool default_quota beyond INTEGER, or not a whole number."""
    text = json.dumps(case.body, default=str) if case.body is not None else ""
    return "/subnetpools" in case.path and '"default_quota"' in text


def long_quota_project(case: Any) -> bool:
    project = (case.path_parameters or {}).get("project", "")
    return case.path.startswith("/v2.0/quotas/{project}") and len(str(project)) > 255


RULES: dict[str, Callable[[Any], bool]] = {
    "NUL character": nul_character,
    "integer query value out of range": integer_query_out_of_range,
    "non-string allocation pool bound": non_string_pool_bound,
    "subnet pool default_quota": unbounded_pool_quota,
    "quota project id over 255": long_quota_project,
}


def known(case: Any, finding: Finding) -> str | None:
    """The rule an answer falls under, or None. Only 500s are excused:
    a slow answer or a dropped connection is never "known"."""
    if finding.status != 500:
        return None
    for name, rule in RULES.items():
        if rule(case):
            return f"{name}: {HARDENING}"
    return None
