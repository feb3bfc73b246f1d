"""A cloud lab for end-to-end tests: the namespace topology, a real controller, real OVS.

The controller runs in the topology's controller namespace, listening for OpenFlow on the
management bridge (198.18.0.1) and for the API/RPC on that namespace's loopback. The calling
thread enters the same namespace while the lab is open, so openstacksdk and RPC clients of the
test reach the controller at 127.0.0.1 without any address on the root namespace.

With ``controllers=N`` (and a PostgreSQL ``connection`` in the options) N controllers run
there on their own ports, every switch lists all of them, and the lab's API helpers talk to
:attr:`CloudLab.controller` (the first; :meth:`CloudLab.use` picks another).
"""

from __future__ import annotations

import contextlib
import json
import urllib.request
from pathlib import Path
from typing import Any

from tests.support.controller import ControllerProcess
from tests.support.heartbeat import HeartbeatAgent
from tests.topology import CONTROLLER_IP, Host, Topology, unique_prefix, wait_until

EXT_PHYSNET = "extnet"
EXT_CIDR = "203.0.113.0/24"


class CloudLab:
    def __init__(self, workdir: Path, options: dict[str, Any] | None = None,
                 prefix: str | None = None, controllers: int = 1) -> None:
        self.workdir = Path(workdir)
        self.prefix = prefix or unique_prefix("c")
        self.options = {"agent_down_time": 3, "heartbeat_flush_interval": 0.5,
                        **(options or {})}
        self.topo = Topology(self.prefix, self.workdir / "topo")
        self._stack = contextlib.ExitStack()
        self.n_controllers = controllers
        self.controllers: list[ControllerProcess] = []
        self.controller: ControllerProcess | None = None
        self.conn: Any = None
        self.agents: dict[str, HeartbeatAgent] = {}

    # --- lifecycle ----------------------------------------------------------------------

    def __enter__(self) -> CloudLab:
        self._stack.enter_context(self.topo)
        try:
            self._stack.enter_context(self.topo.netns(self.topo.ctl_ns))
            for index in range(self.n_controllers):
                controller = ControllerProcess(
                    self.workdir / ("controller" if index == 0 else f"controller{index}"),
                    options=self.options, of_host=CONTROLLER_IP)
                self.controllers.append(controller)
                self._stack.callback(controller.stop)
                controller.start()
            self.use(self.controllers[0])
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        for agent in self.agents.values():
            agent.stop()
        self._stack.close()

    def use(self, controller: ControllerProcess) -> None:
        """Send the lab's API calls to ``controller`` from now on."""
        self.controller = controller
        self.conn = controller.sdk()

    # --- building the topology ----------------------------------------------------------

    def add_host(self, name: str, gateway: bool = False) -> Host:
        assert self.controllers
        host = self.topo.add_host(name, gateway=gateway,
                                  of_port=[c.of_port for c in self.controllers])
        return host

    def wait_connected(self, *hosts: Host, timeout: float = 20.0) -> None:
        for host in hosts:
            # OVS backs off up to 8 s between attempts; one kick starts an attempt now, and
            # kicking again while an attempt is in progress would only restart it.
            host.wait_controller_connected(timeout, kick_every=9.0)

    def start_l3_agent(self, host: Host, interval: float = 1.0) -> HeartbeatAgent:
        """A simulated L3 agent heartbeating for ``host`` (its datapath id, ext0)."""
        assert self.controller is not None
        agent = HeartbeatAgent(
            ("127.0.0.1", self.controller.rpc_port), host=host.ns, agent_type="L3 agent",
            binary="ryu-sched-l3-agent",
            configurations={"datapath_id": host.dpid_hex, "external_port": "ext0",
                            "external_link_up": True, "routers": 0},
            interval=interval)
        agent.start()
        self.agents[host.ns] = agent
        return agent

    # --- API helpers --------------------------------------------------------------------

    def api(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        assert self.controller is not None
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.controller.url + path, data=data,
                                         method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                raw = response.read()
                return response.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as err:
            raw = err.read()
            return err.code, json.loads(raw) if raw else None

    def agent_id(self, host: Host, agent_type: str = "L3 agent") -> str:
        def find() -> str | None:
            _status, body = self.api("GET", f"/v2.0/agents?host={host.ns}")
            for agent in (body or {}).get("agents", []):
                if agent["agent_type"] == agent_type:
                    return str(agent["id"])
            return None

        return str(wait_until(find, 15, 0.1, f"{agent_type} of {host.name} registered"))

    def router_host(self, router_id: str) -> str | None:
        _status, body = self.api("GET", f"/v2.0/routers/{router_id}/l3-agents")
        agents = (body or {}).get("agents", [])
        return str(agents[0]["host"]) if agents else None

    def create_external_network(self) -> tuple[Any, Any]:
        net = self.conn.network.create_network(
            name="public", is_router_external=True, provider_network_type="flat",
            provider_physical_network=EXT_PHYSNET)
        subnet = self.conn.network.create_subnet(
            network_id=net.id, name="public-v4", ip_version=4, cidr=EXT_CIDR,
            gateway_ip=self.topo.ext_gateway_ip, is_dhcp_enabled=False,
            allocation_pools=[{"start": "203.0.113.10", "end": "203.0.113.99"}])
        return net, subnet

    def create_tenant_network(self, project: str, name: str, cidr: str,
                              dhcp: bool = False) -> tuple[Any, Any]:
        net = self.conn.network.create_network(name=name, project_id=project)
        subnet = self.conn.network.create_subnet(
            network_id=net.id, name=f"{name}-v4", ip_version=4, cidr=cidr,
            is_dhcp_enabled=dhcp, project_id=project)
        return net, subnet

    def create_port(self, network: Any, ip: str | None = None, **attrs: Any) -> Any:
        if ip is not None:
            attrs["fixed_ips"] = [{"ip_address": ip}]
        return self.conn.network.create_port(network_id=network.id,
                                             device_owner="compute:nova", **attrs)

    def port_ip(self, port: Any) -> str:
        return str(port.fixed_ips[0]["ip_address"])
