"""The one SQLAlchemy MetaData every table module registers on.

Table modules (``kaon.db.core_tables``, ``kaon.db.ml2_tables``,
``kaon.db.identity_tables`` ...) import ``metadata`` from here; the Alembic
environment imports them all through :func:`load_all`.
"""

from __future__ import annotations

import importlib

from sqlalchemy import MetaData

from kaon.db import mysql  # noqa: F401  (registers MySQL's DDL: character set, DATETIME(6))

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING)

TABLE_MODULES = (
    "kaon.db.core_tables",
    "kaon.db.ml2_tables",
    "kaon.db.identity_tables",
    "kaon.db.l3_tables",
    "kaon.db.agent_tables",
    "kaon.db.sg_tables",
    "kaon.db.pool_tables",
    "kaon.db.intent_tables",
)


def load_all() -> MetaData:
    """Import every table module so ``metadata`` knows every table."""
    for name in TABLE_MODULES:
        importlib.import_module(name)
    return metadata
