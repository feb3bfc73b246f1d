"""The test topology itself works: real OVS hosts, fabric, internet, DHCP, and no leaks.

No controller here: the hosts' br-int get hand-made NORMAL flows (only in this self-test), with
VM ports as VLAN access ports, so tenant traffic crosses the fabric VLAN-tagged as it will in
production.
"""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.topology import (
    VM,
    Host,
    Topology,
    TopologyError,
    leftovers,
    netns,
    require_root_and_ovs,
    unique_prefix,
    wait_until,
)

pytestmark = pytest.mark.e2e

TENANT_VLAN = "100"
EXT_VLAN = "200"
DHCP_CLIENT_MAC = "fa:16:3e:00:00:21"
DHCP_CLIENT_IP = "10.0.0.21"


class Lab:
    """The self-test's topology: h1, h2, gateway gw; one tenant VM on each; more on the side."""

    def __init__(self, topo: Topology):
        self.topo = topo
        self.h1 = topo.add_host("h1")
        self.h2 = topo.add_host("h2")
        self.gw = topo.add_host("gw", gateway=True)
        for host in (self.h1, self.h2, self.gw):
            host.ofctl("add-flow", "priority=0,actions=NORMAL")
        self.vm1 = self._vm(self.h1, "vm1", "11111111-1111-4111-8111-111111111111",
                            "fa:16:3e:00:00:11", "10.0.0.11/24")
        self.vm2 = self._vm(self.h2, "vm2", "22222222-2222-4222-8222-222222222222",
                            "fa:16:3e:00:00:12", "10.0.0.12/24")
        self.vm3 = self._vm(self.gw, "vm3", "33333333-3333-4333-8333-333333333333",
                            "fa:16:3e:00:00:13", "10.0.0.13/24")
        # A VM on the external network, behind the gateway host's ext0.
        self.ext = self._vm(self.gw, "ext", "44444444-4444-4444-8444-444444444444",
                            "fa:16:3e:00:00:14", "203.0.113.10/24", gateway="203.0.113.1",
                            vlan=EXT_VLAN)
        self.gw.vsctl("set", "Port", "ext0", f"tag={EXT_VLAN}")

    def _vm(self, host: Host, name: str, port_id: str, mac: str, ip_cidr: str | None,
            gateway: str | None = None, vlan: str = TENANT_VLAN) -> VM:
        vm = self.topo.add_vm(host, name, port_id, mac, ip_cidr, gateway)
        host.vsctl("set", "Port", vm.tap, f"tag={vlan}")
        return vm


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    require_root_and_ovs()
    prefix = unique_prefix()
    with Topology(prefix, tmp_path_factory.mktemp("topo")) as topo:
        yield Lab(topo)
    assert leftovers(prefix) == []


def test_hosts_look_like_production_switches(lab: Lab) -> None:
    hosts = (lab.h1, lab.h2, lab.gw)
    assert len({h.dpid for h in hosts}) == 3
    for host in hosts:
        assert host.vsctl("get", "Bridge", "br-int", "datapath_type").strip() == "netdev"
        assert host.vsctl("get", "Bridge", "br-int", "fail_mode").strip() == "secure"
        assert f"dpid:{host.dpid:016x}" in host.ofctl("show")
        assert host.ofport("uplink") == 1
        assert host.dump_flows() == ["priority=0 actions=NORMAL"]
    assert lab.gw.ofport("ext0") == 2
    assert lab.vm1.tap == "tap11111111-11"
    port_desc = lab.h1.ofctl("dump-ports-desc")
    assert "(tap11111111-11)" in port_desc


def test_vms_on_different_hosts_ping_across_the_vlan_tagged_fabric(lab: Lab) -> None:
    wait_until(lambda: lab.vm1.ping("10.0.0.12"), timeout=10, message="vm1 -> vm2")
    wait_until(lambda: lab.vm2.ping("10.0.0.13"), timeout=10, message="vm2 -> vm3")
    # Full-size frames (1500 bytes of IP + the 802.1Q tag on the fabric) still pass.
    assert lab.vm1.exec(["ping", "-n", "-c", "1", "-W", "2", "-M", "do", "-s", "1472",
                         "10.0.0.12"], check=False).returncode == 0
    # The fabric really carries the tenant VLAN: h2's uplink learned vm1's MAC on VLAN 100.
    fdb = lab.h2.appctl("fdb/show", "br-int")
    assert any(line.split()[1:3] == [TENANT_VLAN, "fa:16:3e:00:00:11"]
               for line in fdb.splitlines()[1:] if line.split()[0] == "1"), fdb


