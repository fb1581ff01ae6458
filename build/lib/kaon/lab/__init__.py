"""``kaon lab``: simulated hosts, VMs and an "outside" network made of network namespaces.

:class:`Lab` is the Python API (the ``kaon lab`` command and the fullstack
tests drive it); docs/lab.md describes the topology.
"""

from kaon.lab.lab import DEFAULT_PREFIX, Lab, LabError

__all__ = ["DEFAULT_PREFIX", "Lab", "LabError"]
