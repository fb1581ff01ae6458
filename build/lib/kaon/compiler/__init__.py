"""Compile once, reconcile everywhere: the server's state as per-host intents.

``snapshot`` reads what the hosts need in one transaction; ``projection``
turns a snapshot into one intent per host (pure, no I/O); ``generations``
stores each host's intent and moves its generation only when the content
changed; ``service`` runs compiles in the background and sends hints.
"""
