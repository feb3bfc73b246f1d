"""Port status without switches: what a DHCP agent reports of its port, and what the
controller decides with no switch connected (nothing: ports stay DOWN)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.controller import ControllerProcess, wait_until
from tests.support.simagent import DHCP, Fleet, RpcCallError, SimAgent

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def ctl(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControllerProcess]:
    with ControllerProcess(tmp_path_factory.mktemp("portstatus"), {
            "agent_down_time": 3, "heartbeat_flush_interval": 0.2}) as proc:
        yield proc


def test_a_dhcp_port_is_active_once_its_agent_serves(ctl):
    conn = ctl.sdk()
    net = conn.network.create_network(name="served")
    conn.network.create_subnet(network_id=net.id, cidr="10.80.0.0/24", ip_version=4)
    agent = SimAgent((ctl.host, ctl.rpc_port), "dhcp-host", DHCP)
    with Fleet([agent], interval=0.3):
        wait_until(lambda: net.id in agent.call("get_hosted_networks", "dhcp-host"), 10,
                   0.1, "network scheduled on the DHCP agent")
        port = agent.call("create_dhcp_port", net.id, "dhcp-host")
        assert conn.network.get_port(port["id"]).status == "DOWN"
        with pytest.raises(RpcCallError):
            agent.call("update_dhcp_port", port["id"], {"status": "BUILD"})
        updated = agent.call("update_dhcp_port", port["id"], {"status": "ACTIVE"})
        assert updated["status"] == "ACTIVE"
        seen = conn.network.get_port(port["id"])
        assert seen.status == "ACTIVE" and seen.revision_number == 2


def test_without_switches_vm_and_router_ports_stay_down(ctl):
    conn = ctl.sdk()
    net = conn.network.create_network(name="unplugged")
    sub = conn.network.create_subnet(network_id=net.id, cidr="10.81.0.0/24", ip_version=4)
    router = conn.network.create_router(name="unhosted")
    conn.network.add_interface_to_router(router, subnet_id=sub.id)
    port = conn.network.create_port(network_id=net.id, device_owner="compute:nova")
    assert port.status == "DOWN"
    assert [p.status for p in conn.network.ports(device_id=router.id)] == ["DOWN"]
