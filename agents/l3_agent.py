"""``ryu-sched-l3-agent``: makes its switch a candidate for routers.

The controller installs a router's flows on the switch whose L3 agent hosts it, so the agent's
work is to report what the controller cannot see: the bridge's ``datapath_id``, the name of the
external uplink (``external_port``) and whether that link is up. A gateway whose external link
is down is no candidate for routers, and the registry moves its routers away.

It also holds the gateway lease (:mod:`.gateway_lease`): while the leading controller does not
renew it, the agent deletes its bridge's ROUTER_ACTIVE flows, so that a gateway cut off from
the controller stops answering for routers that may be active elsewhere by now.
"""

from __future__ import annotations

import logging
import sys
import threading
from typing import Any

from ryu_sched.shared.vocabulary import COOKIE_KIND_MASK, ROUTER_ACTIVE_COOKIE, AgentType

from .base import AgentBase, setup_logging
from .config import AgentSettings, load_settings
from .gateway_lease import GatewayFence, fence_command
from .openflow_fence import OpenFlowFence
from .rpc_client import lease_client

LOG = logging.getLogger(__name__)


class L3Agent(AgentBase):
    agent_type = AgentType.L3
    binary = "ryu-sched-l3-agent"
    topic = "l3_agent"

    def __init__(self, settings: AgentSettings) -> None:
        super().__init__(settings)
        self.routers: list[str] = []
        self.last_link_up: bool | None = None
        self.gateway: GatewayFence | None = None
        if settings.fence_timeout > 0:
            self.fence = OpenFlowFence(self.ovs.bridge_socket.removeprefix("unix:"),
                                       ROUTER_ACTIVE_COOKIE, COOKIE_KIND_MASK,
                                       fallback=fence_command(self.ovs.del_flows))
            self.gateway = GatewayFence(
                settings.host, lease_client(settings), self.fence,
                settings.fence_interval, settings.fence_timeout, self.stopping,
                prepare=self.fence.connect)

    def extra_threads(self) -> list[threading.Thread]:
        return self.gateway.threads() if self.gateway is not None else []

    def closing(self) -> None:
        if self.gateway is not None:
            self.gateway.client.close()
            self.fence.close()

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
