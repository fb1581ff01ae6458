"""The dhcp role of a host's agent (issue 5): not built yet."""

from __future__ import annotations

from typing import Any

from kaon.agent.config import AgentConfig
from kaon.config import Config, ConfigError


def build(cfg: Config, acfg: AgentConfig) -> Any:
    raise ConfigError("[agent] roles: the dhcp role is not available in this version of kaon")