def test_tcp_between_vms_has_valid_checksums_and_no_oversized_frames(lab: Lab) -> None:
    server = lab.topo.start_server(lab.vm2, port=7)
    payload = bytes(range(256)) * 1024  # 256 KiB: many full-size segments
    wait_until(lambda: lab.vm1.ping("10.0.0.12"), timeout=10)
    assert lab.vm1.tcp_request("10.0.0.12", 7, payload, timeout=10) == payload
    assert server.wait_for_peer("tcp").src == "10.0.0.11"


def test_gateway_host_ext0_reaches_the_internet_namespace(lab: Lab) -> None:
    wait_until(lambda: lab.ext.ping(lab.topo.ext_gateway_ip), timeout=10,
               message="ext VM -> upstream router")
    server = lab.topo.internet.start_server(port=7)
    assert lab.ext.ping(lab.topo.internet_ip)
    assert server.wait_for_peer("icmp").src == "203.0.113.10"
    assert lab.ext.udp_request(lab.topo.internet_ip, 7, b"hello") == b"hello"
    udp = server.wait_for_peer("udp")
    assert (udp.src, udp.dst) == ("203.0.113.10", lab.topo.internet_ip)
    # Tenant VLAN and external VLAN stay apart on the same switch.
    assert not lab.vm3.ping("203.0.113.1", timeout=0.3)


def test_dhcp_over_the_fabric_with_real_dnsmasq_and_dhclient(lab: Lab) -> None:
    topo = lab.topo
    server = lab._vm(lab.h1, "dhcp", "55555555-5555-4555-8555-555555555555",
                     "fa:16:3e:00:00:02", "10.0.0.2/24")
    client = lab._vm(lab.h2, "dc", "66666666-6666-4666-8666-666666666666",
                     DHCP_CLIENT_MAC, None)
    work = topo.workdir / "dnsmasq"
    work.mkdir()
    dnsmasq = server.popen([
        "dnsmasq", "--no-daemon", "--conf-file=/dev/null", "--no-hosts", "--no-resolv",
        "--port=0", "--interface=eth0", "--bind-interfaces", "--user=root", "--group=root",
        "--dhcp-range=10.0.0.0,static,255.255.255.0,10m",
        f"--dhcp-host={DHCP_CLIENT_MAC},{DHCP_CLIENT_IP}",
        "--dhcp-option=option:router,10.0.0.1", "--dhcp-option=option:dns-server,10.0.0.2",
        f"--dhcp-leasefile={work / 'leases'}", f"--pid-file={work / 'pid'}",
        "--log-dhcp", "--log-facility=-",
    ], stdout=subprocess.DEVNULL, stderr=(work / "log").open("w"))
    wait_until(lambda: ":67 " in server.exec(["ss", "-Huln"]).stdout, timeout=10,
               message="dnsmasq listening")
    lease = client.dhclient(timeout=20)
    assert (lease.ip, lease.prefixlen) == (DHCP_CLIENT_IP, 24)
    assert lease.gateway == "10.0.0.1"
    assert lease.dns == ("10.0.0.2",)
    assert f"{DHCP_CLIENT_IP}/24" in client.addresses()
    assert client.ping("10.0.0.11")
    assert dnsmasq.poll() is None


def test_continuous_ping_reports_no_loss(lab: Lab) -> None:
    wait_until(lambda: lab.vm1.ping("10.0.0.13"), timeout=10)
    pinger = lab.vm1.start_continuous_ping("10.0.0.13", interval=0.05)
    pinger.wait_for_replies(20, timeout=10)
    stats = pinger.stop()
    assert stats.sent >= 20
    assert stats.lost == 0, pinger.output
    assert stats.received == stats.sent
    assert stats.longest_gap < 1.0


def test_continuous_ping_counts_an_outage(lab: Lab) -> None:
    wait_until(lambda: lab.vm2.ping("10.0.0.11"), timeout=10)
    pinger = lab.vm2.start_continuous_ping("10.0.0.11", interval=0.05)
    pinger.wait_for_replies(5, timeout=10)
    lab.h1.exec(["ip", "link", "set", "uplink", "down"])
    try:
        seen = pinger.stats().sent
        wait_until(lambda: pinger.stats().sent >= seen + 5, timeout=10)
    finally:
        lab.h1.exec(["ip", "link", "set", "uplink", "up"])
    after = pinger.received
    pinger.wait_for_replies(after + 5, timeout=10)
    stats = pinger.stop()
    assert stats.lost >= 5
    assert stats.longest_gap >= 0.25


