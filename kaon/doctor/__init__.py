"""``kaon doctor``: named causes and fixes instead of hours of tcpdump.

* :mod:`kaon.doctor.finding` — a :class:`Finding` (one line: what is wrong,
  the evidence, the fix) and the :class:`Report` of a run (its exit code);
* :mod:`kaon.doctor.registry` — the checks, one small function each, and the
  runner that gives each what it needs (the configuration, a read
  transaction, this host) and keeps one check's failure from stopping others;
* :mod:`kaon.doctor.config_checks` — the server's configuration reaches its
  database, its broker and its Keystone;
* :mod:`kaon.doctor.data_checks` — what the stored state says is wrong
  (through :mod:`kaon.core.agents.diagnostics`, no SQL here);
* :mod:`kaon.doctor.agent_checks` — what the agents report of themselves
  (VXLAN probes to their peers, dnsmasq processes, their clocks);
* :mod:`kaon.doctor.host_checks` — this host, from an agent's configuration
  (``local_ip``, br_netfilter, OVS bridges).

The user's page is docs/doctor.md; the design notes docs/design/doctor.md.
"""
