"""A loopback TCP port for a service that binds it later.

``bind(0)`` hands out a port *inside* the kernel's ephemeral range
(``net.ipv4.ip_local_port_range``, 32768-60999 by default), the range
``connect()`` takes source ports from: any outgoing connection made before
the service binds (RabbitMQ's Erlang boot takes seconds; ``kaon up`` keeps
the metadata port it chose for every later start) can take it.  Ports below
that range are never given to ``connect()``, so only another listener can
race us there.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

# Where to choose when the ephemeral range cannot be read or leaves no room below it.
FALLBACK_RANGE = (20000, 32767)


def below_ephemeral(range_file: Path = Path("/proc/sys/net/ipv4/ip_local_port_range")) -> tuple[int, int]:
    """The ports from 10000 to just below the ephemeral range."""
    try:
        low = int(range_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return FALLBACK_RANGE
    return (10000, low - 1) if low > 12000 else FALLBACK_RANGE


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` now, outside the ephemeral range where one is found."""
    low, high = below_ephemeral()
    for _ in range(100):
        port = random.randint(low, high)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:  # all taken: any free one
        s.bind((host, 0))
        return int(s.getsockname()[1])
