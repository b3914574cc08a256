"""The QKD network: topologies, link physics, key pools and relay, Byzantine nodes, simulation."""
