"""Network IP availability, availability zones, service providers and the extension list,
through openstacksdk against the real controller (agents simulated over the real RPC)."""

from __future__ import annotations

from collections.abc import Iterator

import openstack.exceptions as sdk_exc
import pytest

from tests.support.controller import ControllerProcess, wait_until
from tests.support.simagent import DHCP, L3, Fleet, SimAgent

pytestmark = pytest.mark.integration

DOWN = 2


@pytest.fixture(scope="module")
def ctl(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControllerProcess]:
    with ControllerProcess(tmp_path_factory.mktemp("inventory"), {
            "agent_down_time": DOWN, "heartbeat_flush_interval": 0.2}, tokens={
            "admin-token": {"project_id": "admin-project", "role": "admin"},
            "alice-token": {"project_id": "alice", "role": "member"}}) as proc:
        yield proc


@pytest.fixture(scope="module")
def conn(ctl):
    return ctl.sdk("admin-token")


@pytest.fixture(scope="module")
def alice(ctl):
    return ctl.sdk("alice-token")


def test_network_ip_availability_counts_pool_addresses(ctl, conn, alice):
    net = conn.network.create_network(name="avail")
    sub = conn.network.create_subnet(network_id=net.id, cidr="10.40.0.0/28", ip_version=4,
                                     name="s28")
    conn.network.create_subnet(network_id=net.id, cidr="10.40.1.0/29", ip_version=4,
                               allocation_pools=[{"start": "10.40.1.2",
                                                  "end": "10.40.1.4"}])
    for _ in range(3):
        conn.network.create_port(network_id=net.id)
    # An address outside the pools (the gateway) is allocated but not counted.
    conn.network.create_port(network_id=net.id, fixed_ips=[{"subnet_id": sub.id,
                                                            "ip_address": "10.40.0.1"}])
    avail = conn.network.get_network_ip_availability(net.id)
    assert (avail.network_id, avail.network_name) == (net.id, "avail")
    assert (avail.total_ips, avail.used_ips) == (13 + 3, 3)
    by_subnet = {s["subnet_id"]: s for s in avail.subnet_ip_availability}
    assert by_subnet[sub.id] == {"subnet_id": sub.id, "subnet_name": "s28",
                                 "cidr": "10.40.0.0/28", "ip_version": 4, "total_ips": 13,
                                 "used_ips": 3}
    assert net.id in [a.network_id for a in conn.network.network_ip_availabilities()]
    assert [a.network_id for a in conn.network.network_ip_availabilities(
        network_name="avail")] == [net.id]
    assert conn.network.find_network_ip_availability(net.id).network_id == net.id
    with pytest.raises(sdk_exc.ForbiddenException):
        list(alice.network.network_ip_availabilities())
    with pytest.raises(sdk_exc.NotFoundException):
        conn.network.get_network_ip_availability("00000000-0000-4000-8000-000000000000")
    status, _ = ctl.request("GET", "/v2.0/network-ip-availabilities?colour=red",
                            token="admin-token")
    assert status == 400


def test_availability_zones_come_from_the_agents(ctl, alice):
    server = (ctl.host, ctl.rpc_port)
    agents = [SimAgent(server, "h1", DHCP, availability_zone="az1"),
              SimAgent(server, "h2", L3, availability_zone="az1", dpid=2),
              SimAgent(server, "h3", L3, availability_zone="az2", dpid=3),
              SimAgent(server, "h4", DHCP, availability_zone=None)]
    with Fleet(agents, interval=0.3) as fleet:
        def zones():
            return sorted((z.name, z.resource, z.state)
                          for z in alice.network.availability_zones())
        wait_until(lambda: len(zones()) == 3, 10, 0.1, "three zones")
        assert zones() == [("az1", "network", "available"), ("az1", "router", "available"),
                           ("az2", "router", "available")]
        fleet.kill(agents[2])
        wait_until(lambda: ("az2", "router", "unavailable") in zones(), DOWN + 5, 0.1,
                   "az2 unavailable")
        # Neutron's names and those openstacksdk's query mapping sends.
        for query in ("resource=network", "agent_type=network", "agent_type=DHCP%20agent"):
            status, body = ctl.request("GET", f"/v2.0/availability_zones?{query}",
                                       token="alice-token")
            assert (status, body["availability_zones"]) == \
                (200, [{"name": "az1", "resource": "network", "state": "available"}])
        status, body = ctl.request("GET", "/v2.0/availability_zones?availability_zone=az2",
                                   token="alice-token")
        assert [z["name"] for z in body["availability_zones"]] == ["az2"]


def test_service_providers_are_the_two_kinds_of_router(conn):
    assert sorted((p.service_type, p.name, p.is_default)
                  for p in conn.network.service_providers()) == [
        ("L3_ROUTER_NAT", "ha", False), ("L3_ROUTER_NAT", "single_node", False)]


def test_extensions_announce_what_is_implemented(conn):
    aliases = {e.alias for e in conn.network.extensions()}
    assert {"standard-attr-tag", "standard-attr-revisions", "revision-if-match",
            "fip-port-details", "filter-validation", "network-ip-availability",
            "service-type", "availability_zone"} <= aliases
