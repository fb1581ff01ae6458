"""The bus between the server and the host agents: interface, errors, factories.

The contract (messages, RabbitMQ layout) is docs/design/agents.md, "Bus".
Two roles, two Protocols:

* ``ServerBus``: the server answers agent requests with one ``Handler`` and
  sends one-way hints to the agents of a host (``notify``).
* ``AgentBus``: an agent makes request/reply ``call``s and ``listen``s for
  the hints addressed to its host.

Errors::

    BusError                 the request failed; also a handler's exception,
     │                       carried back to the caller as its message
     ├── BusTimeout          no reply in time (no server, or a slow one)
     └── BusUnavailable      the transport is down (broker or hub unreachable)

The factories pick the implementation from ``[DEFAULT] transport_url``:
empty or ``unix://`` is the local bus (kaon/bus/local.py), ``rabbit://`` is
RabbitMQ through kombu (kaon/bus/rabbit.py).  Both are imported lazily, so the
all-in-one server does not need kombu.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

Handler = Callable[[str, dict[str, Any]], dict[str, Any]]
"""``(method, payload) -> reply payload``; an exception becomes the caller's BusError."""

MessageCallback = Callable[[dict[str, Any]], None]
ReconnectCallback = Callable[[], None]

DEFAULT_TIMEOUT = 10.0
SOCKET_NAME = "bus.sock"


class BusError(Exception):
    """A bus request failed (the message says why)."""


class BusTimeout(BusError):
    """No reply within the call's timeout."""


class BusUnavailable(BusError):
    """The transport cannot be reached right now; retry later."""


class ServerBus(Protocol):
    def start(self, handler: Handler) -> None:
        """Begin serving agent requests with ``handler`` (background threads)."""
        ...

    def notify(self, host: str, message: dict[str, Any]) -> None:
        """Best-effort one-way message to the agents of ``host``; never raises on an outage."""
        ...

    def close(self) -> None: ...


class AgentBus(Protocol):
    def call(self, method: str, payload: dict[str, Any], timeout: float = DEFAULT_TIMEOUT) -> dict[str, Any]:
        """Request/reply; raises BusTimeout, BusUnavailable or BusError."""
        ...

    def listen(
        self,
        host: str,
        on_message: MessageCallback,
        on_reconnect: ReconnectCallback | None = None,
    ) -> None:
        """Deliver ``host``'s messages to ``on_message`` from a background thread.

        Reconnects forever with a capped backoff.  ``on_reconnect`` runs after
        every (re)connection, the first one included, and only once the
        subscription is in place: a change made while it runs still produces
        a message.  Both callbacks run on the listener thread and should be
        quick (mark something dirty); an exception in them is logged.
        """
        ...

    def close(self) -> None: ...


def server_bus(transport_url: str, state_path: str) -> ServerBus:
    """The server side of the bus named by ``transport_url``.

    ``""`` returns the process-wide local hub of ``state_path`` (created on
    first use), which serves ``<state_path>/bus.sock`` once started.
    """
    scheme = _scheme(transport_url)
    if scheme in ("", "unix"):
        from kaon.bus import local

        return local.server_bus(transport_url, state_path)
    from kaon.bus import rabbit

    return rabbit.RabbitServerBus(transport_url)


def agent_bus(transport_url: str, state_path: str) -> AgentBus:
    """The agent side of the bus named by ``transport_url``.

    ``""``: an in-process client when this process runs the local hub of
    ``state_path``, else a client of ``<state_path>/bus.sock``;
    ``unix:///path/bus.sock``: a client of that socket.
    """
    scheme = _scheme(transport_url)
    if scheme in ("", "unix"):
        from kaon.bus import local

        return local.agent_bus(transport_url, state_path)
    from kaon.bus import rabbit

    return rabbit.RabbitAgentBus(transport_url)


def _scheme(transport_url: str) -> str:
    url = transport_url.strip()
    if not url:
        return ""
    scheme, sep, _ = url.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in ("unix", "rabbit", "amqp"):
        raise ValueError(
            f"unsupported transport_url {transport_url!r}: use '' (local), "
            "'unix:///path/bus.sock' or 'rabbit://user:pass@host:5672/vhost'"
        )
    return scheme


def error_text(exc: BaseException) -> str:
    """How a handler's exception reads on the caller's side."""
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
