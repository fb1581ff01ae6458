"""Agents and what they are given: state reports, scheduling, DHCP ports, the snapshot, compiled intents and their generations, diagnostics for kaon doctor."""
