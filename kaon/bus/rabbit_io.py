"""RabbitMQ plumbing for kaon/bus/rabbit.py: URLs, connections, a shared publisher.

kombu connections are not thread-safe: each helper here works on a
connection the calling thread owns, except ``Publisher``, which shares one
behind a lock.  ``interrupt`` is the one thing another thread may do to a
connection: shut its socket down, so that a reader blocked in
``drain_events`` fails at once and sees that it should stop.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import amqp.exceptions
import kombu.exceptions
from kombu.connection import Connection
from kombu.messaging import Producer

from kaon.bus.base import BusUnavailable

CONNECT_TIMEOUT = 2.0

# What a lost or refused connection raises (kombu wraps some, not all).
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    amqp.exceptions.AMQPError,
    amqp.exceptions.MessageNacked,
    kombu.exceptions.OperationalError,
)


def amqp_urls(transport_url: str) -> list[str]:
    """``rabbit://u:p@h1:5672,u:p@h2:5672/vhost`` -> one kombu URL per host.

    The vhost is the path as oslo.messaging reads it: empty means ``/``.
    """
    parts = urlsplit(transport_url.strip())
    if parts.scheme not in ("rabbit", "amqp"):
        raise ValueError(f"not a rabbit:// transport_url: {transport_url!r}")
    vhost = parts.path[1:] if parts.path.startswith("/") else parts.path
    urls = []
    for netloc in parts.netloc.split(","):
        creds, _, hostport = netloc.rpartition("@")
        if not hostport:
            raise ValueError(f"transport_url {transport_url!r} names no host")
        if ":" not in hostport.rsplit("]", 1)[-1]:
            hostport += ":5672"
        urls.append(f"amqp://{creds + '@' if creds else ''}{hostport}/{vhost or '/'}")
    return urls


def connect_any(urls: list[str], *, heartbeat: int = 0, confirm: bool = False) -> Connection:
    """A connected kombu Connection to the first broker that answers; BusUnavailable if none does."""
    errors = []
    for url in urls:
        conn = Connection(
            url,
            heartbeat=heartbeat,
            connect_timeout=CONNECT_TIMEOUT,
            transport_options={"confirm_publish": confirm},
        )
        try:
            # max_retries=0: one attempt; connect() would sleep 2 s and try again.
            conn.ensure_connection(max_retries=0)
            return conn
        except CONNECTION_ERRORS as e:
            errors.append(f"{conn.as_uri()}: {e}")
            discard(conn)
    raise BusUnavailable("no RabbitMQ broker reachable: " + "; ".join(errors))


def discard(conn: Connection) -> None:
    """Close ``conn`` politely if it is alive, else just drop it."""
    try:
        conn.release()
    except Exception:
        with contextlib.suppress(Exception):
            conn.collect()


def interrupt(sock: socket.socket | None) -> None:
    """Wake a thread blocked reading ``sock`` (its drain then fails and it sees the stop)."""
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def raw_socket(conn: Connection) -> socket.socket | None:
    return getattr(getattr(conn.connection, "transport", None), "sock", None)


def drain(conn: Connection, timeout: float) -> None:
    """Deliver what arrives within ``timeout``, then keep the heartbeats going.

    The heartbeat check runs after every drain, not only on idle ones: a
    listener that only receives (no acks) sends nothing else, and under a
    steady stream of messages the broker would close it for silence.
    """
    with contextlib.suppress(TimeoutError):
        conn.drain_events(timeout=timeout)
    conn.heartbeat_check()


class Publisher:
    """A publishing connection (with confirms) shared by threads under a lock.

    It connects on first use and again after a failure.  ``setup`` runs on
    each new channel (declare exchanges, start a reply consumer); ``wait``
    then delivers what that consumer receives.  Bodies are JSON already
    encoded (orjson, as the local bus does), so a bad payload fails in the
    caller's thread, before anything is sent.
    """

    def __init__(self, urls: list[str], setup: Callable[[Any], None] | None = None) -> None:
        self._urls = urls
        self._setup = setup
        self._lock = threading.Lock()
        self._conn: Connection | None = None
        self._producer: Producer | None = None
        self._closed = False

    def publish(self, data: bytes, *, exchange: str, routing_key: str,
                confirm_timeout: float = CONNECT_TIMEOUT, **properties: Any) -> None:
        """Publish and wait for the broker's confirm; BusUnavailable if that fails twice."""
        with self._lock:
            for attempt in (1, 2):
                if self._closed:
                    raise BusUnavailable("the bus is closed")
                producer = self._ensure()  # BusUnavailable at once when no broker answers
                try:
                    producer.publish(
                        data, exchange=exchange, routing_key=routing_key,
                        content_type="application/json", content_encoding="utf-8",
                        retry=False, confirm_timeout=confirm_timeout, **properties,
                    )
                    return
                except CONNECTION_ERRORS as e:
                    # An idle connection may have died with a broker restart:
                    # the confirm fails, and one retry on a fresh one settles it.
                    self._drop()
                    if attempt == 2:
                        raise BusUnavailable(f"publish to RabbitMQ failed: {e}") from e

    def wait(self, timeout: float) -> None:
        """Deliver what arrives for ``setup``'s consumer within ``timeout`` (TimeoutError if nothing)."""
        with self._lock:
            if self._conn is None:
                raise BusUnavailable("not connected")
            try:
                self._conn.drain_events(timeout=timeout)
            except TimeoutError:
                raise
            except CONNECTION_ERRORS as e:
                self._drop()
                raise BusUnavailable(f"lost the RabbitMQ connection: {e}") from e

    def _ensure(self) -> Producer:
        if self._producer is None:
            conn = connect_any(self._urls, confirm=True)
            try:
                channel = conn.channel()
                if self._setup is not None:
                    self._setup(channel)
                self._conn, self._producer = conn, Producer(channel)
            except CONNECTION_ERRORS as e:
                discard(conn)
                raise BusUnavailable(f"RabbitMQ channel setup failed: {e}") from e
        return self._producer

    def _drop(self) -> None:
        if self._conn is not None:
            discard(self._conn)
        self._conn = self._producer = None

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._drop()
