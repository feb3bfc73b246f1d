"""``ryu-sched-l3-agent``: makes its switch a candidate for routers.

The controller installs a router's flows on the switch whose L3 agent hosts it, so the agent's
work is to report what the controller cannot see: the bridge's ``datapath_id``, the name of the
external uplink (``external_port``) and whether that link is up. A gateway whose external link
is down is no candidate for routers, and the registry moves its routers away.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from ryu_sched.shared.vocabulary import AgentType

from .base import AgentBase, setup_logging
from .config import load_settings

LOG = logging.getLogger(__name__)


class L3Agent(AgentBase):
    agent_type = AgentType.L3
    binary = "ryu-sched-l3-agent"
    topic = "l3_agent"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.routers: list[str] = []
        self.last_link_up: bool | None = None

    def configurations(self) -> dict[str, Any]:
        link_up = self.ovs.link_up(self.settings.external_port)
        if link_up != self.last_link_up:
            LOG.info("external port %s is %s", self.settings.external_port,
                     "up" if link_up else "down")
            self.last_link_up = link_up
        return {"external_port": self.settings.external_port, "external_link_up": link_up,
                "routers": len(self.routers)}

    def sync(self) -> None:
        self.routers = list(self.rpc.call("get_hosted_routers", self.settings.host))
        LOG.info("hosting %d routers", len(self.routers))


def main(argv: list[str] | None = None) -> None:
    setup_logging()
    settings = load_settings(sys.argv[1:] if argv is None else argv,
                             prog="ryu-sched-l3-agent")
    L3Agent(settings).run()


if __name__ == "__main__":
    main()
