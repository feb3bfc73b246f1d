"""Random clouds: whatever the topology, broadcast reaches exactly the network, never more."""

from __future__ import annotations

import uuid

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ryu_sched.flows.model import Network, Port, Snapshot, Switch, tap_name
from ryu_sched.flows.pipeline import desired_flows
from ryu_sched.flows.simulator import Fabric, SwitchSimulator
from ryu_sched.flows.spec import ETH_TYPE_ARP

UPLINK = 1


@st.composite
def clouds(draw) -> Snapshot:
    n_switches = draw(st.integers(1, 3))
    n_networks = draw(st.integers(1, 4))
    vlans = draw(st.lists(st.integers(1, 4094), min_size=n_networks, max_size=n_networks,
                          unique=True))
    flat_index = draw(st.one_of(st.none(), st.integers(0, n_networks - 1)))
    networks = []
    for i, vid in enumerate(vlans):
        if i == flat_index:
            networks.append(Network(f"net-{i}", i + 1, f"t{i % 2}", "flat", "physnet1", None))
        else:
            networks.append(Network(f"net-{i}", i + 1, f"t{i % 2}", "vlan", "physnet1", vid))
    n_ports = draw(st.integers(1, 8))
    ports, locations = [], {}
    for j in range(n_ports):
        net = draw(st.sampled_from(networks))
        pid = str(uuid.UUID(int=(j + 1) << 96 | j))
        ports.append(Port(pid, net.id, f"fa:16:3e:00:00:{j + 1:02x}", (("s", f"10.0.0.{j + 2}"),),
                          "compute:nova", "vm", draw(st.booleans()), True))
        locations[pid] = draw(st.integers(1, n_switches))
    switches = []
    for dpid in range(1, n_switches + 1):
        names = {"uplink": UPLINK}
        names.update({tap_name(p.id): 10 + k for k, p in enumerate(ports)
                      if locations[p.id] == dpid})
        switches.append(Switch(dpid, names))
    return Snapshot(networks=tuple(networks), ports=tuple(ports), switches=tuple(switches),
                    port_locations=locations)


def arp_broadcast(port: Port, ofport: int) -> dict:
    ip = port.fixed_ips[0][1]
    return dict(in_port=ofport, eth_src=port.mac, eth_dst="ff:ff:ff:ff:ff:ff",
                eth_type=ETH_TYPE_ARP, arp_op=1, arp_sha=port.mac, arp_spa=ip,
                arp_tha="00:00:00:00:00:00", arp_tpa="10.0.0.250")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cloud=clouds())
def test_broadcast_reaches_every_other_port_of_its_network_exactly_once(cloud):
    fabric = Fabric({s.dpid: SwitchSimulator(desired_flows(cloud, s.dpid))
                     for s in cloud.switches}, {s.dpid: UPLINK for s in cloud.switches})
    where = {p.id: (cloud.port_locations[p.id],
                    cloud.switch(cloud.port_locations[p.id]).ports[tap_name(p.id)])
             for p in cloud.ports}
    for port in cloud.ports:
        dpid, ofport = where[port.id]
        result = fabric.send(dpid, arp_broadcast(port, ofport))
        expected = sorted(where[p.id] for p in cloud.ports
                          if p.network_id == port.network_id and p.id != port.id)
        assert sorted((d, o) for d, o, _ in result.deliveries) == expected


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cloud=clouds())
def test_unicast_reaches_its_port_only_within_the_network(cloud):
    fabric = Fabric({s.dpid: SwitchSimulator(desired_flows(cloud, s.dpid))
                     for s in cloud.switches}, {s.dpid: UPLINK for s in cloud.switches})
    where = {p.id: (cloud.port_locations[p.id],
                    cloud.switch(cloud.port_locations[p.id]).ports[tap_name(p.id)])
             for p in cloud.ports}
    for src in cloud.ports:
        for dst in cloud.ports:
            if src.id == dst.id:
                continue
            pkt = {**arp_broadcast(src, where[src.id][1]), "eth_dst": dst.mac, "arp_op": 2}
            got = sorted((d, o) for d, o, _ in fabric.send(where[src.id][0], pkt).deliveries)
            if src.network_id == dst.network_id:
                assert got == [where[dst.id]]
            else:  # unknown in src's network: flooded there, never across
                assert where[dst.id] not in got
                assert all(p.network_id == src.network_id for p in cloud.ports
                           if where[p.id] in got)
