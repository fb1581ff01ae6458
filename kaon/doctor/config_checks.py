"""Checks of the server's configuration: can it reach what it names?

Each tries the real thing with a short timeout — a connection to
``[database] connection``, an AMQP handshake with each ``transport_url``
host, a token from ``[keystone_authtoken]`` — and turns the refusal into
the finding an operator can act on: unreachable (which host and port) or
refused (which user), never the password.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import httpx
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from kaon.doctor.finding import ERROR, Finding
from kaon.doctor.inputs import CannotCheck, Inputs, NotApplicable

TIMEOUT = 3.0
_DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306, "mariadb": 3306}


def _causes(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        yield cur
        cur = cur.__cause__ or cur.__context__


def _first_line(exc: BaseException) -> str:
    msg = str(getattr(exc, "orig", None) or exc).strip()
    return msg.splitlines()[0] if msg else type(exc).__name__


# ------------------------------------------------------------------ (a) database

def _db_where(url: Any) -> str:
    backend = url.get_backend_name()
    port = url.port or _DEFAULT_PORTS.get(backend, "")
    user = f"{url.username}@" if url.username else ""
    return f"{backend}://{user}{url.host}:{port}/{url.database}"


def _db_fix(msg: str, url: Any) -> str:
    low = msg.lower()
    if "password authentication failed" in low or "access denied" in low:
        return (f"check the user ({url.username}) and password in [database] connection, "
                "and that the database server grants them access")
    if "role" in low and "does not exist" in low:
        return f"create the database user {url.username} or name an existing one in [database] connection"
    if "database" in low and "does not exist" in low or "unknown database" in low:
        return f"create the database {url.database} (then kaon db upgrade) or fix its name in [database] connection"
    return (f"check that the database server runs and accepts connections on {url.host}:"
            f"{url.port or _DEFAULT_PORTS.get(url.get_backend_name(), '')} from this host "
            "(listen address, firewall, pg_hba.conf)")


def database(inp: Inputs) -> list[Finding]:
    """``[database] connection`` connects, and holds kaon's tables."""
    raw = inp.cfg.database.connection
    try:
        url = make_url(raw)
    except ArgumentError as exc:
        return [Finding("database", ERROR, "[database] connection", f"is not a database URL ({exc})",
                        "write it as dialect://user:password@host:port/name, e.g. postgresql://kaon:SECRET@db/kaon")]
    backend = url.get_backend_name()
    subject = f"database {_db_where(url)}" if backend != "sqlite" else f"database {url.database}"
    if backend == "sqlite":
        path = url.database or ""
        if ("database", "connection") not in inp.cfg.origins and not os.path.exists(path):
            # kaon's default database, never made: these are an agent host's files.
            raise NotApplicable("no [database] connection in these files (an agent host's configuration)")
        if path and path != ":memory:" and not os.path.exists(path):
            return [Finding("database", ERROR, subject, "the file does not exist",
                            "fix state_path / [database] connection, or create it with kaon db upgrade")]
    args = {"connect_timeout": int(TIMEOUT)} if backend == "postgresql" else {}
    try:
        engine = create_engine(url, poolclass=NullPool, connect_args=args)
    except (ArgumentError, ImportError) as exc:
        return [Finding("database", ERROR, subject, f"cannot be used: {exc}",
                        "install the database driver or fix [database] connection")]
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
            has_schema = inspect(conn).has_table("networks")
    except SQLAlchemyError as exc:
        msg = _first_line(exc)
        return [Finding("database", ERROR, subject, msg if msg.startswith("connection") else f"connection failed: {msg}", _db_fix(msg, url))]
    finally:
        engine.dispose()
    if not has_schema:
        return [Finding("database", ERROR, subject, "connects but holds no kaon tables",
                        "kaon db upgrade --config-file <this file> (or fix the database name)")]
    return []


# ------------------------------------------------------------------ (b) RabbitMQ

def _amqp_verdict(exc: BaseException, user: str, vhost: str, hostport: str) -> tuple[str, str]:
    import amqp.exceptions

    for cause in _causes(exc):
        if isinstance(cause, amqp.exceptions.AccessRefused):
            return (f"refused user {user!r}: {_first_line(cause)}",
                    f"fix the user and password in transport_url, or rabbitmqctl add_user {user} … on the broker")
        if isinstance(cause, amqp.exceptions.NotAllowed):
            return (f"user {user!r} may not use virtual host {vhost!r}: {_first_line(cause)}",
                    f"rabbitmqctl set_permissions -p {vhost} {user} '.*' '.*' '.*', or fix the vhost in transport_url")
    return (f"no AMQP answer on {hostport}: {_first_line(exc)}",
            f"start RabbitMQ on {hostport} or fix the host/port in transport_url (and open tcp/"
            f"{hostport.rsplit(':', 1)[-1]} from this host)")


