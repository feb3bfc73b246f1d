"""Leadership among several controllers sharing one PostgreSQL database: a lease with
terms (epochs) on the database's clock, a fence on writes, an elector green thread, and
the role components see (sole or elected)."""

from ryu_sched.leadership.elector import LeaderElector, default_holder_id
from ryu_sched.leadership.lease import (
    DEFAULT_LEASE_NAME,
    FencedOut,
    Lease,
    LeaseHolder,
    LeaseState,
    fenced_write,
)
from ryu_sched.leadership.role import ElectedLeadership, Leadership, RoleView, SoleLeadership

__all__ = ["DEFAULT_LEASE_NAME", "ElectedLeadership", "FencedOut", "LeaderElector", "Leadership",
           "Lease", "LeaseHolder", "LeaseState", "RoleView", "SoleLeadership",
           "default_holder_id", "fenced_write"]
