"""The service layer without HTTP: admin-context calls and the typed-event contract."""

from __future__ import annotations

import pytest

from ryu_sched import errors
from ryu_sched.config import Settings
from ryu_sched.db import Database
from ryu_sched.events import (
    Action,
    Event,
    FloatingIpChanged,
    NetworkChanged,
    PortChanged,
    RouterGatewayChanged,
    RouterInterfaceChanged,
    SubnetChanged,
    from_wire,
)
from ryu_sched.resources import (
    admin_context,
    floatingips,
    listing,
    networks,
    ports,
    routers,
    subnets,
)
from ryu_sched.services import Services


@pytest.fixture
def services():
    db = Database("sqlite://")
    db.create_schema()
    svc = Services(settings=Settings(connection="sqlite://"), db=db)
    svc.events = []  # type: ignore[attr-defined]
    svc.bus.subscribe(svc.events.append)  # type: ignore[attr-defined]
    yield svc
    db.dispose()


def events(svc):
    return [(type(e).__name__, getattr(e, "action", None)) for e in svc.events]


def test_service_functions_and_event_contract(services):
    ctx = admin_context()
    ext = networks.create_network(services, ctx, {"router:external": True,
                                                  "provider:network_type": "flat",
                                                  "provider:physical_network": "extnet"})
    subnets.create_subnet(services, ctx, {"network_id": ext["id"], "cidr": "172.24.4.0/24"})
    net = networks.create_network(services, ctx, {"name": "n"})
    sub = subnets.create_subnet(services, ctx, {"network_id": net["id"],
                                                "cidr": "10.0.0.0/24"})
    assert networks.get_network(services, ctx, net["id"])["subnets"] == [sub["id"]]
    assert subnets.list_subnets(services, ctx, {"network_id": net["id"]}) == [sub]

    services.events.clear()
    dhcp = ports.create_port(services, ctx, {"network_id": net["id"],
                                             "device_owner": "network:dhcp",
                                             "device_id": "dhcp-h1",
                                             "binding:host_id": "h1"})
    event = services.events[-1]
    assert isinstance(event, PortChanged)
    assert (event.action, event.port_id, event.network_id) == (Action.CREATE, dhcp["id"],
                                                               net["id"])
    assert event.device_owner == "network:dhcp"
    assert event.fixed_ips == ((sub["id"], dhcp["fixed_ips"][0]["ip_address"]),)
    updated = ports.update_port(services, ctx, dhcp["id"], {"binding:host_id": "h2"})
    assert updated["binding:host_id"] == "h2"
    assert services.events[-1].changed == ("binding:host_id",)
    assert ports.get_port(services, ctx, dhcp["id"]) == updated
    assert ports.list_ports(services, ctx, {"device_owner": "network:dhcp"}) == [updated]

    router = routers.create_router(services, ctx, {"name": "r"})
    services.events.clear()
    routers.update_router(services, ctx, router["id"],
                          {"external_gateway_info": {"network_id": ext["id"]}})
    gateway = services.events[-1]
    assert isinstance(gateway, RouterGatewayChanged) and gateway.is_set
    assert gateway.network_id == ext["id"] and gateway.router_id == router["id"]
    info = routers.add_router_interface(services, ctx, router["id"], {"subnet_id": sub["id"]})
    last = services.events[-1]
    assert last == RouterInterfaceChanged(router["id"], True, info["port_id"], net["id"],
                                          (sub["id"],))
    assert routers.get_router(services, ctx, router["id"])["external_gateway_info"]

    vm = ports.create_port(services, ctx, {"network_id": net["id"]})
    fip = floatingips.create_floatingip(services, ctx, {"floating_network_id": ext["id"],
                                                        "port_id": vm["id"]})
    assert isinstance(services.events[-1], FloatingIpChanged)
    assert services.events[-1].router_id == router["id"]
    floatingips.delete_floatingip(services, ctx, fip["id"])
    routers.remove_router_interface(services, ctx, router["id"], {"subnet_id": sub["id"]})
    assert services.events[-1].added is False
    routers.update_router(services, ctx, router["id"], {"external_gateway_info": None})
    assert services.events[-1] == RouterGatewayChanged(router["id"])

    # A network with only its DHCP port left can be deleted; the port goes with it.
    ports.delete_port(services, ctx, vm["id"])
    services.events.clear()
    networks.delete_network(services, ctx, net["id"])
    assert events(services) == [("PortChanged", Action.DELETE),
                                ("SubnetChanged", Action.DELETE),
                                ("NetworkChanged", Action.DELETE)]
    assert isinstance(services.events[-1], NetworkChanged)
    assert isinstance(services.events[-2], SubnetChanged)
    with pytest.raises(errors.PortNotFound):
        ports.get_port(services, ctx, dhcp["id"])


def _router_with_gateway(services, ctx, ext, sub):
    router = routers.create_router(services, ctx, {})
    routers.update_router(services, ctx, router["id"],
                          {"external_gateway_info": {"network_id": ext["id"]}})
    routers.add_router_interface(services, ctx, router["id"], {"subnet_id": sub["id"]})
    return router