def test_controller_namespace_reaches_every_switch(lab: Lab) -> None:
    """A fake controller on 198.18.0.1:6653 in the ctl namespace: every br-int connects to it."""
    with netns(lab.topo.ctl_ns):
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    hellos: list[bytes] = []
    conns: list[socket.socket] = []
    with listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((lab.topo.controller_ip, 6653))
        listener.listen(8)
        listener.settimeout(0.2)
        stop = threading.Event()

        def accept() -> None:
            while not stop.is_set():
                try:
                    conn, _ = listener.accept()
                except TimeoutError:
                    continue
                conns.append(conn)
                conn.settimeout(2)
                hellos.append(conn.recv(8))
                conn.sendall(bytes.fromhex("0400000800000001"))  # OpenFlow 1.3 OFPT_HELLO

        thread = threading.Thread(target=accept, daemon=True)
        thread.start()
        try:
            started = time.monotonic()
            for host in (lab.h1, lab.h2, lab.gw):
                host.wait_controller_connected(timeout=10)
            # They had been backing off for seconds; kicking finds the controller at once.
            assert time.monotonic() - started < 6
        finally:
            stop.set()
            thread.join()
            for conn in conns:
                conn.close()
    assert len(hellos) >= 3
    assert all(h[:2] == b"\x04\x00" for h in hellos)  # OpenFlow 1.3 OFPT_HELLO
    for host in (lab.h1, lab.h2, lab.gw):
        assert lab.topo.exec(lab.topo.ctl_ns, ["ping", "-c1", "-W1", host.mgmt_ip]).returncode == 0
    # Connecting to a controller did not flush the hand-made flows.
    assert lab.h1.dump_flows() == ["priority=0 actions=NORMAL"]
    assert lab.vm1.ping("10.0.0.12")


def test_vswitchd_restart_keeps_the_switch_configuration(lab: Lab) -> None:
    lab.h2.stop_vswitchd()
    assert not lab.h2.vswitchd_running()
    lab.h2.start_vswitchd()
    wait_until(lambda: lab.h2.ofport("uplink") == 1, timeout=10)
    # fail_mode=secure and no controller: flows are gone until someone installs them again.
    assert lab.h2.dump_flows() == []
    assert not lab.vm1.ping("10.0.0.12", timeout=0.3)
    lab.h2.ofctl("add-flow", "priority=0,actions=NORMAL")
    wait_until(lambda: lab.vm1.ping("10.0.0.12"), timeout=10)


def test_netns_moves_only_the_calling_thread_and_restores_it(tmp_path: Path) -> None:
    require_root_and_ovs()
    before = Path(f"/proc/self/task/{threading.get_native_id()}/ns/net").stat().st_ino
    prefix = unique_prefix()
    with Topology(prefix, tmp_path) as topo:
        with netns(topo.ctl_ns):
            inside = Path(f"/proc/self/task/{threading.get_native_id()}/ns/net").stat().st_ino
            assert inside != before
            out = subprocess.run(["ip", "-br", "addr", "show", "mgmt"], capture_output=True,
                                 text=True, check=True).stdout
            assert "198.18.0.1/24" in out
        after = Path(f"/proc/self/task/{threading.get_native_id()}/ns/net").stat().st_ino
        assert after == before
    assert leftovers(prefix) == []


def test_a_failure_inside_the_topology_leaves_nothing_behind(tmp_path: Path) -> None:
    require_root_and_ovs()
    prefix = unique_prefix()
    with pytest.raises(RuntimeError, match="boom"), Topology(prefix, tmp_path) as topo:
        host = topo.add_host("h1", gateway=True)
        topo.add_vm(host, "vm1", "77777777-7777", "fa:16:3e:00:00:77", "10.0.0.77/24")
        topo.popen(topo.inet_ns, ["sleep", "600"])
        assert leftovers(prefix)
        raise RuntimeError("boom")
    assert leftovers(prefix) == []
    with pytest.raises(TopologyError), Topology(prefix, tmp_path) as topo:
        topo.exec(topo.ctl_ns, ["false"])
    assert leftovers(prefix) == []
