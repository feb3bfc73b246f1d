"""Registry component wiring (placeholder until the registry lands)."""

from __future__ import annotations

from ryu_sched.services import Services


class RegistryComponent:
    def __init__(self, services: Services) -> None:
        self.services = services

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass
