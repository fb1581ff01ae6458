"""Layer 3: routers, their interfaces, floating IPs, L3 port hosts, service providers."""
