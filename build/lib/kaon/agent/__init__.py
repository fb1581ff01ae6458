"""The host agent: fetch this host's intent, reconcile the kernel, report back.

``config`` reads Neutron's Linux bridge agent options; ``l2_plan`` turns an
intent and what the kernel has into device actions (pure); ``l2_apply``
runs them; ``runtime`` ties the bus, the timers and the link watcher
together.
"""
