"""Security groups and allowed address pairs on real Open vSwitch, with real TCP, UDP and ICMP
between VM namespaces and from the internet namespace, configured through the API.

One topology: compute hosts h1, h2 and gateway host g1. Tenant A's net-a 10.0.0.0/24 behind
router r1 (gateway on the external network, hosted on g1). Ports and groups:

====  ====  ===========  ======================================================
vm    host  address      groups
====  ====  ===========  ======================================================
vm1   h1    10.0.0.11    default
vm2   h2    10.0.0.12    default
vm5   h1    10.0.0.15    default
vm3   h1    10.0.0.13    web (tcp 8080 from 0.0.0.0/0); floating IP
vm4   h2    10.0.0.14    db (tcp 5432 from members of app)
====  ====  ===========  ======================================================

Echo servers (TCP and UDP) listen in every VM, so a refused connection is the firewall's
doing, never a closed port's reset.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.lab import CloudLab
from tests.topology import VM, leftovers, netns, require_root_and_ovs, wait_until

pytestmark = pytest.mark.e2e

ECHO, WEB, OTHER, DB = 7, 8080, 9090, 5432
VIP = "10.0.0.100"
#: How long a connection attempt the firewall drops may take to fail.
REFUSED = 1.0


def tcp(ns: str, ip: str, port: int, timeout: float = REFUSED) -> bool:
    """A TCP connection from namespace ``ns`` to ``ip:port`` whose data is echoed back."""
    with netns(ns):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    with sock:
        sock.settimeout(timeout)
        try:
            sock.connect((ip, port))
            sock.sendall(b"hello")
            return sock.recv(64) == b"hello"
        except OSError:
            return False


def udp(ns: str, ip: str, port: int, timeout: float = REFUSED) -> bool:
    with netns(ns):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with sock:
        sock.settimeout(timeout)
        sock.sendto(b"hello", (ip, port))
        try:
            return sock.recvfrom(64)[0] == b"hello"
        except OSError:
            return False


class FirewallCloud:
    def __init__(self, lab: CloudLab) -> None:
        self.lab = lab
        conn = self.conn = lab.conn
        self.h1, self.h2 = lab.add_host("h1"), lab.add_host("h2")
        self.g1 = lab.add_host("g1", gateway=True)
        lab.wait_connected(self.h1, self.h2, self.g1)
        lab.start_l3_agent(self.g1)
        self.ext_net, _ext_subnet = lab.create_external_network()
        self.net, self.subnet = lab.create_tenant_network("tenant-a", "net-a", "10.0.0.0/24")
        self.web = conn.network.create_security_group(name="web", project_id="tenant-a")
        self.web_rule = self.allow(self.web, protocol="tcp", port_range_min=WEB,
                                   port_range_max=WEB, remote_ip_prefix="0.0.0.0/0")
        self.app = conn.network.create_security_group(name="app", project_id="tenant-a")
        self.db = conn.network.create_security_group(name="db", project_id="tenant-a")
        self.allow(self.db, protocol="tcp", port_range_min=DB, port_range_max=DB,
                   remote_group_id=self.app.id)
        self.p1 = lab.create_port(self.net, "10.0.0.11", project_id="tenant-a")
        self.default_id = self.p1.security_group_ids[0]
        self.p2 = lab.create_port(self.net, "10.0.0.12", project_id="tenant-a")
        self.p5 = lab.create_port(self.net, "10.0.0.15", project_id="tenant-a")
        self.p3 = lab.create_port(self.net, "10.0.0.13", project_id="tenant-a",
                                  security_group_ids=[self.web.id])
        self.p4 = lab.create_port(self.net, "10.0.0.14", project_id="tenant-a",
                                  security_group_ids=[self.db.id])
        self.vm1 = self._vm(self.h1, "vm1", self.p1)
        self.vm2 = self._vm(self.h2, "vm2", self.p2)
        self.vm5 = self._vm(self.h1, "vm5", self.p5)
        self.vm3 = self._vm(self.h1, "vm3", self.p3)
        self.vm4 = self._vm(self.h2, "vm4", self.p4)
        for vm in (self.vm1, self.vm2, self.vm5):
            lab.topo.start_server(vm, ECHO)
        lab.topo.start_server(self.vm3, WEB)
        lab.topo.start_server(self.vm3, OTHER)
        lab.topo.start_server(self.vm4, DB)
        lab.topo.internet.start_server(ECHO)
        self.router = conn.network.create_router(
            name="r1", project_id="tenant-a",
            external_gateway_info={"network_id": self.ext_net.id})
        conn.network.add_interface_to_router(self.router, subnet_id=self.subnet.id)
        self.fip = conn.network.create_ip(floating_network_id=self.ext_net.id,
                                          port_id=self.p3.id, project_id="tenant-a")
        wait_until(lambda: lab.router_host(self.router.id), 15, 0.1, "router scheduled")
        wait_until(lambda: self.vm1.ping("10.0.0.12"), 30, 0.2, "vm1 -> vm2")

    def allow(self, group: Any, **attrs: Any) -> Any:
        return self.conn.network.create_security_group_rule(
            security_group_id=group.id, direction="ingress", **attrs)

    def _vm(self, host: Any, name: str, port: Any) -> VM:
        ip = port.fixed_ips[0]["ip_address"]
        return self.lab.topo.add_vm(host, name, port.id, port.mac_address, f"{ip}/24",
                                    "10.0.0.1")


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FirewallCloud]:
    require_root_and_ovs()
    lab = CloudLab(tmp_path_factory.mktemp("secgroups"))
    with lab:
        yield FirewallCloud(lab)
    assert leftovers(lab.prefix) == []


def test_default_group_members_reach_each_other_and_nobody_else_gets_in(
        cloud: FirewallCloud) -> None:
    vm1, vm2, vm3, vm4, vm5 = cloud.vm1, cloud.vm2, cloud.vm3, cloud.vm4, cloud.vm5
    assert vm1.ping("10.0.0.12") and vm2.ping("10.0.0.11")          # across hosts
    assert tcp(vm2.ns, "10.0.0.11", ECHO) and udp(vm1.ns, "10.0.0.12", ECHO)
    assert tcp(vm5.ns, "10.0.0.11", ECHO)                            # on one host
    # Ports outside the default group open nothing towards its members ...
    assert not vm3.ping("10.0.0.11", timeout=REFUSED)
    assert not tcp(vm3.ns, "10.0.0.11", ECHO) and not udp(vm3.ns, "10.0.0.11", ECHO)
    assert not tcp(vm4.ns, "10.0.0.12", ECHO) and not vm4.ping("10.0.0.12", timeout=REFUSED)
    # ... nor does the internet: the router forwards, the firewall drops.
    internet = cloud.lab.topo.internet
    assert not tcp(internet.ns, "10.0.0.11", ECHO)


def test_replies_to_outbound_connections_come_back(cloud: FirewallCloud) -> None:
    # vm3's ingress allows only tcp 8080: the replies pass because vm3 opened the connection.
    internet_ip = cloud.lab.topo.internet_ip
    assert wait_until(lambda: tcp(cloud.vm3.ns, internet_ip, ECHO), 20, 0.2,
                      "vm3 -> internet over SNAT")
    assert udp(cloud.vm3.ns, internet_ip, ECHO) and cloud.vm3.ping(internet_ip)
    assert not tcp(cloud.vm3.ns, "10.0.0.11", ECHO)   # (vm1 admits only its group)
    assert cloud.vm1.ping(internet_ip) and tcp(cloud.vm1.ns, "10.0.0.13", WEB)


def test_tcp_8080_from_anywhere_opens_that_port_only_also_through_the_floating_ip(
        cloud: FirewallCloud) -> None:
    vm1, fip = cloud.vm1, cloud.fip.floating_ip_address
    assert tcp(vm1.ns, "10.0.0.13", WEB)
    assert not tcp(vm1.ns, "10.0.0.13", OTHER)
    assert not vm1.ping("10.0.0.13", timeout=REFUSED)
    internet = cloud.lab.topo.internet
    assert wait_until(lambda: tcp(internet.ns, fip, WEB), 20, 0.2, "internet -> fip:8080")
    assert not tcp(internet.ns, fip, OTHER)
    assert not internet.ping(fip, timeout=REFUSED)


def test_a_remote_group_rule_admits_members_only_as_long_as_they_are(
        cloud: FirewallCloud) -> None:
    conn, vm1, vm2 = cloud.conn, cloud.vm1, cloud.vm2
    assert not tcp(vm1.ns, "10.0.0.14", DB)
    conn.network.update_port(cloud.p1, security_group_ids=[cloud.default_id, cloud.app.id])
    wait_until(lambda: tcp(vm1.ns, "10.0.0.14", DB), 10, 0.1, "vm1 joined app: db opens")
    assert not tcp(vm2.ns, "10.0.0.14", DB)
    conn.network.update_port(cloud.p1, security_group_ids=[cloud.default_id])
    wait_until(lambda: not tcp(vm1.ns, "10.0.0.14", DB), 10, 0.1, "vm1 left app: db closes")


def test_removing_a_rule_cuts_the_established_connection_it_allowed(
        cloud: FirewallCloud) -> None:
    with netns(cloud.vm1.ns):
        held = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    with held:
        held.settimeout(2.0)
        held.connect(("10.0.0.13", WEB))
        held.sendall(b"before")
        assert held.recv(64) == b"before"
        cloud.conn.network.delete_security_group_rule(cloud.web_rule)
        wait_until(lambda: not tcp(cloud.vm1.ns, "10.0.0.13", WEB), 10, 0.1,
                   "new connections to 8080 refused")
        held.settimeout(REFUSED)
        held.sendall(b"after")
        with pytest.raises(TimeoutError):  # the segment is dropped: no echo, no reset
            held.recv(64)
        # vm3's zone holds the connection, marked dead: its replies are dropped too
        dead = [line for line in cloud.h1.appctl("dpctl/dump-conntrack").splitlines()
                if f"dport={WEB}" in line and "mark=1" in line]
        assert dead
    cloud.web_rule = cloud.allow(cloud.web, protocol="tcp", port_range_min=WEB,
                                 port_range_max=WEB, remote_ip_prefix="0.0.0.0/0")
    wait_until(lambda: tcp(cloud.vm1.ns, "10.0.0.13", WEB), 10, 0.1, "8080 open again")


def test_an_address_pair_lets_a_vip_move_between_two_vms(cloud: FirewallCloud) -> None:
    conn, vm1, vm2, client = cloud.conn, cloud.vm1, cloud.vm2, cloud.vm5

    def answered_by(vm: VM) -> bool:
        client.exec(["ip", "neigh", "flush", "dev", "eth0"])
        if not client.ping(VIP, timeout=REFUSED):
            return False
        neigh = client.exec(["ip", "neigh", "show", VIP, "dev", "eth0"]).stdout
        return vm.mac in neigh

    vm1.exec(["ip", "addr", "add", f"{VIP}/24", "dev", "eth0"])
    try:
        assert not client.ping(VIP, timeout=REFUSED)   # no pair: the VIP is dropped
        for port in (cloud.p1, cloud.p2):
            conn.network.update_port(port, allowed_address_pairs=[{"ip_address": VIP}])
        wait_until(lambda: answered_by(vm1), 10, 0.1, "vm1 answers for the VIP")
        vm1.exec(["ip", "addr", "del", f"{VIP}/24", "dev", "eth0"])
        vm2.exec(["ip", "addr", "add", f"{VIP}/24", "dev", "eth0"])
        wait_until(lambda: answered_by(vm2), 10, 0.1, "the VIP moved to vm2")
        conn.network.update_port(cloud.p2, allowed_address_pairs=[])
        wait_until(lambda: not answered_by(vm2), 10, 0.1, "vm2 without the pair: dropped")
    finally:
        for vm in (vm1, vm2):
            vm.exec(["ip", "addr", "del", f"{VIP}/24", "dev", "eth0"], check=False)
        conn.network.update_port(cloud.p1, allowed_address_pairs=[])


def test_a_controller_restart_sends_no_flow_mods_to_firewalled_switches(
        cloud: FirewallCloud) -> None:
    lab = cloud.lab
    assert lab.controller is not None
    hosts = (cloud.h1, cloud.h2, cloud.g1)
    # the last change (vm1's address pair gone) is on the switch: nothing is pending
    wait_until(lambda: not any(VIP in f for f in cloud.h1.dump_flows()), 10, 0.1,
               "the programmer caught up")
    before = {h.ns: sorted(h.dump_flows()) for h in hosts}
    assert any("conjunction(" in f for f in before[cloud.h1.ns])
    offset = len(lab.controller.log_text())
    lab.controller.restart()
    lab.wait_connected(*hosts)

    def synced(host: Any) -> bool:
        log = lab.controller.log_text()[offset:]
        return any(f"switch {host.dpid:016x}: {what}" in log
                   for what in ("in sync", "flow-mods"))

    wait_until(lambda: all(synced(h) for h in hosts), 20, 0.1, "every switch synced")
    log = lab.controller.log_text()[offset:]
    assert "flow-mods" not in log
    assert all(f"switch {h.dpid:016x}: in sync, nothing sent" in log for h in hosts)
    assert {h.ns: sorted(h.dump_flows()) for h in hosts} == before
    assert tcp(cloud.vm1.ns, "10.0.0.13", WEB)
