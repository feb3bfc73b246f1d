"""Grizzly's scheduler: any eligible agent, at random, blind to load."""

from __future__ import annotations

import random

from ryu_sched.scheduling.base import LoadPool, Placement, SchedulerDriver


class ChanceScheduler(SchedulerDriver):
    name = "chance"

    def __init__(self, rng: random.Random | None = None) -> None:
        self.rng = rng or random.Random()

    def choose(self, placement: Placement, pool: LoadPool) -> list[str]:
        eligible = [c.agent_id for c in self.filter(placement, pool.candidates.values())]
        return self.rng.sample(eligible, min(placement.count, len(eligible)))
