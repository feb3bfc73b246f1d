"""The agents as real processes on the real topology: DHCP from dnsmasq on another host, and
failover of DHCP and routers when an agent is killed or a gateway loses its external link.

Topology: compute host h1 (vm1); gateway hosts g1 and g2, each running a real DHCP agent and a
real L3 agent (``python -m agents.*``, report_interval 1 s) against the controller
(agent_down_time 3 s, one DHCP agent per network) over mutual TLS: a throwaway CA signs the
controller's certificate (for 198.18.0.1, where its agent endpoint listens) and one per
gateway host (named after the host the agents report). Tenant network net-a 10.0.0.0/24 (DHCP on,
DNS server 192.0.2.53) behind router r1, whose gateway is on the external network. vm1 has no
static address: it gets everything from dnsmasq with a real dhclient.

The tests run in file order and build on each other (the first one kills an agent that a later
one restarts), like the steps of one scenario.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.agent_process import AgentProcess
from tests.support.certs import TestPki
from tests.support.controller import ControllerProcess
from tests.support.lab import CloudLab
from tests.support.simagent import Disconnected, SimAgent
from tests.topology import (
    CONTROLLER_IP,
    VM,
    Host,
    TopologyError,
    leftovers,
    require_root_and_ovs,
    wait_until,
)
from tests.topology._run import missing_requirements, pid_alive

pytestmark = pytest.mark.e2e

DNS_SERVER = "192.0.2.53"
AGENT_DOWN_TIME = 3


def require_dhcp_tools() -> None:
    missing = missing_requirements(("dnsmasq", "dhclient"))
    if not missing:
        return
    reason = "agent tests need " + ", ".join(missing)
    if os.environ.get("CI", "").lower() == "true":
        raise TopologyError(reason)
    pytest.skip(reason)


def dnsmasq_pids(network_id: str) -> list[int]:
    """Live dnsmasq processes serving ``network_id`` (their command line names it)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                argv = fh.read().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"dnsmasq") and any(
                network_id.encode() in arg for arg in argv) and pid_alive(int(entry)):
            found.append(int(entry))
    return sorted(found)


