"""Entities as Keystone renders them, each with its ``links.self``."""

from __future__ import annotations

from typing import Any

from kaon.identity.store import Row

Body = dict[str, Any]


def _links(base: str, plural: str, id_: str) -> dict[str, str]:
    return {"self": f"{base}/v3/{plural}/{id_}"}


def domain(row: Row, base: str) -> Body:
    return {
        "id": row["id"],
        "name": row["name"],
        "description": row["description"],
        "enabled": row["enabled"],
        "tags": [],
        "options": {},
        "links": _links(base, "domains", row["id"]),
    }


def project(row: Row, base: str) -> Body:
    return {
        **row.get("extra", {}),
        "id": row["id"],
        "name": row["name"],
        "domain_id": row["domain_id"],
        "description": row["description"],
        "enabled": row["enabled"],
        "parent_id": row["domain_id"],
        "is_domain": False,
        "tags": [],
        "options": {},
        "links": _links(base, "projects", row["id"]),
    }


def user(row: Row, base: str) -> Body:
    body: Body = {
        **row.get("extra", {}),
        "id": row["id"],
        "name": row["name"],
        "domain_id": row["domain_id"],
        "enabled": row["enabled"],
        "password_expires_at": None,
        "options": {},
        "links": _links(base, "users", row["id"]),
    }
    if row["description"]:
        body["description"] = row["description"]
    if row["default_project_id"]:
        body["default_project_id"] = row["default_project_id"]
    return body


def role(row: Row, base: str) -> Body:
    return {
        "id": row["id"],
        "name": row["name"],
        "domain_id": None,
        "description": row["description"] or None,
        "options": {},
        "links": _links(base, "roles", row["id"]),
    }
