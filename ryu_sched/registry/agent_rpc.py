"""The agent-facing RPC methods (documented in docs/protocol.md).

DHCP ports are made through the port service, which sits above the registry (the
agent-scheduler service imports the registry): it is handed in as a :class:`DhcpPorts`
(``resources.agent_scheduler.DhcpPorts``) by whoever builds the component, so that the
registry never imports the service layer.

With an authenticated connection every method is limited to what the peer's hosts host
(:mod:`ryu_sched.registry.agent_access`).

``gateway_keepalive`` renews an L3 agent's gateway lease (only the leader grants them; the
grants are kept in memory by :class:`~ryu_sched.registry.gateway_leases.GatewayLeases`).
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from sqlalchemy import select

from ryu_sched.db import models
from ryu_sched.errors import NeutronError
from ryu_sched.registry.agent_access import AgentAccess
from ryu_sched.registry.gateway_leases import GatewayLeases
from ryu_sched.registry.kinds import SPECS
from ryu_sched.registry.registry import Registry
from ryu_sched.rpc.protocol import BadParams, Method, NotFound, RpcError
from ryu_sched.shared.vocabulary import (
    ROUTER_INTERFACE_OWNERS,
    AgentType,
    DeviceOwner,
    GatewayRpc,
    HostedKind,
)

LOG = logging.getLogger(__name__)


class DhcpPorts(Protocol):
    """The port service's DHCP-port operations (all as admin)."""

    def ensure(self, network_id: str, host: str, project_id: str) -> dict[str, Any]:
        """The DHCP port of the network for that host, created on first call."""

    def get(self, port_id: str) -> dict[str, Any]: ...

    def update(self, port_id: str, attrs: dict[str, Any]) -> dict[str, Any]: ...

    def release(self, registry: Registry, network_id: str, host: str) -> int:
        """Delete the host's DHCP port of a network no longer hosted there."""


#: What a DHCP agent reports of its port: ACTIVE once its dnsmasq serves, DOWN if it stops.
DHCP_PORT_STATUSES = ("ACTIVE", "DOWN")


def _args(params: list[Any], *types: type) -> list[Any]:
    if len(params) != len(types):
        raise BadParams(f"expected {len(types)} params, got {len(params)}")
    for i, (value, typ) in enumerate(zip(params, types, strict=True)):
        if type(value) is not typ:
            raise BadParams(f"param {i} must be {typ.__name__}")
    return params


class NotLeading(RpcError):
    type_name = GatewayRpc.NOT_LEADING.value


