"""Availability-zone aware: honour ``availability_zone_hints`` and spread copies over zones.

With hints, only agents in the hinted zones are candidates (as Neutron does); without
hints every zone is allowed. Each copy goes to the allowed zone that holds the fewest
copies of the object so far (ties: the zone whose least loaded agent is least loaded), and
within a zone to the least loaded agent.
"""

from __future__ import annotations

from collections import Counter

from ryu_sched.scheduling.base import Candidate, LoadPool, Placement, SchedulerDriver


class AZAwareScheduler(SchedulerDriver):
    name = "az_aware"

    def can_host(self, placement: Placement, candidate: Candidate) -> bool:
        if placement.availability_zone_hints and (
                candidate.availability_zone not in placement.availability_zone_hints):
            return False
        return super().can_host(placement, candidate)

    def choose(self, placement: Placement, pool: LoadPool) -> list[str]:
        zones = self._zones(pool)
        if placement.availability_zone_hints:
            zones = [z for z in zones if z in placement.availability_zone_hints]
        copies = Counter(placement.hosted_zones)
        exclude = set(placement.exclude)
        chosen: list[str] = []
        ext = placement.needs_external_port
        while len(chosen) < placement.count:
            best: tuple[int, int, str] | None = None
            for zone in zones:
                picked = pool.least_loaded(
                    ("az", zone, ext),
                    lambda c, z=zone: c.availability_zone == z and self.can_host(placement, c),
                    1, exclude)
                if not picked:
                    continue
                rank = (copies[zone], pool.load[picked[0]], picked[0])
                if best is None or rank < best:
                    best = rank
                    best_zone = zone
            if best is None:
                break
            chosen.append(best[2])
            exclude.add(best[2])
            copies[best_zone] += 1
        return chosen

    @staticmethod
    def _zones(pool: LoadPool) -> list[str | None]:
        zones = getattr(pool, "_az_zones", None)
        if zones is None:
            zones = sorted({c.availability_zone for c in pool.candidates.values()},
                           key=lambda z: (z is None, z or ""))
            pool._az_zones = zones  # type: ignore[attr-defined]
        return zones
