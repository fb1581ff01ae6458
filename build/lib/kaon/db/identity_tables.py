"""Tables of the embedded identity service (a Keystone v3 subset).

Names carry an ``identity_`` prefix so that they never collide with the
networking tables (Neutron has its own notion of "projects" only as ids).

Role assignments are polymorphic like Keystone's ``assignment`` table: the
target is a project or a domain, told apart by ``target_type``; there is no
foreign key on ``target_id`` for that reason, so deleting a project or a
domain deletes its assignments explicitly (see ``kaon.identity.store``).
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from kaon.db.meta import metadata

domains = Table(
    "identity_domains",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("description", Text, nullable=False, default=""),
    Column("enabled", Boolean, nullable=False, default=True),
)

projects = Table(
    "identity_projects",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(255), nullable=False),
    Column(
        "domain_id",
        String(64),
        ForeignKey("identity_domains.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("description", Text, nullable=False, default=""),
    Column("enabled", Boolean, nullable=False, default=True),
    # Attributes Keystone keeps but kaon does not interpret, as JSON text.
    Column("extra", Text, nullable=False, default="{}"),
    UniqueConstraint("domain_id", "name"),
)

users = Table(
    "identity_users",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(255), nullable=False),
    Column(
        "domain_id",
        String(64),
        ForeignKey("identity_domains.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("password_hash", String(255), nullable=True),
    Column("enabled", Boolean, nullable=False, default=True),
    # Keystone lets this dangle after the project is deleted; so does kaon.
    Column("default_project_id", String(64), nullable=True),
    Column("description", Text, nullable=False, default=""),
    Column("extra", Text, nullable=False, default="{}"),
    UniqueConstraint("domain_id", "name"),
)

roles = Table(
    "identity_roles",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("description", Text, nullable=False, default=""),
)

assignments = Table(
    "identity_assignments",
    metadata,
    Column(
        "user_id",
        String(64),
        ForeignKey("identity_users.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("target_type", String(8), primary_key=True),  # "project" | "domain"
    Column("target_id", String(64), primary_key=True),
    Column(
        "role_id",
        String(64),
        ForeignKey("identity_roles.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Index("ix_identity_assignments_target", "target_type", "target_id"),
)

# Token revocations: tokens are stateless, so a revocation is a rule that
# matches tokens. ``kind`` is "audit" (one token, by its audit id), "user" or
# "project" (every token of that user / scoped to that project issued at or
# before ``revoked_at``). Rows are kept until ``expires_at``, after which no
# token they could match is still valid.
revocations = Table(
    "identity_revocations",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(8), nullable=False),
    Column("value", String(64), nullable=False),
    Column("revoked_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
)

TABLES = (domains, projects, users, roles, assignments, revocations)