def rabbitmq(inp: Inputs) -> list[Finding]:
    """Each host of a ``rabbit://`` ``transport_url`` accepts its credentials."""
    url = inp.cfg.default.transport_url.strip()
    if not url.startswith(("rabbit://", "amqp://")):
        raise NotApplicable("transport_url is not rabbit:// (the unix or in-process bus)")
    from kombu.connection import Connection

    from kaon.bus.rabbit_io import amqp_urls, discard

    try:
        urls = amqp_urls(url)
    except ValueError as exc:
        return [Finding("rabbitmq", ERROR, "transport_url", str(exc), "write it as rabbit://user:pass@host:5672/")]
    out = []
    for amqp_url in urls:
        conn = Connection(amqp_url, connect_timeout=TIMEOUT)
        info = conn.info()
        hostport = f"{info['hostname']}:{info['port']}"
        try:
            conn.ensure_connection(max_retries=0)
        except Exception as exc:  # kombu wraps some errors and not others: classify by the cause chain
            evidence, fix = _amqp_verdict(exc, str(info.get("userid")), str(info.get("virtual_host")), hostport)
            out.append(Finding("rabbitmq", ERROR, f"RabbitMQ {hostport}", evidence, fix))
        finally:
            discard(conn)
    return out


# ------------------------------------------------------------------ (c) Keystone

def _token_url(auth_url: str) -> str:
    base = auth_url.rstrip("/")
    return f"{base}/auth/tokens" if base.endswith("/v3") else f"{base}/v3/auth/tokens"


def keystone(inp: Inputs) -> list[Finding]:
    """``[keystone_authtoken]`` credentials get a token from its ``auth_url``."""
    opts = dict(inp.cfg.keystone_authtoken)
    auth_url = (opts.get("auth_url") or "").strip()
    if not auth_url:
        if inp.cfg.default.auth_strategy == "keystone":
            return [Finding("keystone", ERROR, "[keystone_authtoken] auth_url", "is not set but auth_strategy = "
                            "keystone", "set auth_url to Keystone's URL, e.g. http://controller:5000/v3")]
        raise NotApplicable("no [keystone_authtoken] auth_url (embedded identity or noauth)")
    user = opts.get("username", "")
    if not user or not opts.get("password"):
        return [Finding("keystone", ERROR, "[keystone_authtoken]", "username or password is not set",
                        "set username, password, project_name, user_domain_name and project_domain_name")]
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": user, "password": opts["password"], "domain": {"name": opts.get("user_domain_name", "Default")}}}},
        "scope": {"project": {"name": opts.get("project_name", "service"),
                              "domain": {"name": opts.get("project_domain_name", "Default")}}}}}
    url = _token_url(auth_url)
    subject = f"Keystone {auth_url}"
    unreachable = ("fix [keystone_authtoken] auth_url (host and port of Keystone's public endpoint) or open that "
                   "port from this host")
    try:
        # The version document first: a wrong path can answer anything to a
        # token request (another service's 401, a proxy's 404) but never this.
        probe = httpx.get(auth_url, timeout=TIMEOUT, headers={"Accept": "application/json"})
        resp = None if not _is_version_document(probe) else httpx.post(url, json=body, timeout=TIMEOUT)
    except httpx.HTTPError as exc:
        return [Finding("keystone", ERROR, subject, f"unreachable: {_first_line(exc) or type(exc).__name__}",
                        unreachable)]
    if resp is None:
        return [Finding("keystone", ERROR, subject, f"GET {auth_url} answers {probe.status_code} without Keystone's "
                        "version document: not Keystone's v3 API at that path",
                        "fix the path of [keystone_authtoken] auth_url (usually http://HOST:5000/v3 or "
                        "http://HOST/identity/v3)")]
    if resp.status_code == 201:
        return []
    if resp.status_code == 401:
        return [Finding("keystone", ERROR, subject, f"refused user {user!r} (401) for project "
                        f"{opts.get('project_name', 'service')!r}",
                        "fix username/password/project_name/*_domain_name in [keystone_authtoken], or "
                        f"openstack role add --user {user} --project {opts.get('project_name', 'service')} admin")]
    if resp.status_code >= 500:
        raise CannotCheck(f"Keystone at {url} answered {resp.status_code}")
    return [Finding("keystone", ERROR, subject, f"POST {url} answers {resp.status_code}",
                    "check [keystone_authtoken] auth_url and the credentials")]


def _is_version_document(resp: httpx.Response) -> bool:
    if resp.status_code not in (200, 300):
        return False
    try:
        body = resp.json()
    except ValueError:
        return False
    return isinstance(body, dict) and ("version" in body or "versions" in body)


# ------------------------------------------------------------------ the VXLAN probe's VNI

def probe_vni(inp: Inputs) -> list[Finding]:
    """``[ml2_type_vxlan] vni_ranges`` must leave out the VNI agents probe their peers on."""
    from kaon.dataplane.vxlan_probe import PROBE_VNI

    ranges = inp.cfg.ml2_type_vxlan.vni_ranges
    if not ranges:
        raise NotApplicable("no [ml2_type_vxlan] vni_ranges (no VXLAN tenant networks here)")
    hit = [f"{lo}:{hi}" for lo, hi in ranges if lo <= PROBE_VNI <= hi]
    if not hit:
        return []
    return [Finding("probe_vni", ERROR, "[ml2_type_vxlan] vni_ranges",
                    f"{', '.join(hit)} includes VNI {PROBE_VNI}, which agents keep for their VXLAN probes: a network "
                    "given it clashes with the probe device on every host",
                    f"end the range at {PROBE_VNI - 1}")]
