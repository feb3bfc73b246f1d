"""The default: the eligible agents hosting the fewest objects of the same kind."""

from __future__ import annotations

from ryu_sched.scheduling.base import LoadPool, Placement, SchedulerDriver


class LeastLoadedScheduler(SchedulerDriver):
    name = "least_loaded"

    def choose(self, placement: Placement, pool: LoadPool) -> list[str]:
        key = ("ext",) if placement.needs_external_port else ("any",)
        return pool.least_loaded(key, lambda c: self.can_host(placement, c),
                                 placement.count, placement.exclude)
