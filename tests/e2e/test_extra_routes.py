"""Extra routes on real Open vSwitch: a router sends a destination to a VM that routes.

Topology: compute hosts h1, h2 and gateway host g1 (its simulated L3 agent hosts router r1).
Tenant A: net-a 10.0.0.0/24 with vm1 (h1), net-c 10.1.0.0/24 with vmr (h2), both on r1. vmr
forwards (``ip_forward=1``, port security off, as a VM that routes must have) to a second
namespace behind it, 10.99.0.0/24 (vmr 10.99.0.1, behind 10.99.0.5), which the cloud knows
nothing about. With the route ``10.99.0.0/24 via 10.1.0.14`` vm1 reaches it; without, it
does not. Also the port statuses the data plane reports here: VM ports ACTIVE once their
switch is programmed, router interfaces ACTIVE once the router's switch is, DOWN when a tap
leaves.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.lab import CloudLab
from tests.topology import VM, leftovers, require_root_and_ovs, wait_until

pytestmark = pytest.mark.e2e

BEHIND_CIDR = "10.99.0.0/24"
BEHIND_IP = "10.99.0.5"


class RoutedCloud:
    def __init__(self, lab: CloudLab) -> None:
        self.lab = lab
        conn = lab.conn
        self.h1 = lab.add_host("h1")
        self.h2 = lab.add_host("h2")
        self.g1 = lab.add_host("g1", gateway=True)
        lab.wait_connected(self.h1, self.h2, self.g1)
        lab.start_l3_agent(self.g1)
        self.net_a, self.sub_a = lab.create_tenant_network("tenant-a", "net-a", "10.0.0.0/24")
        self.net_c, self.sub_c = lab.create_tenant_network("tenant-a", "net-c", "10.1.0.0/24")
        self.p1 = lab.create_port(self.net_a, "10.0.0.11", project_id="tenant-a")
        self.pr = lab.create_port(self.net_c, "10.1.0.14", project_id="tenant-a",
                                  port_security_enabled=False)
        self.vm1 = self._vm(self.h1, "vm1", self.p1, "10.0.0.1")
        self.vmr = self._vm(self.h2, "vmr", self.pr, "10.1.0.1")
        # the network behind vmr
        topo = lab.topo
        self.behind = topo.add_namespace("behind")
        topo.veth(self.vmr.ns, "eth1", self.behind, "eth0")
        self.vmr.exec(["ip", "addr", "add", "10.99.0.1/24", "dev", "eth1"])
        self.vmr.exec(["sysctl", "-qw", "net.ipv4.ip_forward=1"])
        topo.exec(self.behind, ["ip", "addr", "add", f"{BEHIND_IP}/24", "dev", "eth0"])
        topo.exec(self.behind, ["ip", "link", "set", "lo", "up"])
        topo.exec(self.behind, ["ip", "route", "add", "default", "via", "10.99.0.1"])
        self.router = conn.network.create_router(name="r1", project_id="tenant-a")
        conn.network.add_interface_to_router(self.router, subnet_id=self.sub_a.id)
        conn.network.add_interface_to_router(self.router, subnet_id=self.sub_c.id)
        wait_until(lambda: lab.router_host(self.router.id), 15, 0.1, "router scheduled")
        wait_until(lambda: self.vm1.ping("10.1.0.14"), 30, 0.2, "vm1 -> vmr through r1")

    def _vm(self, host: Any, name: str, port: Any, gateway: str) -> VM:
        ip = port.fixed_ips[0]["ip_address"]
        return self.lab.topo.add_vm(host, name, port.id, port.mac_address, f"{ip}/24",
                                    gateway)

    def status(self, port_id: str) -> str:
        return str(self.lab.conn.network.get_port(port_id).status)


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RoutedCloud]:
    require_root_and_ovs()
    workdir: Path = tmp_path_factory.mktemp("extraroutes")
    lab = CloudLab(workdir)
    with lab:
        yield RoutedCloud(lab)
    assert leftovers(lab.prefix) == []


def route(destination: str, nexthop: str) -> dict[str, str]:
    return {"destination": destination, "nexthop": nexthop}


def test_a_route_to_a_network_behind_a_vm_that_routes(cloud: RoutedCloud) -> None:
    conn = cloud.lab.conn
    assert cloud.vmr.ping(BEHIND_IP)                    # vmr itself reaches it, of course
    assert not cloud.vm1.ping(BEHIND_IP, count=2)       # the cloud does not know it yet
    body = {"router": {"routes": [route(BEHIND_CIDR, "10.1.0.14")]}}
    router = conn.network.add_extra_routes_to_router(cloud.router, body=body)
    assert router.routes == [route(BEHIND_CIDR, "10.1.0.14")]
    wait_until(lambda: cloud.vm1.ping(BEHIND_IP), 15, 0.2, "vm1 -> behind vmr")
    assert cloud.vm1.ping(BEHIND_IP, count=3, interval=0.2)
    # the router's flows, on the router's switch only
    flows = [f for f in cloud.g1.dump_flows(50) if "10.99.0.0/24" in f]
    assert len(flows) == 1 and cloud.vmr.mac in flows[0]
    assert not [f for f in cloud.h1.dump_flows(50) if "10.99.0.0/24" in f]
    conn.network.remove_extra_routes_from_router(cloud.router, body=body)
    wait_until(lambda: not cloud.vm1.ping(BEHIND_IP), 15, 0.2, "route gone")


def test_a_default_route_through_the_vm(cloud: RoutedCloud) -> None:
    conn = cloud.lab.conn
    conn.network.update_router(cloud.router, routes=[route("0.0.0.0/0", "10.1.0.14")])
    wait_until(lambda: cloud.vm1.ping(BEHIND_IP), 15, 0.2, "vm1 -> behind by default")
    conn.network.update_router(cloud.router, routes=[])
    wait_until(lambda: not cloud.vm1.ping(BEHIND_IP), 15, 0.2, "default route gone")


def test_port_status_follows_the_data_plane(cloud: RoutedCloud) -> None:
    conn = cloud.lab.conn
    wait_until(lambda: cloud.status(cloud.p1.id) == "ACTIVE", 15, 0.1, "vm1's port ACTIVE")
    interfaces = [p for p in conn.network.ports(device_id=cloud.router.id)]
    assert len(interfaces) == 2
    for port in interfaces:
        wait_until(lambda p=port: cloud.status(p.id) == "ACTIVE", 15, 0.1,
                   f"router interface {port.id} ACTIVE")
    # A port whose tap appears later: DOWN until its switch is programmed, then ACTIVE.
    late = cloud.lab.create_port(cloud.net_a, "10.0.0.21", project_id="tenant-a")
    assert late.status == "DOWN"
    vm = cloud.lab.topo.add_vm(cloud.h2, "late", late.id, late.mac_address, "10.0.0.21/24")
    wait_until(lambda: cloud.status(late.id) == "ACTIVE", 15, 0.1, "late port ACTIVE")
    assert vm.ping("10.0.0.11")
    cloud.h2.vsctl("del-port", "br-int", vm.tap)
    wait_until(lambda: cloud.status(late.id) == "DOWN", 15, 0.1, "late port DOWN")
