"""``If-Match: revision_number=N``: Neutron's optimistic concurrency on PUT
and DELETE. Parsed here; services call the check with the revision they
read under their lock."""

from __future__ import annotations

from kaon import errors
from kaon.errors import HTTPBadRequest


def check_revision(current: int, if_match: str | None) -> None:
    """``If-Match: revision_number=N`` -> 412 unless the resource is at N."""
    if not if_match:
        return
    for part in if_match.split(","):
        part = part.strip()
        if part.startswith("revision_number="):
            try:
                expected = int(part.split("=", 1)[1])
            except ValueError:
                raise HTTPBadRequest(msg=f"Invalid If-Match value {part}") from None
            if expected != current:
                raise errors.RevisionNumberConstraintFailed(expected=expected, current=current)
