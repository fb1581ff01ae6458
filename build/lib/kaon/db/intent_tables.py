"""What the compiler last produced for each host, and what the host applied.

``host_intents``: one row per host that has (or had) something to do. The
``generation`` only moves when the *content* of the host's intent changes
(``digest`` is a hash of the canonical JSON), so a change touches only the
hosts it affects. ``applied_generation`` is what the host's agent last
reported as applied; a client waits for a change by comparing the two.
Keeping the generation in the database lets a restarted server continue the
sequence and lets any server process answer an agent's fetch.
"""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Column, DateTime, String, Table

from kaon.db.meta import metadata

host_intents = Table(
    "host_intents",
    metadata,
    Column("host", String(255), primary_key=True),
    Column("generation", BigInteger, nullable=False, default=0),
    Column("digest", String(64), nullable=False, default=""),
    Column("intent", JSON, nullable=False, default=dict),
    Column("compiled_at", DateTime, nullable=True),
    Column("applied_generation", BigInteger, nullable=False, default=0),
    Column("applied_at", DateTime, nullable=True),
)
