"""The component registry: agents, heartbeats, scheduling, bindings and failover."""