def test_floating_ip_leaving_a_router_names_that_router(services):
    """A floating IP that moves to another router, or is released because its port goes,
    names the router it left, so that router's L3 agent is told (it used to be forgotten)."""
    ctx = admin_context()
    ext = networks.create_network(services, ctx, {"router:external": True,
                                                  "provider:network_type": "flat",
                                                  "provider:physical_network": "extnet"})
    subnets.create_subnet(services, ctx, {"network_id": ext["id"], "cidr": "172.24.4.0/24"})
    nets = [networks.create_network(services, ctx, {}) for _ in range(2)]
    subs = [subnets.create_subnet(services, ctx, {"network_id": n["id"],
                                                  "cidr": f"10.0.{i}.0/24"})
            for i, n in enumerate(nets)]
    r1, r2 = (_router_with_gateway(services, ctx, ext, s) for s in subs)
    vm1, vm2 = (ports.create_port(services, ctx, {"network_id": n["id"]}) for n in nets)
    fip = floatingips.create_floatingip(services, ctx, {"floating_network_id": ext["id"],
                                                        "port_id": vm1["id"]})
    services.events.clear()
    floatingips.update_floatingip(services, ctx, fip["id"], {"port_id": vm2["id"]})
    moved = services.events[-1]
    assert isinstance(moved, FloatingIpChanged)
    assert (moved.router_id, moved.previous_router_id) == (r2["id"], r1["id"])
    assert set(moved.routers) == {r1["id"], r2["id"]}
    services.events.clear()
    ports.delete_port(services, ctx, vm2["id"])
    released = next(e for e in services.events if isinstance(e, FloatingIpChanged))
    assert (released.router_id, released.previous_router_id) == (None, r2["id"])
    assert released.routers == (r2["id"],)


def test_every_event_survives_its_wire_form(services):
    """Events are what several controllers will exchange: each one the service layer
    publishes comes back equal from its (JSON-compatible) wire form."""
    import json

    ctx = admin_context()
    ext = networks.create_network(services, ctx, {"router:external": True,
                                                  "provider:network_type": "flat",
                                                  "provider:physical_network": "extnet"})
    subnets.create_subnet(services, ctx, {"network_id": ext["id"], "cidr": "172.24.4.0/24"})
    net = networks.create_network(services, ctx, {})
    sub = subnets.create_subnet(services, ctx, {"network_id": net["id"], "cidr": "10.0.0.0/24"})
    router = _router_with_gateway(services, ctx, ext, sub)
    vm = ports.create_port(services, ctx, {"network_id": net["id"]})
    fip = floatingips.create_floatingip(services, ctx, {"floating_network_id": ext["id"],
                                                        "port_id": vm["id"]})
    floatingips.delete_floatingip(services, ctx, fip["id"])
    routers.remove_router_interface(services, ctx, router["id"], {"subnet_id": sub["id"]})
    seen: list[Event] = list(services.events)
    assert {type(e) for e in seen} >= {NetworkChanged, SubnetChanged, PortChanged,
                                       RouterGatewayChanged, RouterInterfaceChanged,
                                       FloatingIpChanged}
    for event in seen:
        assert from_wire(json.loads(json.dumps(event.to_wire()))) == event
    with pytest.raises(ValueError):
        from_wire({"event": "no-such-event"})
    with pytest.raises(ValueError):
        from_wire({"event": "port", "action": "create"})


def test_failed_writes_publish_nothing(services):
    ctx = admin_context()
    net = networks.create_network(services, ctx, {})
    services.events.clear()
    with pytest.raises(errors.BadRequest):
        subnets.create_subnet(services, ctx, {"network_id": net["id"], "cidr": "10.0.0.1/24"})
    with pytest.raises(errors.NetworkNotFound):
        ports.create_port(services, ctx, {"network_id": "00000000-0000-4000-8000-000000000000"})
    assert services.events == []


def test_lists_of_thousands_of_objects_take_a_constant_number_of_queries(services):
    """No N+1: listing 2,000 networks or ports costs a few SQL statements per batch of
    rows (subnet ids, tags), not one per row (speed itself is measured in bench/, not
    asserted here)."""
    from sqlalchemy import event


    ctx = admin_context()
    net = networks.create_network(services, ctx, {})
    subnets.create_subnet(services, ctx, {"network_id": net["id"], "cidr": "10.0.0.0/20"})
    with services.db.session() as session:
        from ryu_sched.db.models import IPAllocation, Network, Port

        for i in range(2000):
            session.add(Network(name=f"n{i}", segmentation_id=None, network_type="flat",
                                physical_network=f"p{i}"))
        session.flush()
        sub_id = subnets.list_subnets(services, ctx)[0]["id"]
        for i in range(2000):
            port = Port(network_id=net["id"], mac_address=f"fa:16:3e:00:{i // 256:02x}:"
                                                          f"{i % 256:02x}")
            session.add(port)
            session.flush()
            session.add(IPAllocation(port_id=port.id, subnet_id=sub_id,
                                     network_id=net["id"], ip_address=f"10.0.{8 + i // 250}."
                                                                      f"{1 + i % 250}"))
    statements: list[str] = []

    def count(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
        statements.append(statement)

    event.listen(services.db.engine, "before_cursor_execute", count)
    try:
        assert len(networks.list_networks(services, ctx)) == 2001
        assert len(statements) <= 2 * -(-2001 // listing.BATCH) + 3, len(statements)
        statements.clear()
        assert len(ports.list_ports(services, ctx, {"network_id": net["id"]})) == 2000
        # rows are read in batches of listing.BATCH, each loading its ports' fixed IPs,
        # security groups and address pairs in one statement apiece: a few per batch,
        # never one per port
        batches = -(-2000 // listing.BATCH)
        assert len(statements) <= 2 + 4 * batches, len(statements)
    finally:
        event.remove(services.db.engine, "before_cursor_execute", count)
    new = ports.create_port(services, ctx, {"network_id": net["id"]})
    assert new["fixed_ips"][0]["ip_address"] == "10.0.0.2"
