"""The bus between the server and the host agents (docs/design/agents.md, "Bus").

    bus = server_bus(cfg.default.transport_url, cfg.default.state_path)
    bus.start(handler)                      # handler(method, payload) -> reply
    bus.notify("h1", {"type": "hint", "host": "h1", "generation": 7})

    agent = agent_bus(cfg.default.transport_url, cfg.default.state_path)
    agent.listen("h1", on_message, on_reconnect)
    agent.call("get_intent", {"host": "h1", "known_generation": 6}, timeout=10)
"""

from kaon.bus.base import (
    AgentBus,
    BusError,
    BusTimeout,
    BusUnavailable,
    Handler,
    ServerBus,
    agent_bus,
    server_bus,
)

__all__ = [
    "AgentBus",
    "BusError",
    "BusTimeout",
    "BusUnavailable",
    "Handler",
    "ServerBus",
    "agent_bus",
    "server_bus",
]