class AgentRpc:
    def __init__(self, registry: Registry, dhcp_ports: DhcpPorts,
                 leases: GatewayLeases | None = None) -> None:
        self.registry = registry
        self.dhcp_ports = dhcp_ports
        self.db = registry.db
        self.access = AgentAccess(registry)
        self.leases = leases if leases is not None else GatewayLeases()

    def methods(self) -> dict[str, Method]:
        return {
            "report_state": self.report_state,
            "ping": self.ping,
            GatewayRpc.KEEPALIVE.value: self.gateway_keepalive,
            "get_hosted_networks": self._hosted_method(HostedKind.NETWORK),
            "get_hosted_routers": self._hosted_method(HostedKind.ROUTER),
            "get_network_info": self.get_network_info,
            "get_router_info": self.get_router_info,
            "create_dhcp_port": self.create_dhcp_port,
            "update_dhcp_port": self.update_dhcp_port,
        }

    # --- liveness -----------------------------------------------------------------------

    def report_state(self, conn: Any, params: list[Any]) -> Any:
        if len(params) != 1:
            raise BadParams(f"report_state takes [agent_state], got {len(params)} params")
        state = params[0]
        if type(state) is dict:
            self.access.check_host(conn, state.get("host"))
        return self.registry.report_state(conn, state)

    def ping(self, conn: Any, params: list[Any]) -> Any:
        return "pong"

    def gateway_keepalive(self, conn: Any, params: list[Any]) -> dict[str, str]:
        """[host] -> renews the gateway lease of the L3 agent on ``host``: only the leader
        grants leases (a follower answers ``NotLeading``, and the agent tries the next
        controller). In memory, no database write."""
        (host,) = _args(params, str)
        self.access.check_host(conn, host)
        if not self.registry.leading:
            raise NotLeading("this controller does not lead: no gateway lease from here")
        rec = self.registry.agents.lookup(AgentType.L3, host)
        if rec is None:
            raise NotFound(f"no L3 agent on host {host[:255]!r} (it registers with "
                           "report_state)")
        self.leases.grant(rec.id, host, conn)
        return {"agent_id": rec.id}

    def connection_closed(self, conn: Any) -> None:
        """An agent connection closed (the endpoint's ``on_close``)."""
        self.registry.connection_closed(conn)
        self.leases.connection_closed(conn)

    # --- what an agent hosts ------------------------------------------------------------

    def _hosted_method(self, kind: HostedKind) -> Method:
        """``get_hosted_<kind>s``: [host] -> ids of what the agent of that type on that
        host hosts."""
        agent_type = SPECS[kind].agent_type

        def hosted(conn: Any, params: list[Any]) -> list[str]:
            (host,) = _args(params, str)
            self.access.check_host(conn, host)
            rec = self.registry.agents.lookup(agent_type, host)
            return self.registry.hosted_by(rec.id) if rec else []

        return hosted

    # --- full info ----------------------------------------------------------------------

    def get_network_info(self, conn: Any, params: list[Any]) -> dict[str, Any]:
        (network_id,) = _args(params, str)
        self.access.check_hosted(conn, HostedKind.NETWORK, network_id)
        with self.db.session() as session:
            net = session.scalar(select(models.Network).where(models.Network.id == network_id))
            if net is None:
                raise NotFound(f"network {network_id} not found")
            ports = session.scalars(select(models.Port).where(
                models.Port.network_id == network_id).order_by(models.Port.id)).all()
            info = network_dict(net)
            info["subnets"] = [subnet_dict(s) for s in net.subnets]
            info["ports"] = [port_dict(p) for p in ports]
        info["dhcp_agents"] = [{"agent_id": r.id, "host": r.host}
                               for r in self.registry.agents_hosting(HostedKind.NETWORK,
                                                                     network_id)]
        return info

    def get_router_info(self, conn: Any, params: list[Any]) -> dict[str, Any]:
        (router_id,) = _args(params, str)
        self.access.check_hosted(conn, HostedKind.ROUTER, router_id)
        with self.db.session() as session:
            rtr = session.scalar(select(models.Router).where(models.Router.id == router_id))
            if rtr is None:
                raise NotFound(f"router {router_id} not found")
            info = router_dict(rtr)
            rports = session.execute(select(models.RouterPort.port_id, models.RouterPort.port_type)
                                     .where(models.RouterPort.router_id == router_id)).all()
            port_ids = [p for p, _ in rports]
            ports = {p.id: p for p in session.scalars(
                select(models.Port).where(models.Port.id.in_(port_ids)))} if port_ids else {}
            subnet_ids = {ip.subnet_id for p in ports.values() for ip in p.fixed_ips}
            subnets = {s.id: subnet_dict(s) for s in session.scalars(
                select(models.Subnet).where(models.Subnet.id.in_(subnet_ids)))} \
                if subnet_ids else {}
            interfaces = []
            for port_id, port_type in rports:
                port = ports.get(port_id)
                if port is None or port.id == rtr.gw_port_id:
                    continue
                if port_type in ROUTER_INTERFACE_OWNERS or port.device_owner in \
                        ROUTER_INTERFACE_OWNERS:
                    entry = port_dict(port)
                    entry["subnets"] = [subnets[ip.subnet_id] for ip in port.fixed_ips
                                        if ip.subnet_id in subnets]
                    interfaces.append(entry)
            info["interfaces"] = interfaces
            gateway = None
            if rtr.gw_port_id:
                gw = ports.get(rtr.gw_port_id) or session.get(models.Port, rtr.gw_port_id)
                if gw is not None:
                    gateway = port_dict(gw)
                    gateway["subnets"] = [subnets.get(ip.subnet_id) or subnet_dict(
                        session.get(models.Subnet, ip.subnet_id)) for ip in gw.fixed_ips]
            info["gateway"] = gateway
            fips = session.scalars(select(models.FloatingIP).where(
                models.FloatingIP.router_id == router_id)).all()
            info["floatingips"] = [floatingip_dict(f) for f in fips]
        info["l3_agents"] = [{"agent_id": r.id, "host": r.host,
                              "datapath_id": r.datapath_id}
                             for r in self.registry.agents_hosting(HostedKind.ROUTER,
                                                                   router_id)]
        return info

    # --- DHCP ports ---------------------------------------------------------------------

    def create_dhcp_port(self, conn: Any, params: list[Any]) -> dict[str, Any]:
        """[network_id, host] -> the DHCP port of that network for that host (created on
        first call, returned as is afterwards)."""
        network_id, host = _args(params, str, str)
        self.access.check_dhcp_port_create(conn, network_id, host)
        try:
            return self._create_dhcp_port(network_id, host)
        except NeutronError as exc:
            raise RpcError(exc.message, exc.error_type) from None

    def _create_dhcp_port(self, network_id: str, host: str) -> dict[str, Any]:
        with self.db.session() as session:
            project_id = session.scalar(select(models.Network.project_id)
                                        .where(models.Network.id == network_id))
        if project_id is None:
            raise NotFound(f"network {network_id} not found")
        return dict(self.dhcp_ports.ensure(network_id, host, project_id or "admin"))

    def update_dhcp_port(self, conn: Any, params: list[Any]) -> dict[str, Any]:
        """[port_id, attrs] -> the updated port (only ports with device_owner network:dhcp)."""
        port_id, attrs = _args(params, str, dict)
        try:
            return self._update_dhcp_port(conn, port_id, attrs)
        except NeutronError as exc:
            raise RpcError(exc.message, exc.error_type) from None

    def _update_dhcp_port(self, conn: Any, port_id: str,
                          attrs: dict[str, Any]) -> dict[str, Any]:
        allowed = {"fixed_ips", "binding:host_id", "admin_state_up", "name", "device_id",
                   "status"}
        unknown = set(attrs) - allowed
        if unknown:
            raise BadParams(f"attributes not allowed: {sorted(map(str, unknown))}")
        if "status" in attrs and attrs["status"] not in DHCP_PORT_STATUSES:
            raise BadParams(f"status must be one of {list(DHCP_PORT_STATUSES)}")
        port = self.dhcp_ports.get(port_id)
        if port.get("device_owner") != DeviceOwner.DHCP:
            raise RpcError(f"port {port_id} is not a DHCP port", "NotADhcpPort")
        self.access.check_dhcp_port_update(conn, port, attrs)
        return dict(self.dhcp_ports.update(port_id, attrs))