class AgentCloud:
    def __init__(self, lab: CloudLab, workdir: Path, pki: TestPki) -> None:
        self.lab = lab
        conn = lab.conn
        assert lab.controller is not None
        self.h1 = lab.add_host("h1")
        self.g1 = lab.add_host("g1", gateway=True)
        self.g2 = lab.add_host("g2", gateway=True)
        self.hosts = [self.h1, self.g1, self.g2]
        self.gateways = [self.g1, self.g2]
        lab.wait_connected(*self.hosts)
        rpc_port = lab.controller.rpc_port
        certs = {g.ns: pki.issue(g.ns) for g in self.gateways}
        self.dhcp = {g.ns: AgentProcess(lab.topo, g, "dhcp", rpc_port, workdir / "agents",
                                        tls=certs[g.ns])
                     for g in self.gateways}
        self.l3 = {g.ns: AgentProcess(lab.topo, g, "l3", rpc_port, workdir / "agents",
                                      tls=certs[g.ns])
                   for g in self.gateways}
        for agent in [*self.dhcp.values(), *self.l3.values()]:
            agent.start()
        for g in self.gateways:
            lab.agent_id(g, "DHCP agent")
            lab.agent_id(g, "L3 agent")
        self.ext_net, _ = lab.create_external_network()
        self.net = conn.network.create_network(name="net-a", project_id="tenant-a")
        self.subnet = conn.network.create_subnet(
            network_id=self.net.id, name="net-a-v4", ip_version=4, cidr="10.0.0.0/24",
            is_dhcp_enabled=True, dns_nameservers=[DNS_SERVER], project_id="tenant-a")
        self.port = lab.create_port(self.net, project_id="tenant-a")
        self.vm_ip = lab.port_ip(self.port)
        self.vm: VM = lab.topo.add_vm(self.h1, "vm1", self.port.id, self.port.mac_address)
        self.router = conn.network.create_router(
            name="r1", project_id="tenant-a",
            external_gateway_info={"network_id": self.ext_net.id})
        conn.network.add_interface_to_router(self.router, subnet_id=self.subnet.id)
        wait_until(lambda: lab.router_host(self.router.id), 15, 0.1, "router scheduled")
        wait_until(self.dhcp_host, 15, 0.1, "network scheduled to a DHCP agent")

    # --- what the controller says -------------------------------------------------------

    def dhcp_host(self) -> str | None:
        _status, body = self.lab.api("GET", f"/v2.0/networks/{self.net.id}/dhcp-agents")
        agents = (body or {}).get("agents", [])
        return str(agents[0]["host"]) if len(agents) == 1 else None

    def dhcp_ports(self) -> dict[str, dict[str, Any]]:
        """The network's DHCP ports by binding host."""
        _status, body = self.lab.api(
            "GET", f"/v2.0/ports?network_id={self.net.id}&device_owner=network:dhcp")
        return {p["binding:host_id"]: p for p in (body or {}).get("ports", [])}

    def dhcp_port_ip(self, host: str) -> str | None:
        port = self.dhcp_ports().get(host)
        return str(port["fixed_ips"][0]["ip_address"]) if port else None

    def gateway(self, ns: str) -> Host:
        return next(g for g in self.gateways if g.ns == ns)

    def other(self, host: Host) -> Host:
        return self.g2 if host is self.g1 else self.g1

    def router_gateway(self) -> Host:
        host = self.lab.router_host(self.router.id)
        assert host is not None
        return self.gateway(host)

    def qdhcp_namespaces(self, host: Host) -> list[str]:
        return [ns for ns in self.lab.topo.namespaces()
                if ns.startswith(f"{host.ns}-qdhcp-")]

    def internet_reachable(self) -> bool:
        return self.vm.ping(self.lab.topo.internet_ip, count=1, timeout=1)


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentCloud]:
    require_root_and_ovs()
    require_dhcp_tools()
    workdir: Path = tmp_path_factory.mktemp("agents")
    pki = TestPki(workdir / "pki")
    endpoint = pki.issue("controller", ips=[CONTROLLER_IP])
    lab = CloudLab(workdir, {"agent_down_time": AGENT_DOWN_TIME, "dhcp_agents_per_network": 1,
                             "rpc_host": CONTROLLER_IP,
                             "rpc_tls_cert_file": endpoint.cert_file,
                             "rpc_tls_key_file": endpoint.key_file,
                             "rpc_tls_ca_file": endpoint.ca_file})
    with lab:
        built = AgentCloud(lab, workdir, pki)
        try:
            yield built
        finally:
            for agent in [*built.dhcp.values(), *built.l3.values()]:
                agent.stop()
    assert leftovers(lab.prefix) == []


def test_vm_gets_address_gateway_and_dns_by_dhcp_from_an_agent_on_another_host(
        cloud: AgentCloud) -> None:
    host = cloud.dhcp_host()
    assert host in (cloud.g1.ns, cloud.g2.ns)   # not h1, where the VM is
    server_ip = wait_until(lambda: cloud.dhcp_port_ip(host), 10, 0.1, "DHCP port")
    lease = cloud.vm.dhclient(timeout=20)
    assert (lease.ip, lease.prefixlen) == (cloud.vm_ip, 24)
    assert lease.gateway == "10.0.0.1"
    assert lease.dns == (DNS_SERVER,)
    assert lease.server == server_ip
    assert f"{cloud.vm_ip}/24" in cloud.vm.addresses()
    # the dnsmasq serving it runs in the agent's namespace on that host
    assert len(cloud.qdhcp_namespaces(cloud.gateway(host))) == 1
    assert len(dnsmasq_pids(cloud.net.id)) == 1


def test_new_port_is_served_by_reloading_dnsmasq_not_restarting_it(cloud: AgentCloud) -> None:
    lab = cloud.lab
    (pid,) = dnsmasq_pids(cloud.net.id)
    port = lab.create_port(cloud.net, project_id="tenant-a")
    vm2 = lab.topo.add_vm(cloud.h1, "vm2", port.id, port.mac_address)
    lease = vm2.dhclient(timeout=20)
    assert lease.ip == lab.port_ip(port)
    assert dnsmasq_pids(cloud.net.id) == [pid]
    host = cloud.gateway(str(cloud.dhcp_host()))
    assert "reloaded dnsmasq" in cloud.dhcp[host.ns].log_text()


