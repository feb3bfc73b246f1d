"""Build the flows layer's :class:`flows.model.Snapshot` from the database and the switches.

Two steps, so that the expensive one runs only when the model changed: :func:`read_model`
reads the database into a :class:`Model` (plain frozen dataclasses; ORM objects stay here),
:func:`assemble` adds what the connected switches report (their ports, hence where each port
is) and is cheap.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session

from ryu_sched.db import models as db
from ryu_sched.flows import model as fm
from ryu_sched.programmer import firewall_model
from ryu_sched.shared.vocabulary import AgentType, HaState


def parse_dpid(value: object) -> int | None:
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value:
        try:
            return int(value, 16)
        except ValueError:
            return None
    return None


@dataclasses.dataclass(frozen=True)
class Recorded:
    """A port's location and status as the database has them."""

    dpid: int | None
    status: str


@dataclasses.dataclass(frozen=True)
class Model:
    """What the database says, in the flows layer's vocabulary."""

    networks: tuple[fm.Network, ...]
    subnets: tuple[fm.Subnet, ...]
    ports: tuple[fm.Port, ...]
    routers: tuple[fm.Router, ...]
    floating_ips: tuple[fm.FloatingIP, ...]
    security_groups: tuple[fm.SecurityGroup, ...]
    #: dpid -> the external interface its L3 agent reports
    external_ports: Mapping[int, str]
    #: port id -> where the port was last recorded (``ports.bound_dpid``, ``status``)
    recorded: Mapping[str, Recorded]
    #: tap interface name -> port id
    tap_to_port: Mapping[str, str]

    def with_recorded(self, changes: Mapping[str, Recorded]) -> Model:
        """This model after ``changes`` were written to the database."""
        return dataclasses.replace(self, recorded={**self.recorded, **changes})


def build_snapshot(session: Session, switch_ports: Mapping[int, Mapping[str, int]],
                   uplinks: Mapping[str, str], neighbors: Mapping[str, str]) -> fm.Snapshot:
    """``switch_ports``: dpid -> {interface name: ofport} of every connected switch that has
    been read; ports bound to other switches keep their recorded location."""
    return assemble(read_model(session, neighbors), switch_ports, uplinks)


def standby_dpids(host: int | None, standbys: Iterable[int]) -> tuple[int, ...]:
    """The switches where a router waits on standby: sorted, without its active switch (two
    agents on one switch would make it both)."""
    return tuple(sorted({d for d in standbys if d != host}))


@dataclasses.dataclass
class Placement:
    """Where a router is: the switch of its active binding, those of its standby bindings."""

    host: int | None = None
    standbys: list[int] = dataclasses.field(default_factory=list)


def placements(bindings: Iterable[db.RouterL3AgentBinding],
               l3_agent: Callable[[str], db.Agent | None]) -> dict[str, Placement]:
    """Router id -> its placement, from its bindings and their L3 agents' ``datapath_id``
    (``l3_agent``: the L3 agent of an id, or None). A binding whose agent is gone, is not an
    L3 agent or names no switch places nothing."""
    result: dict[str, Placement] = {}
    for binding in bindings:
        agent = l3_agent(binding.l3_agent_id)
        if agent is None or agent.agent_type != AgentType.L3:
            continue
        dpid = parse_dpid((agent.configurations or {}).get("datapath_id"))
        if dpid is None:
            continue
        placement = result.setdefault(binding.router_id, Placement())
        if binding.ha_state == HaState.ACTIVE:
            placement.host = dpid
        else:
            placement.standbys.append(dpid)
    return result


def read_model(session: Session, neighbors: Mapping[str, str]) -> Model:
    """The database's networks, subnets, ports (with their security groups and allowed
    address pairs), routers (placed on their L3 agent's switch, gateways with the upstream
    MAC from ``neighbors``), floating IPs and security groups."""
    networks = session.scalars(select(db.Network)).all()
    subnets = session.scalars(select(db.Subnet)).all()
    ports = session.scalars(select(db.Port)).all()
    routers = session.scalars(select(db.Router)).all()
    router_ports = session.scalars(select(db.RouterPort)).all()
    fips = session.scalars(select(db.FloatingIP)).all()
    bindings = session.scalars(select(db.RouterL3AgentBinding)).all()
    l3_agents = {a.id: a for a in session.scalars(
        select(db.Agent).where(db.Agent.agent_type == AgentType.L3)).all()}

    subnet_by_id = {s.id: s for s in subnets}
    port_by_id = {p.id: p for p in ports}

    placed = placements(bindings, l3_agents.get)
    nowhere = Placement()

    ports_of_router: dict[str, list[db.RouterPort]] = {}
    for rp in router_ports:
        ports_of_router.setdefault(rp.router_id, []).append(rp)

    snap_networks = [n for n in map(network_of, networks) if n is not None]
    snap_routers = []
    for router in routers:
        where = placed.get(router.id, nowhere)
        row = router_of(router, ports_of_router.get(router.id, []), port_by_id, subnet_by_id,
                        where.host, neighbors, where.standbys)
        if row is not None:
            snap_routers.append(row)
    snap_fips = [f for f in map(floating_ip_of, fips) if f is not None]

    return Model(
        networks=tuple(snap_networks), subnets=tuple(map(subnet_of, subnets)),
        ports=tuple(map(port_of, ports)),
        routers=tuple(snap_routers), floating_ips=tuple(snap_fips),
        security_groups=firewall_model.security_groups(session),
        external_ports=external_ports_of(l3_agents.values()),
        recorded={p.id: Recorded(p.bound_dpid, p.status) for p in ports},
        tap_to_port={fm.tap_name(p.id): p.id for p in ports})