# --- plain dict views of ORM rows (what agents receive) ------------------------------------

def network_dict(net: models.Network) -> dict[str, Any]:
    return {"id": net.id, "key": net.key, "name": net.name, "project_id": net.project_id,
            "admin_state_up": net.admin_state_up, "status": net.status, "mtu": net.mtu,
            "shared": net.shared, "router:external": net.router_external,
            "provider:network_type": net.network_type,
            "provider:physical_network": net.physical_network,
            "provider:segmentation_id": net.segmentation_id,
            "availability_zone_hints": list(net.availability_zone_hints or [])}


def subnet_dict(sub: models.Subnet | None) -> dict[str, Any] | None:
    if sub is None:
        return None
    return {"id": sub.id, "network_id": sub.network_id, "name": sub.name,
            "ip_version": sub.ip_version, "cidr": sub.cidr, "gateway_ip": sub.gateway_ip,
            "enable_dhcp": sub.enable_dhcp, "allocation_pools": list(sub.allocation_pools or []),
            "dns_nameservers": list(sub.dns_nameservers or []),
            "host_routes": list(sub.host_routes or [])}


def port_dict(port: models.Port) -> dict[str, Any]:
    return {"id": port.id, "network_id": port.network_id, "name": port.name,
            "mac_address": port.mac_address, "admin_state_up": port.admin_state_up,
            "status": port.status, "device_owner": port.device_owner,
            "device_id": port.device_id, "binding:host_id": port.binding_host_id,
            "port_security_enabled": port.port_security_enabled,
            "fixed_ips": [{"subnet_id": ip.subnet_id, "ip_address": ip.ip_address}
                          for ip in port.fixed_ips]}


def router_dict(rtr: models.Router) -> dict[str, Any]:
    return {"id": rtr.id, "key": rtr.key, "name": rtr.name, "project_id": rtr.project_id,
            "admin_state_up": rtr.admin_state_up, "status": rtr.status,
            "enable_snat": rtr.enable_snat, "gw_port_id": rtr.gw_port_id,
            "availability_zone_hints": list(rtr.availability_zone_hints or [])}


def floatingip_dict(fip: models.FloatingIP) -> dict[str, Any]:
    return {"id": fip.id, "floating_ip_address": fip.floating_ip_address,
            "floating_network_id": fip.floating_network_id,
            "floating_port_id": fip.floating_port_id, "fixed_port_id": fip.fixed_port_id,
            "fixed_ip_address": fip.fixed_ip_address, "router_id": fip.router_id,
            "status": fip.status}
