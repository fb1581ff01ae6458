"""Compile once, reconcile everywhere: pure projections from a snapshot to host intents.

``snapshot`` holds the typed rows (read from the database by
kaon.core.agents.snapshot); ``sections`` projects a snapshot through the sections
— ``l2_section``, ``l3_section``, ``dhcp_section``, ``firewall_section`` —
into one kaon.model.intent.HostIntent per host. Nothing here does I/O or
imports the database or the service layer: kaon.core.agents.intents runs the
passes, stores generations and sends hints.
"""
