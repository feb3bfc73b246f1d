"""Two gateways, one router, and the ways a gateway fails: shared by bench/failover.py and
tests/e2e/test_ha_failover.py.

On a :class:`tests.support.lab.CloudLab`: compute host h1, gateway hosts g1 and g2 (ext0 on
the internet namespace's ``extnet``), a real L3 agent process on each gateway, the external
network, the internet namespace's echo server (UDP/TCP port 7), and routers
(:class:`RouterUnderTest`, ``ha`` as asked) each with its own tenant subnet and two VMs on h1:
one reaching the internet through the router's SNAT, one with a floating IP. The bench's
router is r1 on 10.0.0.0/24 (VMs ``r1snat`` 10.0.0.11 and ``r1fip`` 10.0.0.12).

:class:`Failure` names the ways a gateway is broken (issue 12) and :meth:`GatewayLab.break_`
/ :meth:`GatewayLab.repair` do and undo them on a gateway host.
"""

from __future__ import annotations

import enum
import signal
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ryu_sched.shared.vocabulary import COOKIE_KIND_SHIFT, ROUTER_ACTIVE_COOKIE
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


@dataclass(frozen=True)
class RouterUnderTest:
    """A router with its gateway on the external network, one tenant subnet behind it, and
    two VMs on h1: ``snat_vm`` reaches the internet through the router's SNAT, ``fip_vm``
    through its floating IP."""

    name: str
    id: str
    ha: bool
    ip: str                 # the router's external (gateway) IP
    snat_vm: VM
    fip_vm: VM
    fip_ip: str

    @property
    def active_cookie(self) -> int:
        """The cookie of the router's active-only flows: kind ROUTER_ACTIVE, ident the low
        56 bits of the router id (``flows/cookies.py``)."""
        ident_mask = (1 << COOKIE_KIND_SHIFT) - 1
        return ROUTER_ACTIVE_COOKIE | (uuid.UUID(self.id).int & ident_mask)


