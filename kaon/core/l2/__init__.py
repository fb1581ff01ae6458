"""Layer 2: networks, subnets, IPAM, ports (the port pipeline, rows, rendering)."""
