"""Scheduler drivers: filter the candidate agents, then choose among them.

``get_driver(name)`` returns one of ``chance``, ``least_loaded`` (default) or ``az_aware``.
Drivers are pure: they see :class:`Candidate` snapshots and :class:`Placement` requests,
never the database.
"""

from ryu_sched.scheduling.base import (
    Candidate,
    LoadPool,
    Placement,
    SchedulerDriver,
    meets_requirements,
)
from ryu_sched.scheduling.drivers import DRIVERS, get_driver

__all__ = ["DRIVERS", "Candidate", "LoadPool", "Placement", "SchedulerDriver", "get_driver",
           "meets_requirements"]