# --- one row at a time (read_model, and the incremental engine) ---------------------------

def network_of(net: db.Network) -> fm.Network | None:
    """None for a VLAN network without a segment (it has no flows)."""
    ntype = net.network_type if net.network_type in ("vlan", "flat") else "vlan"
    if ntype == "vlan" and not net.segmentation_id:
        return None
    return fm.Network(
        id=net.id, key=net.key, tenant_id=net.project_id, network_type=ntype,
        physical_network=net.physical_network, segmentation_id=net.segmentation_id,
        external=net.router_external)


def subnet_of(s: db.Subnet) -> fm.Subnet:
    return fm.Subnet(id=s.id, network_id=s.network_id, cidr=s.cidr, gateway_ip=s.gateway_ip)


def port_of(p: db.Port) -> fm.Port:
    return fm.Port(
        id=p.id, network_id=p.network_id, mac=p.mac_address.lower(),
        fixed_ips=tuple((a.subnet_id, a.ip_address) for a in p.fixed_ips),
        device_owner=p.device_owner, device_id=p.device_id,
        port_security_enabled=p.port_security_enabled, admin_state_up=p.admin_state_up,
        **firewall_model.port_fields(p))


def floating_ip_of(f: db.FloatingIP) -> fm.FloatingIP | None:
    """None while it is not associated (it has no flows)."""
    if not (f.fixed_port_id and f.router_id and f.fixed_ip_address):
        return None
    return fm.FloatingIP(
        id=f.id, floating_ip=f.floating_ip_address, floating_network_id=f.floating_network_id,
        router_id=f.router_id, fixed_ip=f.fixed_ip_address, port_id=f.fixed_port_id)


def external_ports_of(l3_agents: Iterable[db.Agent]) -> dict[int, str]:
    """dpid -> the external interface each L3 agent reports."""
    external_ports: dict[int, str] = {}
    for agent in l3_agents:
        conf = agent.configurations or {}
        dpid = parse_dpid(conf.get("datapath_id"))
        if dpid is not None and conf.get("external_port"):
            external_ports[dpid] = str(conf["external_port"])
    return external_ports


def router_of(router: db.Router, router_ports: Iterable[db.RouterPort],
              port_by_id: Mapping[str, db.Port], subnet_by_id: Mapping[str, db.Subnet],
              host_dpid: int | None, neighbors: Mapping[str, str],
              standbys: Iterable[int] = ()) -> fm.Router | None:
    """None for a router that is down (or whose key does not fit the flows). ``host_dpid``:
    the switch of its active binding; ``standbys``: those of its standby bindings."""
    if not router.admin_state_up or router.key >= 1 << 16:
        return None
    interfaces = []
    gateway = None
    for rp in router_ports:
        port = port_by_id.get(rp.port_id)
        if port is None or not port.fixed_ips:
            continue
        alloc = port.fixed_ips[0]
        subnet = subnet_by_id.get(alloc.subnet_id)
        if subnet is None:
            continue
        if rp.port_type == fm.OWNER_ROUTER_GATEWAY:
            gateway = fm.RouterGateway(
                port_id=port.id, network_id=port.network_id, ip=alloc.ip_address,
                mac=port.mac_address.lower(), cidr=subnet.cidr,
                upstream_ip=subnet.gateway_ip,
                upstream_mac=neighbors.get(subnet.gateway_ip or ""),
                enable_snat=router.enable_snat)
        else:
            for alloc in port.fixed_ips:
                subnet = subnet_by_id.get(alloc.subnet_id)
                if subnet is None:
                    continue
                interfaces.append(fm.RouterInterface(
                    port_id=port.id, subnet_id=subnet.id, network_id=port.network_id,
                    ip=alloc.ip_address, mac=port.mac_address.lower(), cidr=subnet.cidr))
    interfaces.sort(key=lambda i: (i.subnet_id, i.port_id))
    return fm.Router(
        id=router.id, key=router.key, tenant_id=router.project_id,
        interfaces=tuple(interfaces), gateway=gateway, host_dpid=host_dpid,
        standby_dpids=standby_dpids(host_dpid, standbys),
        routes=tuple((r.destination, r.nexthop) for r in router.route_rows))


def assemble(model: Model, switch_ports: Mapping[int, Mapping[str, int]],
             uplinks: Mapping[str, str],
             port_locations: Mapping[str, int] | None = None) -> fm.Snapshot:
    """The snapshot for ``model`` with these switches connected and read
    (``port_locations``: :func:`locations` of the same, when already computed)."""
    return fm.Snapshot(networks=model.networks, subnets=model.subnets, ports=model.ports,
                       routers=model.routers, floating_ips=model.floating_ips,
                       security_groups=model.security_groups,
                       switches=[fm.Switch(dpid=dpid, ports=dict(switch_ports[dpid]),
                                           uplinks=dict(uplinks),
                                           external_port=model.external_ports.get(dpid))
                                 for dpid in sorted(switch_ports)],
                       port_locations=(locations(model, switch_ports)
                                       if port_locations is None else port_locations))


def locations(model: Model, switch_ports: Mapping[int, Mapping[str, int]]) -> dict[str, int]:
    """Where each port is: seen live on a connected switch, else where it was last seen
    (``ports.bound_dpid``). A switch that has not reconnected yet after a controller restart
    must not make its ports vanish from every other switch's tables."""
    result: dict[str, int] = {
        port_id: rec.dpid for port_id, rec in model.recorded.items()
        if rec.dpid is not None and rec.dpid not in switch_ports}
    for dpid in sorted(switch_ports):
        for name in switch_ports[dpid]:
            port_id = model.tap_to_port.get(name)
            if port_id is not None:
                result[port_id] = dpid
    return result
