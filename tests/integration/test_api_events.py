"""The service layer without HTTP: admin-context calls and the ModelEvent contract."""

from __future__ import annotations

import pytest

from ryu_sched import errors
from ryu_sched.config import Settings
from ryu_sched.db import Database
from ryu_sched.events import ModelEvent
from ryu_sched.resources import (
    admin_context,
    floatingips,
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


def events(svc, resource=None):
    return [(e.resource, e.action) for e in svc.events
            if resource is None or e.resource == resource]


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
    assert isinstance(event, ModelEvent)
    assert (event.resource, event.action, event.resource_id) == ("port", "create", dhcp["id"])
    assert event.data["network_id"] == net["id"]
    assert event.data["device_owner"] == "network:dhcp"
    assert event.data["binding_host_id"] == "h1"
    updated = ports.update_port(services, ctx, dhcp["id"], {"binding:host_id": "h2"})
    assert updated["binding:host_id"] == "h2"
    assert services.events[-1].data["changed"] == ["binding:host_id"]
    assert ports.get_port(services, ctx, dhcp["id"]) == updated
    assert ports.list_ports(services, ctx, {"device_owner": "network:dhcp"}) == [updated]

    router = routers.create_router(services, ctx, {"name": "r"})
    services.events.clear()
    routers.update_router(services, ctx, router["id"],
                          {"external_gateway_info": {"network_id": ext["id"]}})
    assert services.events[-1].resource == "router"
    assert services.events[-1].data["gateway"] is True
    info = routers.add_router_interface(services, ctx, router["id"], {"subnet_id": sub["id"]})
    last = services.events[-1]
    assert (last.resource, last.action) == ("router", "update")
    assert last.data["interface"] == "add" and last.data["subnet_id"] == sub["id"]
    assert last.data["port_id"] == info["port_id"]
    assert routers.get_router(services, ctx, router["id"])["external_gateway_info"]

    vm = ports.create_port(services, ctx, {"network_id": net["id"]})
    fip = floatingips.create_floatingip(services, ctx, {"floating_network_id": ext["id"],
                                                        "port_id": vm["id"]})
    assert services.events[-1].resource == "floatingip"
    assert services.events[-1].data["router_id"] == router["id"]
    floatingips.delete_floatingip(services, ctx, fip["id"])
    routers.remove_router_interface(services, ctx, router["id"], {"subnet_id": sub["id"]})
    assert services.events[-1].data["interface"] == "remove"
    routers.update_router(services, ctx, router["id"], {"external_gateway_info": None})
    assert services.events[-1].data == {"gateway": False, "project_id": "admin"}

    # A network with only its DHCP port left can be deleted; the port goes with it.
    ports.delete_port(services, ctx, vm["id"])
    services.events.clear()
    networks.delete_network(services, ctx, net["id"])
    assert events(services) == [("port", "delete"), ("subnet", "delete"),
                                ("network", "delete")]
    with pytest.raises(errors.PortNotFound):
        ports.get_port(services, ctx, dhcp["id"])


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
    """No N+1: listing 2,000 networks or ports costs a handful of SQL statements (speed
    itself is measured in bench/, not asserted here)."""
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
        assert len(statements) < 20, len(statements)
        statements.clear()
        assert len(ports.list_ports(services, ctx, {"network_id": net["id"]})) == 2000
        assert len(statements) < 20, len(statements)
    finally:
        event.remove(services.db.engine, "before_cursor_execute", count)
    new = ports.create_port(services, ctx, {"network_id": net["id"]})
    assert new["fixed_ips"][0]["ip_address"] == "10.0.0.2"
