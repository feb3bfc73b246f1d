"""Several real controller processes on one PostgreSQL database.

``ControllerCluster`` starts ``n`` :class:`ControllerProcess` with the same options and the
database URL, and answers who leads (each controller's ``/v2.0/agent-scheduler/stats``
reports its own ``leadership``). A controller that does not answer (killed, stopped by
SIGSTOP) is simply not counted.
"""

from __future__ import annotations

import signal
import urllib.error
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.support.controller import ControllerProcess, wait_until


class ControllerCluster:
    def __init__(self, workdir: Path, url: str, n: int = 3,
                 options: dict[str, Any] | None = None,
                 factory: Callable[..., ControllerProcess] = ControllerProcess) -> None:
        self.url = url
        self.options = {"connection": url, **(options or {})}
        self.controllers = [factory(Path(workdir) / f"controller{i}", options=self.options)
                            for i in range(n)]

    def __iter__(self) -> Any:
        return iter(self.controllers)

    def __getitem__(self, index: int) -> ControllerProcess:
        return self.controllers[index]

    def start(self) -> ControllerCluster:
        try:
            for controller in self.controllers:
                controller.start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for controller in self.controllers:
            if controller.proc is not None and controller.alive():
                # a controller stopped by SIGSTOP must run again to handle SIGTERM
                controller.proc.send_signal(signal.SIGCONT)
            controller.stop()

    def __enter__(self) -> ControllerCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- who leads ----------------------------------------------------------------------

    @staticmethod
    def role(controller: ControllerProcess, timeout: float = 2.0) -> dict[str, Any] | None:
        """The controller's own view of its role, or None if it does not answer."""
        if not controller.alive():
            return None
        try:
            status, body = controller.request("GET", "/v2.0/agent-scheduler/stats",
                                              timeout=timeout)
        except (urllib.error.URLError, OSError):
            return None
        if status != 200:
            return None
        return dict(body["stats"]["leadership"])

    def leaders(self, among: list[ControllerProcess] | None = None
                ) -> list[ControllerProcess]:
        candidates = self.controllers if among is None else among
        return [c for c in candidates if (role := self.role(c)) and role["leader"]]

    def wait_leader(self, among: list[ControllerProcess] | None = None,
                    timeout: float = 20.0) -> ControllerProcess:
        """Poll until exactly one of ``among`` (default: all) says it leads."""
        def one() -> ControllerProcess | None:
            found = self.leaders(among)
            return found[0] if len(found) == 1 else None

        return wait_until(one, timeout, 0.1, "exactly one leader")  # type: ignore[no-any-return]

    def followers(self, leader: ControllerProcess) -> list[ControllerProcess]:
        return [c for c in self.controllers if c is not leader and c.alive()]
