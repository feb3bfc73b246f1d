"""The data plane on real Open vSwitch: isolation, port security, routing, SNAT, floating IPs,
router moves and a controller restart, with VMs as namespaces and real pings.

Topology: compute hosts h1, h2; gateway hosts g1, g2 (ext0 to the "internet" namespace).
Tenant A: net-a 10.0.0.0/24 (vm1 on h1, vm2 on h2), net-c 10.1.0.0/24 (vm4 on h2), both on
router r1 with a gateway to the external network. Tenant B: net-b 10.0.0.0/24 (overlapping),
vm3 on h1. Routers are hosted by simulated L3 agents that report the gateway hosts' datapath
ids; the controller places each router's flows on its agent's switch.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.lab import CloudLab
from tests.topology import VM, leftovers, require_root_and_ovs, wait_until

pytestmark = pytest.mark.e2e


class DataplaneCloud:
    def __init__(self, lab: CloudLab) -> None:
        self.lab = lab
        conn = lab.conn
        self.h1 = lab.add_host("h1")
        self.h2 = lab.add_host("h2")
        self.g1 = lab.add_host("g1", gateway=True)
        self.g2 = lab.add_host("g2", gateway=True)
        self.hosts = [self.h1, self.h2, self.g1, self.g2]
        lab.wait_connected(*self.hosts)
        for gw in (self.g1, self.g2):
            lab.start_l3_agent(gw)
        self.ext_net, self.ext_subnet = lab.create_external_network()
        self.net_a, self.sub_a = lab.create_tenant_network("tenant-a", "net-a", "10.0.0.0/24")
        self.net_c, self.sub_c = lab.create_tenant_network("tenant-a", "net-c", "10.1.0.0/24")
        self.net_b, self.sub_b = lab.create_tenant_network("tenant-b", "net-b", "10.0.0.0/24")
        self.p1 = lab.create_port(self.net_a, "10.0.0.11", project_id="tenant-a")
        self.p2 = lab.create_port(self.net_a, "10.0.0.12", project_id="tenant-a")
        self.p4 = lab.create_port(self.net_c, "10.1.0.14", project_id="tenant-a")
        self.p3 = lab.create_port(self.net_b, "10.0.0.13", project_id="tenant-b")
        # Tenant A's ports are in its default group (ingress only from its members); the
        # internet pings vm4 through a floating IP below.
        conn.network.create_security_group_rule(
            security_group_id=self.p1.security_group_ids[0], direction="ingress",
            protocol="icmp", remote_ip_prefix="0.0.0.0/0")
        self.vm1 = self._vm(self.h1, "vm1", self.p1, "10.0.0.1")
        self.vm2 = self._vm(self.h2, "vm2", self.p2, "10.0.0.1")
        self.vm4 = self._vm(self.h2, "vm4", self.p4, "10.1.0.1")
        self.vm3 = self._vm(self.h1, "vm3", self.p3, "10.0.0.1")
        self.router = conn.network.create_router(
            name="r1", project_id="tenant-a",
            external_gateway_info={"network_id": self.ext_net.id})
        conn.network.add_interface_to_router(self.router, subnet_id=self.sub_a.id)
        conn.network.add_interface_to_router(self.router, subnet_id=self.sub_c.id)
        self.router = conn.network.get_router(self.router.id)
        self.gw_ip = self.router.external_gateway_info["external_fixed_ips"][0]["ip_address"]
        wait_until(lambda: lab.router_host(self.router.id), 15, 0.1, "router scheduled")
        wait_until(lambda: self.vm1.ping("10.0.0.12"), 30, 0.2, "vm1 -> vm2 connectivity")

    def _vm(self, host: Any, name: str, port: Any, gateway: str) -> VM:
        ip = port.fixed_ips[0]["ip_address"]
        return self.lab.topo.add_vm(host, name, port.id, port.mac_address, f"{ip}/24",
                                    gateway)

    def router_switch(self) -> Any:
        host = self.lab.router_host(self.router.id)
        return next(h for h in self.hosts if h.ns == host)


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DataplaneCloud]:
    require_root_and_ovs()
    workdir: Path = tmp_path_factory.mktemp("dataplane")
    lab = CloudLab(workdir)
    with lab:
        yield DataplaneCloud(lab)
    assert leftovers(lab.prefix) == []


def _sniff_arp_from(vm: VM, sender_ip: str, timeout: float) -> subprocess.Popen[str]:
    """tcpdump in ``vm`` for ARP packets whose sender protocol address is ``sender_ip``."""
    hex_ip = "0x" + "".join(f"{int(o):02x}" for o in sender_ip.split("."))
    return vm.popen(["timeout", str(timeout), "tcpdump", "-l", "-n", "-c", "1", "-i", "eth0",
                     f"arp and arp[14:4] == {hex_ip}"], stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT)


def _send_arp_reply(vm: VM, sender_mac: str, sender_ip: str) -> None:
    """Send one broadcast ARP reply from ``vm`` claiming ``sender_ip`` is at ``sender_mac``."""
    script = (
        "import socket,struct\n"
        "s=socket.socket(socket.AF_PACKET,socket.SOCK_RAW)\n"
        "s.bind(('eth0',0))\n"
        f"mac=bytes.fromhex('{sender_mac.replace(':', '')}')\n"
        f"ip=socket.inet_aton('{sender_ip}')\n"
        "bc=b'\\xff'*6\n"
        "pkt=bc+mac+b'\\x08\\x06'+struct.pack('!HHBBH',1,0x0800,6,4,2)+mac+ip+bc+ip\n"
        "for _ in range(5): s.send(pkt)\n"
    )
    vm.exec(["python3", "-c", script])


def test_vms_of_one_network_on_different_hosts_ping_each_other(cloud: DataplaneCloud) -> None:
    assert cloud.vm1.ping("10.0.0.12", count=3, interval=0.2)
    assert cloud.vm2.ping("10.0.0.11", count=3, interval=0.2)


def test_other_tenant_with_overlapping_subnet_cannot_reach_even_with_static_arp(
        cloud: DataplaneCloud) -> None:
    # vm3 (tenant B, 10.0.0.13, same CIDR) shares host h1 with vm1 and knows vm1's MAC.
    cloud.vm3.exec(["ip", "neigh", "replace", "10.0.0.11", "lladdr", cloud.vm1.mac,
                    "dev", "eth0", "nud", "permanent"])
    cloud.vm3.exec(["ip", "neigh", "replace", "10.0.0.12", "lladdr", cloud.vm2.mac,
                    "dev", "eth0", "nud", "permanent"])
    assert not cloud.vm3.ping("10.0.0.11", count=2, timeout=1)
    assert not cloud.vm3.ping("10.0.0.12", count=2, timeout=1)
    cloud.vm1.exec(["ip", "neigh", "replace", "10.0.0.13", "lladdr", cloud.vm3.mac,
                    "dev", "eth0", "nud", "permanent"])
    assert not cloud.vm1.ping("10.0.0.13", count=2, timeout=1)
    # ...while tenant A's own traffic still flows
    assert cloud.vm1.ping("10.0.0.12")


def test_vm_that_spoofs_its_ip_gets_nothing_through(cloud: DataplaneCloud) -> None:
    vm1 = cloud.vm1
    vm1.exec(["ip", "addr", "add", "10.0.0.50/24", "dev", "eth0"])
    try:
        assert not vm1.exec(["ping", "-n", "-c", "2", "-W", "1", "-I", "10.0.0.50",
                             "10.0.0.12"], check=False).returncode == 0
    finally:
        vm1.exec(["ip", "addr", "del", "10.0.0.50/24", "dev", "eth0"])
    assert vm1.ping("10.0.0.12")


def test_vm_that_changes_its_mac_gets_nothing_through(cloud: DataplaneCloud) -> None:
    vm1 = cloud.vm1
    vm1.exec(["ip", "link", "set", "eth0", "address", "fa:16:3e:99:99:99"])
    try:
        vm1.exec(["ip", "neigh", "flush", "dev", "eth0"])
        assert not vm1.ping("10.0.0.12", count=2, timeout=1)
    finally:
        vm1.exec(["ip", "link", "set", "eth0", "address", vm1.mac])
    wait_until(lambda: vm1.ping("10.0.0.12"), 10, 0.2, "vm1 back after restoring its MAC")


def test_arp_replies_for_another_vms_ip_do_not_get_through(cloud: DataplaneCloud) -> None:
    # A legitimate ARP from vm1 (its own IP) reaches vm2: the sniffer works ...
    sniffer = _sniff_arp_from(cloud.vm2, "10.0.0.11", timeout=5)
    wait_until(lambda: sniffer.poll() is None, 2, 0.05, "sniffer running")
    _send_arp_reply(cloud.vm1, cloud.vm1.mac, "10.0.0.11")
    out, _ = sniffer.communicate(timeout=10)
    assert "10.0.0.11" in out, out
    # ... but one claiming vm4's router-side address or vm2's own IP does not.
    sniffer = _sniff_arp_from(cloud.vm2, "10.0.0.12", timeout=3)
    _send_arp_reply(cloud.vm1, cloud.vm1.mac, "10.0.0.12")
    out, _ = sniffer.communicate(timeout=10)
    assert "is-at" not in out and "reply" not in out.lower().split("listening")[-1], out


def test_vms_on_two_subnets_behind_one_router_ping_each_other(cloud: DataplaneCloud) -> None:
    assert cloud.vm1.ping("10.1.0.14", count=3, interval=0.2)
    assert cloud.vm4.ping("10.0.0.11", count=3, interval=0.2)


def test_vm_reaches_internet_with_router_external_ip_as_source(cloud: DataplaneCloud) -> None:
    server = cloud.lab.topo.internet.start_server(7007)
    internet_ip = cloud.lab.topo.internet_ip
    reply = wait_until(lambda: cloud.vm1.udp_request(internet_ip, 7007, b"hello"), 20, 0.2,
                       "vm1 -> internet over SNAT")
    assert reply == b"hello"
    assert set(server.sources("udp")) == {cloud.gw_ip}


def test_internet_reaches_vm_through_floating_ip(cloud: DataplaneCloud) -> None:
    conn = cloud.lab.conn
    fip = conn.network.create_ip(floating_network_id=cloud.ext_net.id, port_id=cloud.p4.id,
                                 project_id="tenant-a")
    try:
        internet = cloud.lab.topo.internet
        wait_until(lambda: internet.ping(fip.floating_ip_address), 20, 0.2,
                   "internet -> floating IP")
        server = internet.start_server(7008)
        reply = cloud.vm4.udp_request(cloud.lab.topo.internet_ip, 7008, b"from-fip")
        assert reply == b"from-fip"
        assert set(server.sources("udp")) == {fip.floating_ip_address}
    finally:
        conn.network.delete_ip(fip)


def test_moving_the_router_to_another_gateway_switch_restores_internet(
        cloud: DataplaneCloud) -> None:
    lab = cloud.lab
    old = cloud.router_switch()
    new = cloud.g2 if old is cloud.g1 else cloud.g1
    old_agent, new_agent = lab.agent_id(old), lab.agent_id(new)
    status, _ = lab.api("DELETE", f"/v2.0/agents/{old_agent}/l3-routers/{cloud.router.id}")
    assert status == 204
    status, _ = lab.api("POST", f"/v2.0/agents/{new_agent}/l3-routers",
                        {"router_id": cloud.router.id})
    assert status == 201
    assert lab.router_host(cloud.router.id) == new.ns

    def nat_flows(host: Any) -> list[str]:
        return [f for f in host.dump_flows() if "ct(" in f]

    # the router's flows leave the old switch and appear on the new one
    wait_until(lambda: not nat_flows(old), 10, 0.1, "router flows gone from the old switch")
    wait_until(lambda: nat_flows(new), 10, 0.1, "router flows on the new switch")
    internet_ip = lab.topo.internet_ip
    server = lab.topo.internet.start_server(7009)
    wait_until(lambda: cloud.vm1.udp_request(internet_ip, 7009, b"moved", timeout=0.5), 20,
               0.2, "internet through the new gateway")
    assert set(server.sources("udp")) == {cloud.gw_ip}
    assert "dport=7009" in new.appctl("dpctl/dump-conntrack")


def test_continuous_ping_loses_nothing_across_a_controller_restart(
        cloud: DataplaneCloud) -> None:
    lab = cloud.lab
    assert lab.controller is not None
    before = {h.ns: sorted(h.dump_flows()) for h in cloud.hosts}
    pinger = cloud.vm1.start_continuous_ping("10.1.0.14", interval=0.05)
    pinger.wait_for_replies(10, timeout=10)
    log_offset = len(lab.controller.log_text())
    lab.controller.restart()
    lab.wait_connected(*cloud.hosts)

    def all_switches_resynced() -> bool:
        log = lab.controller.log_text()[log_offset:]
        return all(f"switch {h.dpid:016x} has" in log for h in cloud.hosts)

    wait_until(all_switches_resynced, 20, 0.1, "every switch's flows read back")
    sent_at_reconnect = pinger.stats().sent
    wait_until(lambda: pinger.stats().sent > sent_at_reconnect + 40, 20, 0.1,
               "pings after the controller came back")
    stats = pinger.stop()
    assert stats.sent > 60
    assert stats.lost == 0, stats
    after = {h.ns: sorted(h.dump_flows()) for h in cloud.hosts}
    assert after == before
    # and the controller sent nothing: every installed flow was recognised as right
    assert "flow-mods" not in lab.controller.log_text()[log_offset:]
