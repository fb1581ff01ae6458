"""Alembic environment: kaon's one metadata, the URL from the caller."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from kaon.db.meta import load_all

target_metadata = load_all()


def run() -> None:
    connectable = context.config.attributes.get("connection")
    url = context.config.get_main_option("sqlalchemy.url")
    if connectable is None:
        from kaon.db.engine import make_engine

        if url is None:
            raise RuntimeError("alembic: neither a connection nor sqlalchemy.url was given")
        connectable = make_engine(url)
        with connectable.connect() as conn:
            _migrate(conn)
        connectable.dispose()
    else:
        _migrate(connectable)


def _migrate(conn: Connection) -> None:
    context.configure(connection=conn, target_metadata=target_metadata,
                      render_as_batch=conn.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()


run()
