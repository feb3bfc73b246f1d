"""Driver registry: configuration names to classes."""

from __future__ import annotations

from ryu_sched.scheduling.az_aware import AZAwareScheduler
from ryu_sched.scheduling.base import SchedulerDriver
from ryu_sched.scheduling.chance import ChanceScheduler
from ryu_sched.scheduling.least_loaded import LeastLoadedScheduler

DRIVERS: dict[str, type[SchedulerDriver]] = {
    "chance": ChanceScheduler,
    "least_loaded": LeastLoadedScheduler,
    "az_aware": AZAwareScheduler,
}


def get_driver(name: str) -> SchedulerDriver:
    try:
        return DRIVERS[name]()
    except KeyError:
        raise ValueError(f"unknown scheduler driver {name!r}; "
                         f"choose one of {sorted(DRIVERS)}") from None