class GatewayLab:
    def __init__(self, lab: CloudLab, workdir: Path, *, ha: bool | None = False,
                 report_interval: float = 1.0, code_root: Path = REPO_ROOT) -> None:
        """``ha``: build router r1 (net-a 10.0.0.0/24, vm1 and vm2) with this ``ha``
        attribute; None: no router yet (:meth:`add_router`)."""
        assert lab.controller is not None
        self.lab = lab
        self.topo = lab.topo
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
        self.server: EchoServer = self.topo.internet.start_server(ECHO_PORT)
        self.routers: list[RouterUnderTest] = []
        if ha is not None:
            self.add_router("r1", ha, 0)

    @property
    def router(self) -> RouterUnderTest:
        """The first router (the bench's)."""
        return self.routers[0]

    def add_router(self, name: str, ha: bool, index: int) -> RouterUnderTest:
        """Router ``name`` serving ``10.<index>.0.0/24`` (tenant network ``net-<name>``) with
        VMs ``<name>snat`` (.11) and ``<name>fip`` (.12, with a floating IP) on h1.

        Raises :class:`HaUnsupported` when ``ha`` is asked for and the controller refuses it.
        """
        lab, conn = self.lab, self.lab.conn
        cidr = f"10.{index}.0.0/24"
        base = cidr.rsplit(".", 2)[0]
        net, subnet = lab.create_tenant_network("gw", f"net-{name}", cidr)
        ports = [lab.create_port(net, f"{base}.0.{n}", project_id="gw") for n in (11, 12)]
        vms = [self.topo.add_vm(self.h1, f"{name}{kind}", port.id, port.mac_address,
                                f"{base}.0.{n}/24", f"{base}.0.1")
               for kind, port, n in (("snat", ports[0], 11), ("fip", ports[1], 12))]
        router = self._create_router(name, ha)
        conn.network.add_interface_to_router(router["id"], subnet_id=subnet.id)
        fip = conn.network.create_ip(floating_network_id=self.ext_net.id, port_id=ports[1].id)
        made = RouterUnderTest(
            name=name, id=router["id"], ha=ha,
            ip=router["external_gateway_info"]["external_fixed_ips"][0]["ip_address"],
            snat_vm=vms[0], fip_vm=vms[1], fip_ip=fip.floating_ip_address)
        self.routers.append(made)
        wait_until(lambda: self.active_host(made), 15, 0.1, f"router {name} scheduled")
        return made

    def _create_router(self, name: str, ha: bool) -> dict[str, Any]:
        body: dict[str, Any] = {"name": name, "project_id": "gw",
                                "external_gateway_info": {"network_id": self.ext_net.id}}
        if ha:
            body["ha"] = True
        status, reply = self.lab.api("POST", "/v2.0/routers", {"router": body})
        if status != 201:
            raise HaUnsupported(f"creating router {name} (ha={ha}) failed: {status} {reply}")
        router = dict(reply["router"])
        if ha and router.get("ha") is not True:
            raise HaUnsupported(f"the controller ignored ha=true: {router}")
        return router

    # --- what the controller says -------------------------------------------------------

    def l3_agents(self, router: RouterUnderTest | None = None) -> list[dict[str, Any]]:
        """``GET /v2.0/routers/{id}/l3-agents`` (HA: every binding, with ``ha_state``)."""
        router = router or self.router
        _status, body = self.lab.api("GET", f"/v2.0/routers/{router.id}/l3-agents")
        return list((body or {}).get("agents", []))

    def active_host(self, router: RouterUnderTest | None = None) -> str | None:
        """The host namespace where the router is active: the agent whose ``ha_state`` is
        ``active``, or (a router without HA) its only agent."""
        agents = self.l3_agents(router)
        if any("ha_state" in a for a in agents):
            active = [a for a in agents if a.get("ha_state") == "active"]
            return str(active[0]["host"]) if len(active) == 1 else None
        return str(agents[0]["host"]) if agents else None

    def ha_states(self, router: RouterUnderTest | None = None) -> dict[str, str]:
        """``{host ns: ha_state}`` of the router's bindings."""
        return {str(a["host"]): str(a.get("ha_state", "active"))
                for a in self.l3_agents(router)}

    def gateway(self, ns: str | None) -> Host:
        return next(g for g in self.gateways if g.ns == ns)

    def other(self, host: Host) -> Host:
        return self.g2 if host is self.g1 else self.g1

    def active_gateway(self, router: RouterUnderTest | None = None) -> Host:
        return self.gateway(wait_until(lambda: self.active_host(router), 15, 0.05,
                                       "an active gateway"))

    def agent_state(self, host: Host) -> dict[str, Any]:
        _status, body = self.lab.api("GET", f"/v2.0/agents/{self.agent_ids[host.ns]}")
        return dict(body["agent"])

    def usable(self, host: Host) -> bool:
        """The host's L3 agent is alive and reports its external link up."""
        state = self.agent_state(host)
        conf = state.get("configurations") or {}
        return bool(state.get("alive")) and conf.get("external_link_up") is True

    def internet_reachable(self, vm: VM) -> bool:
        return vm.ping(self.topo.internet_ip, count=1, timeout=1)

    def tcp_works(self, vm: VM) -> bool:
        """A fresh TCP connection from ``vm`` to the echo server gets its echo."""
        return vm.tcp_request(self.topo.internet_ip, ECHO_PORT, b"ready", timeout=2) == b"ready"

    def wait_ready(self, timeout: float = 30.0,
                   routers: Sequence[RouterUnderTest] | None = None) -> dict[str, float]:
        """Both gateways usable and connected, the VMs of ``routers`` (default: all) reach
        the internet (ping and a TCP echo). Returns how long each step waited, by step (each
        has ``timeout``)."""
        steps: dict[str, float] = {}

        def step(what: str, predicate: Callable[[], object]) -> None:
            started = time.monotonic()
            wait_until(predicate, timeout, 0.1, what)
            steps[what] = time.monotonic() - started

        step("L3 agents alive, external links up",
             lambda: all(self.usable(g) for g in self.gateways))
        for g in self.gateways:
            started = time.monotonic()
            g.wait_controller_connected(timeout)
            steps[f"{g.name} connected"] = time.monotonic() - started
        for router in self.routers if routers is None else routers:
            for vm in (router.snat_vm, router.fip_vm):
                step(f"{vm.name} ping", lambda vm=vm: self.internet_reachable(vm))
                step(f"{vm.name} TCP", lambda vm=vm: self.tcp_works(vm))
        return steps

    def active_flows(self, host: Host, router: RouterUnderTest | None = None) -> list[str]:
        """The router's active-only flows (HA cookie) installed on ``host``'s switch."""
        router = router or self.router
        return host.dump_flows_by_cookie(router.active_cookie)

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