def test_killed_dhcp_agent_network_moves_and_vm_renews_through_the_new_agent(
        cloud: AgentCloud) -> None:
    old = cloud.gateway(str(cloud.dhcp_host()))
    new = cloud.other(old)
    old_port = cloud.dhcp_ports()[old.ns]
    cloud.dhcp[old.ns].kill(signal.SIGKILL)
    wait_until(lambda: cloud.dhcp_host() == new.ns, AGENT_DOWN_TIME + 10, 0.1,
               "network rescheduled to the live DHCP agent")
    # the dead agent's DHCP port is deleted, so the pipeline stops forwarding to its dnsmasq
    # (which outlived the agent): its MAC leaves every switch's flows
    wait_until(lambda: old.ns not in cloud.dhcp_ports(), 10, 0.1, "old DHCP port deleted")
    wait_until(lambda: not any(old_port["mac_address"] in f
                               for h in cloud.hosts for f in h.dump_flows()),
               10, 0.1, "old DHCP port's flows removed")
    new_ip = wait_until(lambda: cloud.dhcp_port_ip(new.ns), 10, 0.1, "new DHCP port")
    lease = cloud.vm.dhclient(timeout=20)
    assert lease.server == new_ip
    assert lease.ip == cloud.vm_ip
    assert lease.gateway == "10.0.0.1" and lease.dns == (DNS_SERVER,)


def test_restarted_dhcp_agents_resync_without_duplicates_and_clean_up(
        cloud: AgentCloud) -> None:
    serving = cloud.gateway(str(cloud.dhcp_host()))
    dead = cloud.other(serving)
    assert not cloud.dhcp[dead.ns].alive()   # killed by the previous test
    # the dead agent's leftovers: its dnsmasq still runs in its namespace, its tap on OVS
    assert len(dnsmasq_pids(cloud.net.id)) == 2
    assert cloud.qdhcp_namespaces(dead)
    before_ports = {g.ns: sorted(g.vsctl("list-ports", "br-int").split())
                    for g in cloud.gateways}
    serving_pids = dnsmasq_pids(cloud.net.id)
    dhcp_ports = cloud.dhcp_ports()
    # 1. the serving agent crashes and comes back: it adopts its dnsmasq and port
    agent = cloud.dhcp[serving.ns]
    offset = len(agent.log_text())
    agent.restart()
    agent.wait_log("resync 2 done", timeout=15, since=offset)
    assert "adopted dnsmasq" in agent.log_text()[offset:]
    assert serving.vsctl("list-ports", "br-int").split() == before_ports[serving.ns]
    assert set(dnsmasq_pids(cloud.net.id)) == set(serving_pids)
    assert cloud.dhcp_ports() == dhcp_ports
    assert cloud.dhcp_host() == serving.ns   # no flapping
    # 2. the dead agent comes back: it no longer hosts the network, so it cleans up
    agent = cloud.dhcp[dead.ns]
    offset = len(agent.log_text())
    agent.start()
    wait_until(lambda: not cloud.qdhcp_namespaces(dead), 15, 0.1, "stale namespace removed")
    wait_until(lambda: len(dnsmasq_pids(cloud.net.id)) == 1, 10, 0.1, "stale dnsmasq stopped")
    assert "tearing down DHCP" in agent.log_text()[offset:]
    assert sorted(dead.vsctl("list-ports", "br-int").split()) == ["ext0", "uplink"]
    assert cloud.dhcp_host() == serving.ns
    assert cloud.dhcp_ports().keys() == {serving.ns}
    lease = cloud.vm.dhclient(timeout=20)
    assert lease.server == cloud.dhcp_port_ip(serving.ns)


