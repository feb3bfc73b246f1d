"""Two gateways, one router, and the ways a gateway fails: shared by bench/failover.py and
tests/e2e/test_ha_failover.py.

On a :class:`tests.support.lab.CloudLab`: compute host h1 with vm1 (10.0.0.11, reaches the
internet through the router's SNAT) and vm2 (10.0.0.12, with a floating IP), gateway hosts g1
and g2 (ext0 on the internet namespace's ``extnet``), a real L3 agent process on each gateway,
router r1 (external gateway on the external network, interface on net-a 10.0.0.0/24;
``ha=True`` when asked), and the internet namespace's echo server (UDP/TCP port 7).

:class:`Failure` names the ways a gateway is broken (issue 12) and :meth:`GatewayLab.break_`
/ :meth:`GatewayLab.repair` do and undo them on a gateway host.
"""

from __future__ import annotations

import enum
import signal
from pathlib import Path
from typing import Any

from tests.support.agent_process import REPO_ROOT, AgentProcess
from tests.support.lab import CloudLab
from tests.topology import VM, ComeBackOrder, EchoServer, Host, wait_until

L3_AGENT = "L3 agent"
ECHO_PORT = 7


class Failure(enum.Enum):
    """How a gateway fails."""

    #: the L3 agent SIGKILLed; its switch keeps forwarding (bench mode ``kill``)
    AGENT_KILL = "kill"
    #: the agent SIGKILLed and ovs-vswitchd stopped (SIGTERM) (bench mode ``host``)
    HOST_DOWN = "host"
    #: ext0 down (bench mode ``link``; the same break as EXT_CUT)
    LINK = "link"
    #: uplink, external and management links down at once, ovs-vswitchd, ovsdb-server and
    #: the L3 agent SIGSTOPped: the host is silent, nobody gets a reset
    VANISH = "vanish"
    #: ovs-vswitchd and the L3 agent SIGKILLed
    SWITCH_KILL = "switch-kill"
    #: the external link (ext0) down
    EXT_CUT = "ext-cut"
    #: the management link (mgmt0) down: no controller, no RPC; the data plane keeps its flows
    MGMT_CUT = "mgmt-cut"


