"""ryu-sched: a multi-tenant SDN controller app with an agent registry and scheduler."""

__version__ = "0.1.0"
