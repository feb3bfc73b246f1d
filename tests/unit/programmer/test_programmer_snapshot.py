"""The snapshot builder: where ports and routers are, from the database and the switches."""

from __future__ import annotations

from sqlalchemy import select

from ryu_sched.db import Database
from ryu_sched.db import models as db
from ryu_sched.flows import model as fm
from ryu_sched.programmer.programmer import Programmer
from ryu_sched.programmer.snapshot import build_snapshot, parse_dpid
from tests.unit.programmer.programmer_testbed import (
    SWITCH1,
    SWITCH2,
    UPSTREAM_IP,
    UPSTREAM_MAC,
    Cloud,
    FakeDatapath,
    acknowledge,
    connect,
    make_services,
    seed,
)

UPLINKS = {"physnet1": "uplink"}
NEIGHBORS = {UPSTREAM_IP: UPSTREAM_MAC}


def snapshot(database: Database, switch_ports: dict[int, dict[str, int]]) -> fm.Snapshot:
    with database.session() as session:
        return build_snapshot(session, switch_ports, UPLINKS, NEIGHBORS)


def setup() -> tuple[Database, Cloud]:
    services = make_services()
    return services.db, seed(services.db)


def test_a_port_is_on_the_switch_that_reports_its_tap() -> None:
    database, cloud = setup()
    snap = snapshot(database, {SWITCH1: cloud.ports_of[SWITCH1]})
    assert snap.port_locations[cloud.local_port.id] == SWITCH1
    switch = snap.switch(SWITCH1)
    assert switch is not None
    assert switch.ofport(fm.tap_name(cloud.local_port.id)) == 10


def test_a_tap_seen_elsewhere_wins_over_the_recorded_location() -> None:
    database, cloud = setup()
    moved = {"uplink": 1, fm.tap_name(cloud.remote_port.id): 17}
    snap = snapshot(database, {SWITCH1: cloud.ports_of[SWITCH1], 3: moved})
    assert snap.port_locations[cloud.remote_port.id] == 3


def test_ports_of_a_switch_not_connected_keep_their_recorded_location() -> None:
    database, cloud = setup()
    snap = snapshot(database, {SWITCH1: cloud.ports_of[SWITCH1]})
    assert snap.port_locations[cloud.remote_port.id] == SWITCH2  # bound_dpid


def test_a_connected_switch_without_the_tap_does_not_keep_the_port() -> None:
    database, cloud = setup()
    snap = snapshot(database, {SWITCH1: cloud.ports_of[SWITCH1],
                               SWITCH2: cloud.ports_of[SWITCH2]})
    assert cloud.remote_port.id not in snap.port_locations


def test_router_ports_have_no_location() -> None:
    database, cloud = setup()
    snap = snapshot(database, {SWITCH1: cloud.ports_of[SWITCH1]})
    owned = {p.id for p in snap.ports if p.router_owned}
    assert owned and not owned & set(snap.port_locations)


def test_a_router_is_placed_on_its_l3_agents_datapath() -> None:
    database, cloud = setup()
    snap = snapshot(database, {SWITCH1: cloud.ports_of[SWITCH1]})
    (router,) = snap.routers
    assert router.id == cloud.router.id
    assert router.host_dpid == SWITCH1
    assert [(i.ip, i.network_id) for i in router.interfaces] == [("10.0.0.1", cloud.net.id)]
    assert router.gateway is not None
    assert (router.gateway.ip, router.gateway.upstream_ip, router.gateway.upstream_mac) == (
        "203.0.113.10", UPSTREAM_IP, UPSTREAM_MAC)
    switch = snap.switch(SWITCH1)
    assert switch is not None and switch.external_port == "ext0"


def test_a_router_follows_its_binding_to_another_agent() -> None:
    database, cloud = setup()
    with database.session() as session:
        other = db.Agent(agent_type="L3 agent", host="gw2",
                         configurations={"datapath_id": "00000000000000a2",
                                         "external_port": "ext0"})
        session.add(other)
        session.flush()
        binding = session.scalars(select(db.RouterL3AgentBinding)).one()
        binding.l3_agent_id = other.id
    snap = snapshot(database, {SWITCH1: cloud.ports_of[SWITCH1]})
    assert snap.routers[0].host_dpid == 0xA2


