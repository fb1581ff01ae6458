"""``GET /v2.0/service-providers`` (the ``service-type`` extension), for
every authenticated user, as Neutron has it. Filters: ``service_type``,
``name``, ``default``; ``fields`` selects keys. Like Neutron's controller for
this resource (made without sorting, pagination or filter validation), other
query parameters are ignored."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kaon import errors
from kaon.api import extensions
from kaon.api.responses import json_response
from kaon.core.l3.service_providers import FIELDS, list_providers
from kaon.model import validators as v

extensions.add("service-type", "Neutron Service Type Management",
               "API for retrieving service providers for Neutron advanced services")


def _filter_value(key: str, value: str) -> Any:
    if key != "default":
        return value
    try:
        return v.boolean(value)
    except v.InvalidValue:
        raise errors.InvalidInput(
            error_message=f"Invalid input for default. Reason: '{value}' is not valid for filtering") from None


async def list_service_providers(request: Request) -> Response:
    filters: dict[str, list[Any]] = {}
    fields: list[str] = []
    for key, value in request.query_params.multi_items():
        if key == "fields":
            fields.append(value)
        elif key in FIELDS:
            filters.setdefault(key, []).append(_filter_value(key, value))
    return json_response({"service_providers": list_providers(filters, fields)})


def routes() -> list[Route]:
    return [Route("/v2.0/service-providers", list_service_providers)]
