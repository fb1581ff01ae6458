"""The doctor's checks, in the order they run, and the runner.

Three kinds, by what a check needs:

* ``config`` — only the configuration (and the network: it tries what the
  configuration names);
* ``data`` — a read transaction on kaon's database; skipped with a reason
  when the ``database`` check found the database unusable;
* ``host`` — this host, from an agent's configuration; only in a run on the
  host (``kaon doctor``, never ``GET /v2.0/doctor``, which runs on a server).

Checks are independent: each data check gets its own read transaction (a
failed statement aborts a PostgreSQL transaction, and must not take the
others with it), and a check that raises anything unexpected is reported as
not checked, with the exception, rather than ending the run.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from sqlalchemy import Engine

from kaon.config import Config
from kaon.doctor import agent_checks, config_checks, data_checks, host_checks
from kaon.doctor.finding import Finding, Report, Skipped
from kaon.doctor.inputs import CannotCheck, Inputs, NotApplicable

CONFIG, DATA, HOST = "config", "data", "host"


@dataclass(frozen=True)
class Check:
    name: str
    needs: str
    run: Callable[[Inputs], list[Finding]]


CHECKS: tuple[Check, ...] = (
    Check("database", CONFIG, config_checks.database),
    Check("rabbitmq", CONFIG, config_checks.rabbitmq),
    Check("keystone", CONFIG, config_checks.keystone),
    Check("probe_vni", CONFIG, config_checks.probe_vni),
    Check("binding_failed", DATA, data_checks.binding_failed),
    Check("renamed_host", DATA, data_checks.renamed_host),
    Check("active_on_dead_host", DATA, data_checks.active_on_dead_host),
    Check("generation_lag", DATA, data_checks.generation_lag),
    Check("isolated_metadata", DATA, data_checks.isolated_metadata),
    Check("dhcp_port_address", DATA, data_checks.dhcp_port_address),
    Check("dhcp_port_claims", DATA, data_checks.dhcp_port_claims),
    Check("router_gateway", DATA, data_checks.router_gateway),
    Check("tunnels", DATA, agent_checks.tunnels),
    Check("tunnel_mtu", DATA, agent_checks.tunnel_mtu),
    Check("ovsdb_lost", DATA, agent_checks.ovsdb_lost),
    Check("dnsmasq", DATA, agent_checks.dnsmasq),
    Check("mtu", DATA, agent_checks.mtu),
    Check("clock_skew", DATA, agent_checks.clock_skew),
    Check("local_ip", HOST, host_checks.local_ip),
    Check("br_netfilter", HOST, host_checks.br_netfilter),
    Check("ovsdb", HOST, host_checks.ovsdb),
    Check("ovs_bridges", HOST, host_checks.ovs_bridges),
)

Progress = Callable[[str, float], None]  # (check name, seconds it took)


def _one(check: Check, inp: Inputs, report: Report) -> None:
    try:
        found = check.run(inp)
    except NotApplicable as exc:
        report.not_applicable.append(Skipped(check.name, str(exc)))
        return
    except CannotCheck as exc:
        report.not_checked.append(Skipped(check.name, str(exc)))
        return
    except Exception as exc:  # one broken check must not hide the others' findings
        report.not_checked.append(Skipped(check.name, f"the check failed: {type(exc).__name__}: {exc}"))
        return
    report.findings.extend(found)
    if not found:
        report.passed.append(check.name)


def _skip_data(check: Check, report: Report) -> None:
    """No usable database: not applicable if there is none to check here, else not checked."""
    if any(s.check == "database" for s in report.not_applicable):
        report.not_applicable.append(Skipped(check.name, "no database in these files"))
    else:
        report.not_checked.append(Skipped(check.name, "the database is not usable (see the database check)"))


def run(cfg: Config, *, engine: Engine | None = None, kinds: Iterable[str] = (CONFIG, DATA, HOST),
        only: Iterable[str] = (), now: dt.datetime | None = None, progress: Progress | None = None) -> Report:
    """Run the checks of ``kinds`` (``only``: just these names) and collect a report.

    ``engine``: the server's own (the API passes it); otherwise one is made
    from ``[database] connection`` once the ``database`` check passed.
    """
    from kaon.db.engine import make_engine, read_txn
    from kaon.ml2.binding import utcnow

    started = time.monotonic()
    wanted = set(kinds)
    names = set(only)
    report = Report()
    inp = Inputs(cfg=cfg, now=now or utcnow())
    made = None
    for check in CHECKS:
        if check.needs not in wanted or (names and check.name not in names):
            continue
        t0 = time.monotonic()
        if check.needs == DATA:
            if engine is None and "database" not in report.passed:
                _skip_data(check, report)
                continue
            if engine is None:
                engine = made = make_engine(cfg.database.connection)
            with read_txn(engine) as conn:
                _one(check, replace(inp, conn=conn), report)
        else:
            _one(check, inp, report)
        if progress:
            progress(check.name, time.monotonic() - t0)
    if made is not None:
        made.dispose()
    report.seconds = time.monotonic() - started
    return report