def _failover_with_continuous_ping(cloud: AgentCloud, break_it: Any) -> tuple[Host, Any]:
    """Ping the internet from vm1, break the router's gateway, wait for the router to move
    and the replies to come back; returns the old gateway and the ping figures."""
    lab = cloud.lab
    wait_until(cloud.internet_reachable, 20, 0.2, "vm1 -> internet")
    old = cloud.router_gateway()
    pinger = cloud.vm.start_continuous_ping(lab.topo.internet_ip, interval=0.1)
    pinger.wait_for_replies(5, timeout=10)
    break_it(old)
    wait_until(lambda: lab.router_host(cloud.router.id) == cloud.other(old).ns,
               AGENT_DOWN_TIME + 10, 0.1, "router moved to the other gateway")
    moved_at = pinger.received
    try:
        pinger.wait_for_replies(moved_at + 10, timeout=15)
    except TimeoutError as exc:
        raise AssertionError(f"no internet after the move:\n{diagnostics(cloud)}") from exc
    return old, pinger.stop()


def diagnostics(cloud: AgentCloud) -> str:
    """Where the fabric and the external segment think the router's MACs are, and the
    controller's recent log: what a failed recovery needs to be understood."""
    topo, lab = cloud.lab.topo, cloud.lab
    router_macs = {p["mac_address"] for p in lab.api(
        "GET", f"/v2.0/ports?device_id={cloud.router.id}")[1]["ports"]}
    lines = [f"router on {lab.router_host(cloud.router.id)}, MACs {sorted(router_macs)}"]
    for ns in (topo.fab_ns, topo.inet_ns):
        fdb = topo.exec(ns, ["bridge", "fdb", "show"], check=False).stdout
        lines += [f"{ns}: {line}" for line in fdb.splitlines()
                  if any(mac in line for mac in router_macs)]
    assert lab.controller is not None
    lines.append(lab.controller.log_text()[-3000:])
    return "\n".join(lines)


def test_killed_l3_agent_router_moves_and_internet_ping_recovers(cloud: AgentCloud) -> None:
    old, stats = _failover_with_continuous_ping(
        cloud, lambda gw: cloud.l3[gw.ns].kill(signal.SIGKILL))
    # The dead agent's switch still forwards until the router's flows move, so the gap is
    # only the move itself (flows removed on one switch, installed on the other, GARPs).
    assert stats.longest_gap < AGENT_DOWN_TIME + 2, stats
    # the agent comes back and does not take its router back
    cloud.l3[old.ns].start()
    wait_until(lambda: cloud.lab.api("GET", f"/v2.0/agents/{cloud.lab.agent_id(old)}")[1]
               ["agent"]["alive"], 10, 0.1, "restarted L3 agent alive")
    assert cloud.lab.router_host(cloud.router.id) == cloud.other(old).ns


def test_cut_external_link_moves_router_and_internet_ping_recovers(cloud: AgentCloud) -> None:
    lab = cloud.lab
    cut: list[Host] = []

    def cut_link(gw: Host) -> None:
        gw.exec(["ip", "link", "set", "ext0", "down"])
        cut.append(gw)

    try:
        old, stats = _failover_with_continuous_ping(cloud, cut_link)
        # (the switch reports the link down at once: the router's flows are removed from it
        # and it moves within a ping or two, so no loss need show; the agent's report below
        # shows the cut was real)
        assert stats.longest_gap < AGENT_DOWN_TIME + 2, stats
        assert cloud.l3[old.ns].alive()   # the agent lives; its gateway is just unusable
        _status, body = lab.api("GET", f"/v2.0/agents/{lab.agent_id(old)}")
        assert body["agent"]["configurations"]["external_link_up"] is False
        _status, body = lab.api("GET", f"/v2.0/agent-scheduler/moves?resource_id="
                                       f"{cloud.router.id}&limit=1")
        # usually the switch's port status comes first and the gateway-health monitor
        # fences the gateway and fails it over; on a busy machine the agent's own report of
        # its link (within a report_interval) may be handled first: either moves it once
        assert body["moves"][0]["reason"] in ("gateway_failed", "link_down")
    finally:
        for gw in cut:
            gw.exec(["ip", "link", "set", "ext0", "up"])
    # back up: the agent reports it, and the router stays where it is (no flapping)
    wait_until(lambda: lab.api("GET", f"/v2.0/agents/{lab.agent_id(old)}")[1]["agent"]
               ["configurations"]["external_link_up"], 10, 0.1, "external link reported up")
    assert lab.router_host(cloud.router.id) == cloud.other(old).ns