class GatewayLab:
    def __init__(self, lab: CloudLab, workdir: Path, *, ha: bool = False,
                 report_interval: float = 1.0, code_root: Path = REPO_ROOT) -> None:
        assert lab.controller is not None
        self.lab = lab
        self.topo = lab.topo
        conn = lab.conn
        self.h1 = lab.add_host("h1")
        self.g1 = lab.add_host("g1", gateway=True)
        self.g2 = lab.add_host("g2", gateway=True)
        self.gateways = [self.g1, self.g2]
        lab.wait_connected(self.h1, *self.gateways)
        self.l3 = {g.ns: AgentProcess(lab.topo, g, "l3", lab.controller.rpc_port,
                                      workdir / "agents", report_interval=report_interval,
                                      code_root=code_root)
                   for g in self.gateways}
        for agent in self.l3.values():
            agent.start()
        self.agent_ids = {g.ns: lab.agent_id(g, L3_AGENT) for g in self.gateways}
        self.ext_net, _ = lab.create_external_network()
        self.net, self.subnet = lab.create_tenant_network("gw", "net-a", "10.0.0.0/24")
        port1 = lab.create_port(self.net, "10.0.0.11", project_id="gw")
        port2 = lab.create_port(self.net, "10.0.0.12", project_id="gw")
        self.vm1: VM = self.topo.add_vm(self.h1, "vm1", port1.id, port1.mac_address,
                                        "10.0.0.11/24", "10.0.0.1")
        self.vm2: VM = self.topo.add_vm(self.h1, "vm2", port2.id, port2.mac_address,
                                        "10.0.0.12/24", "10.0.0.1")
        self.router = self._create_router(ha)
        conn.network.add_interface_to_router(self.router["id"], subnet_id=self.subnet.id)
        self.router_id: str = self.router["id"]
        self.router_ip: str = (self.router["external_gateway_info"]["external_fixed_ips"][0]
                               ["ip_address"])
        self.fip = conn.network.create_ip(floating_network_id=self.ext_net.id,
                                          port_id=port2.id)
        self.fip_ip: str = self.fip.floating_ip_address
        self.server: EchoServer = self.topo.internet.start_server(ECHO_PORT)
        wait_until(self.active_host, 15, 0.1, "router scheduled")

    def _create_router(self, ha: bool) -> dict[str, Any]:
        body: dict[str, Any] = {"name": "r1", "project_id": "gw",
                                "external_gateway_info": {"network_id": self.ext_net.id}}
        if ha:
            body["ha"] = True
        status, reply = self.lab.api("POST", "/v2.0/routers", {"router": body})
        if status != 201:
            raise HaUnsupported(f"creating router r1 (ha={ha}) failed: {status} {reply}")
        router = dict(reply["router"])
        if ha and router.get("ha") is not True:
            raise HaUnsupported(f"the controller ignored ha=true: {router}")
        return router

    # --- what the controller says -------------------------------------------------------

    def l3_agents(self) -> list[dict[str, Any]]:
        """``GET /v2.0/routers/{id}/l3-agents`` (HA: every binding, with ``ha_state``)."""
        _status, body = self.lab.api("GET", f"/v2.0/routers/{self.router_id}/l3-agents")
        return list((body or {}).get("agents", []))

    def active_host(self) -> str | None:
        """The host namespace where the router is active: the agent whose ``ha_state`` is
        ``active``, or (a router without HA) its only agent."""
        agents = self.l3_agents()
        if any("ha_state" in a for a in agents):
            active = [a for a in agents if a.get("ha_state") == "active"]
            return str(active[0]["host"]) if len(active) == 1 else None
        return str(agents[0]["host"]) if agents else None

    def ha_states(self) -> dict[str, str]:
        """``{host ns: ha_state}`` of the router's bindings."""
        return {str(a["host"]): str(a.get("ha_state", "active")) for a in self.l3_agents()}

    def gateway(self, ns: str | None) -> Host:
        return next(g for g in self.gateways if g.ns == ns)

    def other(self, host: Host) -> Host:
        return self.g2 if host is self.g1 else self.g1

    def active_gateway(self) -> Host:
        return self.gateway(wait_until(self.active_host, 15, 0.05, "an active gateway"))

    def agent_state(self, host: Host) -> dict[str, Any]:
        _status, body = self.lab.api("GET", f"/v2.0/agents/{self.agent_ids[host.ns]}")
        return dict(body["agent"])

    def usable(self, host: Host) -> bool:
        """The host's L3 agent is alive and reports its external link up."""
        state = self.agent_state(host)
        conf = state.get("configurations") or {}
        return bool(state.get("alive")) and conf.get("external_link_up") is True

    def internet_reachable(self, vm: VM | None = None) -> bool:
        return (vm or self.vm1).ping(self.topo.internet_ip, count=1, timeout=1)

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Both gateways usable and connected, both VMs reach the internet."""
        wait_until(lambda: all(self.usable(g) for g in self.gateways), timeout, 0.1,
                   "both L3 agents alive with their external link up")
        for g in self.gateways:
            g.wait_controller_connected(timeout)
        for vm in (self.vm1, self.vm2):
            wait_until(lambda vm=vm: self.internet_reachable(vm), timeout, 0.2,
                       f"{vm.name} -> internet")

    # --- failures -----------------------------------------------------------------------

    def break_(self, failure: Failure, host: Host) -> None:
        agent = self.l3[host.ns]
        if failure in (Failure.AGENT_KILL, Failure.HOST_DOWN):
            agent.kill(signal.SIGKILL)
        if failure is Failure.HOST_DOWN:
            host.stop_vswitchd()
        if failure in (Failure.LINK, Failure.EXT_CUT):
            host.cut_external()
        if failure is Failure.VANISH:
            host.vanish(agent.pid)
        if failure is Failure.SWITCH_KILL:
            host.kill_switch()
            agent.kill(signal.SIGKILL)
        if failure is Failure.MGMT_CUT:
            host.cut_management()

    def repair(self, failure: Failure, host: Host,
               order: ComeBackOrder = ComeBackOrder.PROCESSES_FIRST,
               wait_connected: bool = True) -> None:
        """Undo :meth:`break_` (the gateway comes back). With ``wait_connected`` it then
        waits until its switch is connected to the controller again, kicking it (see
        :meth:`Host.wait_controller_connected`); without, the switch reconnects after its
        own backoff (up to 8 s). The agent is not awaited."""
        agent = self.l3[host.ns]
        if failure in (Failure.HOST_DOWN, Failure.SWITCH_KILL):
            host.start_vswitchd()
        if failure in (Failure.LINK, Failure.EXT_CUT):
            host.restore_external()
        if failure is Failure.VANISH:
            host.come_back(order)
        if failure is Failure.MGMT_CUT:
            host.restore_management()
        if failure in (Failure.AGENT_KILL, Failure.HOST_DOWN, Failure.SWITCH_KILL):
            agent.start()
        if wait_connected:
            host.wait_controller_connected(20.0)

    def close(self) -> None:
        for g in self.gateways:
            if g.vanished:
                g.come_back()
        for agent in self.l3.values():
            agent.stop()


class HaUnsupported(RuntimeError):
    """The controller does not create HA routers (the ``ha`` attribute is not supported)."""
