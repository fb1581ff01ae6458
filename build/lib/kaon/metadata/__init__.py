"""kaon's own metadata service: what Nova's metadata API answers, from kaon's state.

For the lab and for clouds without Nova. The metadata proxies
(kaon.agent.metadata_proxy) forward a VM's request here with Neutron's
headers; ``service`` checks the signature and answers from the database;
``server`` serves it over HTTP (``kaon metadata``, or ``kaon server`` /
``kaon up`` with ``[metadata] serve = true``).
"""