def test_agents_reconnect_to_a_restarted_controller_and_nothing_moves(
        cloud: AgentCloud) -> None:
    lab = cloud.lab
    assert lab.controller is not None
    agents = [*cloud.dhcp.values(), *cloud.l3.values()]
    offsets = [len(a.log_text()) for a in agents]
    network_host, router_host = cloud.dhcp_host(), lab.router_host(cloud.router.id)
    _status, body = lab.api("GET", "/v2.0/agent-scheduler/moves")
    moves_before = len(body["moves"])
    log_offset = len(lab.controller.log_text())
    lab.controller.restart()
    lab.wait_connected(*cloud.hosts)
    for agent, offset in zip(agents, offsets, strict=True):
        agent.wait_log("connected to controller", timeout=10, since=offset)

    def all_alive() -> bool:
        _status, body = lab.api("GET", "/v2.0/agents")
        return len(body["agents"]) == 4 and all(a["alive"] for a in body["agents"])

    wait_until(all_alive, 10, 0.1, "every agent alive after the restart")
    # Watch past the controller's grace period (one agent_down_time) and a few monitor
    # ticks: no agent may be judged dead, nothing may move.
    watch_until = time.monotonic() + AGENT_DOWN_TIME + 2
    violations: list[str] = []

    def watched_window_is_over() -> bool:
        if not all_alive():
            violations.append("an agent was not alive")
        if len(lab.api("GET", "/v2.0/agent-scheduler/moves")[1]["moves"]) != moves_before:
            violations.append("a binding moved")
        return time.monotonic() >= watch_until

    wait_until(watched_window_is_over, AGENT_DOWN_TIME + 10, 0.2, "the watched window")
    assert violations == []
    assert "is dead" not in lab.controller.log_text()[log_offset:]
    assert cloud.dhcp_host() == network_host
    assert lab.router_host(cloud.router.id) == router_host
    _status, body = lab.api("GET", "/v2.0/agent-scheduler/moves")
    assert len(body["moves"]) == moves_before
    lease = cloud.vm.dhclient(timeout=20)
    assert lease.server == cloud.dhcp_port_ip(str(network_host))
    wait_until(cloud.internet_reachable, 20, 0.2, "vm1 -> internet after the restart")


def test_agents_talk_mutual_tls_and_an_agent_without_a_certificate_is_refused(
        cloud: AgentCloud) -> None:
    lab = cloud.lab
    assert lab.controller is not None
    assert "listening on 198.18.0.1" in lab.controller.log_text()
    assert "over mutual TLS" in lab.controller.log_text()
    for agent in [*cloud.dhcp.values(), *cloud.l3.values()]:
        assert f"connected to controller {CONTROLLER_IP}:" in agent.log_text()
        assert "(TLS)" in agent.log_text()
    intruder = SimAgent((CONTROLLER_IP, lab.controller.rpc_port), "intruder")
    with pytest.raises(Disconnected):
        intruder.connect(timeout=2.0)
    intruder.close()
    _status, body = lab.api("GET", "/v2.0/agents?host=intruder")
    assert body["agents"] == []


def test_a_non_loopback_rpc_host_without_tls_needs_rpc_allow_insecure(
        cloud: AgentCloud, tmp_path: Path) -> None:
    """A second controller in the controller namespace, its agent endpoint on 198.18.0.1."""
    refused = ControllerProcess(tmp_path / "refused", {"rpc_host": CONTROLLER_IP})
    with pytest.raises(RuntimeError, match="controller exited"):
        refused.start()
    assert "rpc_host = 198.18.0.1 is not a loopback address" in refused.log_text()
    refused.stop()
    with ControllerProcess(tmp_path / "insecure", {"rpc_host": CONTROLLER_IP,
                                                   "rpc_allow_insecure": True}) as ctl:
        agent = SimAgent((CONTROLLER_IP, ctl.rpc_port), "plain").connect()
        assert agent.report_state()["status"] == "registered"
        agent.close()
