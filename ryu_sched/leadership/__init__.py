"""Leadership among several controllers sharing one PostgreSQL database: a lease with
terms (epochs) on the database's clock, a fence on writes, and an elector green thread."""

from ryu_sched.leadership.elector import LeaderElector, default_holder_id
from ryu_sched.leadership.lease import (
    DEFAULT_LEASE_NAME,
    FencedOut,
    Lease,
    LeaseHolder,
    LeaseState,
    fenced_write,
)

__all__ = ["DEFAULT_LEASE_NAME", "FencedOut", "LeaderElector", "Lease", "LeaseHolder",
           "LeaseState", "default_holder_id", "fenced_write"]
