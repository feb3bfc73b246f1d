"""Several controllers on one PostgreSQL database: the event relay between them and the
table it uses for large events. The leader lease is in :mod:`ryu_sched.leadership`."""

from ryu_sched.cluster.relay import CHANNEL, EventRelay, RelayStats

__all__ = ["CHANNEL", "EventRelay", "RelayStats"]
