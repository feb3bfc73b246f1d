"""An authenticated agent (its connection carries ``peer_identities`` from its TLS client
certificate) speaks only for its own host and sees only what that host's agents host."""

from __future__ import annotations

from typing import Any

import pytest

from ryu_sched.registry.agent_access import NotAuthorized
from ryu_sched.registry.agent_rpc import AgentRpc
from ryu_sched.resources.agent_scheduler import DhcpPorts
from ryu_sched.rpc.protocol import NotFound
from tests.unit.registry.world import DHCP, L3, NETWORK, ROUTER, Conn, World


def as_host(*names: str) -> Conn:
    return Conn(peer_identities=frozenset(names))


class Lab:
    """d1, d2: DHCP agents; g1: an L3 agent. net1 on d1, net2 on d2, router r1 on g1."""

    def __init__(self) -> None:
        self.w = World(network_auto_schedule=False, router_auto_schedule=False)
        self.rpc = AgentRpc(self.w.reg, DhcpPorts(self.w.services))
        self.methods = self.rpc.methods()
        self.d1, self.d2 = (self.w.beat(h)["agent_id"] for h in ("d1", "d2"))
        self.g1 = self.w.beat("g1", L3)["agent_id"]
        self.w.reg.flush()
        self.net1, self.net2 = self.w.network(), self.w.network()
        self.r1 = self.w.router()
        self.w.reg.bind(NETWORK, self.net1, self.d1)
        self.w.reg.bind(NETWORK, self.net2, self.d2)
        self.w.reg.bind(ROUTER, self.r1, self.g1)

    def call(self, conn: Any, method: str, *params: Any) -> Any:
        return self.methods[method](conn, list(params))

    def state(self, host: str, agent_type: str = DHCP) -> dict[str, Any]:
        return {"agent_type": agent_type, "host": host, "configurations": {}}


@pytest.fixture
def lab() -> Lab:
    return Lab()


def test_report_state_only_for_a_host_of_the_certificate(lab):
    with pytest.raises(NotAuthorized):
        lab.call(as_host("d1"), "report_state", lab.state("d2"))
    with pytest.raises(NotAuthorized):
        lab.call(as_host("d1"), "report_state", lab.state("intruder"))
    with pytest.raises(NotAuthorized):       # not even a string: refused, not a crash
        lab.call(as_host("d1"), "report_state", {**lab.state("d1"), "host": ["d1"]})
    assert lab.w.reg.agents.lookup(DHCP, "intruder") is None
    assert lab.call(as_host("d1"), "report_state", lab.state("d1"))["status"] == "alive"
    # one certificate may name several hosts (e.g. a DHCP and an L3 agent on one machine)
    assert lab.call(as_host("d1", "g1"), "report_state", lab.state("g1", L3))["agent_id"] == \
        lab.g1
    # insecure mode (no TLS): no identities, nothing is checked
    assert lab.call(Conn(), "report_state", lab.state("anyone"))["status"] == "registered"
    assert lab.rpc.access.refused == 3


def test_hosted_lists_only_for_its_own_host(lab):
    assert lab.call(as_host("d1"), "get_hosted_networks", "d1") == [lab.net1]
    with pytest.raises(NotAuthorized):
        lab.call(as_host("d1"), "get_hosted_networks", "d2")
    with pytest.raises(NotAuthorized):
        lab.call(as_host("d1"), "get_hosted_routers", "g1")
    assert lab.call(as_host("g1"), "get_hosted_routers", "g1") == [lab.r1]
    assert lab.call(Conn(), "get_hosted_networks", "d2") == [lab.net2]


def test_network_info_only_of_networks_its_dhcp_agent_hosts(lab):
    info = lab.call(as_host("d1"), "get_network_info", lab.net1)
    assert info["id"] == lab.net1 and info["dhcp_agents"][0]["host"] == "d1"
    for conn, net in ((as_host("d1"), lab.net2), (as_host("d2"), lab.net1),
                      (as_host("g1"), lab.net1), (as_host("d1"), "no-such-network")):
        with pytest.raises(NotAuthorized):
            lab.call(conn, "get_network_info", net)
    with pytest.raises(NotFound):   # insecure mode still says what does not exist
        lab.call(Conn(), "get_network_info", "no-such-network")
    # the network moves to d2: d1 loses access at once
    lab.w.reg.unbind(NETWORK, lab.net1, lab.d1)
    with pytest.raises(NotAuthorized):
        lab.call(as_host("d1"), "get_network_info", lab.net1)


def test_router_info_only_of_its_own_routers(lab):
    assert lab.call(as_host("g1"), "get_router_info", lab.r1)["id"] == lab.r1
    with pytest.raises(NotAuthorized):
        lab.call(as_host("d1"), "get_router_info", lab.r1)


def test_dhcp_ports_only_its_own_of_networks_it_hosts(lab):
    port = lab.call(as_host("d1"), "create_dhcp_port", lab.net1, "d1")
    assert port["device_id"] == f"dhcp-d1-{lab.net1}"
    for conn, net, host in ((as_host("d1"), lab.net1, "d2"),    # another host's port
                            (as_host("d1"), lab.net2, "d1"),    # a network it does not host
                            (as_host("d2"), lab.net1, "d2")):
        with pytest.raises(NotAuthorized):
            lab.call(conn, "create_dhcp_port", net, host)
    updated = lab.call(as_host("d1"), "update_dhcp_port", port["id"], {"name": "mine"})
    assert updated["name"] == "mine"
    with pytest.raises(NotAuthorized):
        lab.call(as_host("d2"), "update_dhcp_port", port["id"], {"name": "stolen"})
    for attrs in ({"binding:host_id": "d2"}, {"device_id": f"dhcp-d2-{lab.net1}"}):
        with pytest.raises(NotAuthorized):
            lab.call(as_host("d1"), "update_dhcp_port", port["id"], attrs)
    other = lab.call(Conn(), "create_dhcp_port", lab.net2, "d2")   # insecure: allowed
    with pytest.raises(NotAuthorized):
        lab.call(as_host("d1"), "update_dhcp_port", other["id"], {"name": "x"})