def test_datapath_ids_are_read_as_hex_strings_or_ints() -> None:
    assert parse_dpid("0000000000000001") == 1
    assert parse_dpid("00000000000000a2") == 0xA2
    assert parse_dpid(7) == 7
    assert parse_dpid("") is None
    assert parse_dpid("not-hex") is None


def test_the_programmer_records_where_it_saw_each_port() -> None:
    services = make_services()
    cloud = seed(services.db)
    programmer = Programmer(services)
    programmer.neighbors.load()
    datapath = FakeDatapath(SWITCH1)
    connect(programmer, datapath, cloud.ports_of[SWITCH1], installed=[])
    acknowledge(programmer, datapath)
    with services.db.session() as session:
        local = session.get(db.Port, cloud.local_port.id)
        remote = session.get(db.Port, cloud.remote_port.id)
        assert local is not None and remote is not None
        assert (local.bound_dpid, local.status) == (SWITCH1, "ACTIVE")
        assert (remote.bound_dpid, remote.status) == (SWITCH2, "ACTIVE")


def test_groups_rules_and_address_pairs_reach_the_snapshot() -> None:
    from ryu_sched.resources import admin_context, networks, ports, subnets
    from ryu_sched.resources import security_group_rules as rules
    from ryu_sched.resources import security_groups as groups

    services = make_services()
    ctx = admin_context("tenant-a")
    net = networks.create_network(services, ctx, {"name": "n"})
    subnets.create_subnet(services, ctx, {"network_id": net["id"], "cidr": "10.0.0.0/24",
                                          "ip_version": 4})
    web = groups.create_security_group(services, ctx, {"name": "web"})
    rule = rules.create_security_group_rule(services, ctx, {
        "security_group_id": web["id"], "direction": "ingress", "protocol": "tcp",
        "port_range_min": 8080, "port_range_max": 8080, "remote_ip_prefix": "0.0.0.0/0"})
    member = ports.create_port(services, ctx, {
        "network_id": net["id"], "allowed_address_pairs": [
            {"ip_address": "10.9.0.0/24", "mac_address": "fa:16:3e:00:99:99"},
            {"ip_address": "10.0.0.100"}]})
    both = ports.create_port(services, ctx, {"network_id": net["id"],
                                             "security_groups": [web["id"], member[
                                                 "security_groups"][0]]})
    unfiltered = ports.create_port(services, ctx, {"network_id": net["id"],
                                                   "port_security_enabled": False})
    closed = ports.create_port(services, ctx, {"network_id": net["id"],
                                               "security_groups": []})
    snap = snapshot(services.db, {})
    by_id = {p.id: p for p in snap.ports}
    default_id = member["security_groups"][0]
    assert by_id[member["id"]].security_group_ids == (default_id,)
    assert by_id[member["id"]].allowed_address_pairs == (
        ("10.9.0.0/24", "fa:16:3e:00:99:99"), ("10.0.0.100", member["mac_address"]))
    assert by_id[both["id"]].security_group_ids == tuple(sorted([web["id"], default_id]))
    assert by_id[unfiltered["id"]].security_group_ids is None
    assert by_id[unfiltered["id"]].firewalled is False
    assert by_id[closed["id"]].security_group_ids == ()
    assert by_id[closed["id"]].firewalled is True
    groups_by_id = {g.id: g for g in snap.security_groups}
    assert set(groups_by_id) == {web["id"], default_id}
    # IPv4 rules only, in the flow compiler's terms
    assert sorted((r.direction, r.protocol, r.port_range_min, r.remote_ip_prefix,
                   r.remote_group_id) for r in groups_by_id[default_id].rules) == [
        (fm.Direction.EGRESS, None, None, None, None),
        (fm.Direction.INGRESS, None, None, None, default_id)]
    web_rule = next(r for r in groups_by_id[web["id"]].rules if r.id == rule["id"])
    assert (web_rule.protocol, web_rule.port_range_min, web_rule.port_range_max,
            web_rule.remote_ip_prefix) == (6, 8080, 8080, None)
