"""JSON responses (orjson) and the NeutronError body."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

from kaon import errors


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json", headers=headers)


def error_response(exc: errors.KaonError) -> Response:
    return json_response(errors.body_of(exc), status=errors.status_of(exc))
