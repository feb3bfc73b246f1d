"""Security groups: a stateful firewall per port, checked on real packets across the fabric.

The cloud is sg_testbed.py's: tenant A's VMs in their default group (egress anything,
ingress from the group's members), vm-a2 also serving tcp 8080 to everyone and ssh to
198.51.100.0/24 behind floating IP 203.0.113.20, vm-a22 in a group that only lets it out.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from flows_testbed import (
    BROADCAST,
    EXT,
    FIP,
    GW_MAC,
    INTERNET_IP,
    PORTS,
    R1_IF_A,
    R1_IF_A2,
    UPLINK,
    all_endpoints,
    arp_request,
    endpoint,
    from_internet,
    ip_of,
    mac_of,
    make_snapshot,
    udp,
)
from sg_testbed import (
    ACK,
    GROUPS,
    INGRESS,
    LOCAL_FIP,
    PSH_ACK,
    SG_A,
    SG_OUT,
    SG_WEB,
    SYN,
    SYN_ACK,
    Cloud,
    internet_ping,
    internet_tcp,
    make_local_fip_snapshot,
    make_secured_snapshot,
    rule,
    secured_port,
    tcp,
)

from ryu_sched.flows.model import SecurityGroup
from ryu_sched.flows.spec import IP_PROTO_TCP, IP_PROTO_UDP, OFPVID_PRESENT

OTHER_INTERNET_IP = "192.0.2.99"  # outside admin's 198.51.100.0/24, inside its 192.0.2.0/24


def reached(result) -> set[str]:
    names = all_endpoints()
    return {names.get(e, str(e)) for e in result.endpoints}


def opens(cloud: Cloud, client: str, server: str, dport: int = 80, sport: int = 40000,
          via: str | None = None) -> list[set[str]]:
    """A TCP handshake and one data segment each way between two VMs (``via``: the MAC the
    client sends to, a router's when routed). Returns who received each of the 4 segments."""
    first_hop = via or mac_of(server)
    back_hop = {R1_IF_A.mac: R1_IF_A2.mac, R1_IF_A2.mac: R1_IF_A.mac}.get(first_hop,
                                                                        mac_of(client))
    c, s = ip_of(client), ip_of(server)
    steps = [
        (client, tcp(client, c, s, first_hop, sport, dport, SYN)),
        (server, tcp(server, s, c, back_hop, dport, sport, SYN_ACK)),
        (client, tcp(client, c, s, first_hop, sport, dport, ACK)),
        (server, tcp(server, s, c, back_hop, dport, sport, PSH_ACK)),
    ]
    return [reached(cloud.send(endpoint(sender)[0], pkt)) for sender, pkt in steps]


def test_default_group_members_open_connections_to_each_other_and_get_replies():
    cloud = Cloud()
    assert opens(cloud, "vm-a1", "vm-a3") == [{"vm-a3"}, {"vm-a1"}, {"vm-a3"}, {"vm-a1"}]
    assert opens(cloud, "vm-a3", "vm-a2", sport=41000) == [
        {"vm-a2"}, {"vm-a3"}, {"vm-a2"}, {"vm-a3"}]
    # Routed, to the other subnet of the router (vm-a21 on net-a2, another host).
    assert opens(cloud, "vm-a1", "vm-a21", via=R1_IF_A.mac) == [
        {"vm-a21"}, {"vm-a1"}, {"vm-a21"}, {"vm-a1"}]


def test_others_cannot_open_connections_in_but_get_replies_to_their_own():
    cloud = Cloud()
    # vm-a22 (out-only, not in a-default) cannot reach vm-a1, nor vm-a1 vm-a22.
    assert opens(cloud, "vm-a22", "vm-a1", via=R1_IF_A2.mac)[0] == set()
    assert opens(cloud, "vm-a1", "vm-a22", via=R1_IF_A.mac, sport=40001)[0] == set()
    # But what vm-a22 opens to the internet is answered (SNAT by the router, then its
    # ingress firewall lets the reply in).
    out = cloud.send(1, udp("vm-a22", INTERNET_IP, R1_IF_A2.mac))
    assert out.endpoints == {(1, EXT)}
    assert reached(cloud.send(1, from_internet("203.0.113.10", udp_src=5001,
                                               udp_dst=40000))) == {"vm-a22"}
    # Unsolicited traffic from the internet host to the same port is not.
    assert reached(cloud.send(1, from_internet("203.0.113.10", udp_src=5001,
                                               udp_dst=40009))) == set()


def test_the_default_groups_of_two_tenants_do_not_mix():
    cloud = Cloud()
    assert opens(cloud, "vm-b1", "vm-b2") == [{"vm-b2"}, {"vm-b1"}, {"vm-b2"}, {"vm-b1"}]
    # vm-b3 has no port security: it sends as it likes, but vm-b1's firewall drops what its
    # rules do not allow, even when it claims to come from a member's address.
    forged = udp("vm-b3", ip_of("vm-b1"), mac_of("vm-b1"), ipv4_src="192.0.2.1")
    assert reached(cloud.send(2, forged)) == set()
    # and vm-b3 itself, unfiltered, receives anything.
    assert reached(cloud.send(2, udp("vm-b2", ip_of("vm-b3"), mac_of("vm-b3")))) == {"vm-b3"}


@pytest.mark.parametrize(("dport", "admitted"), [(8080, True), (8079, False), (8081, False),
                                                 (80, False), (22, True)])
def test_tcp_8080_from_anywhere_admits_8080_through_the_floating_ip_and_nothing_else(
        dport, admitted):
    """vm-a2: tcp 8080 from 0.0.0.0/0 (web), tcp 22 from 198.51.100.0/24 (admin), where the
    internet host 198.51.100.7 is: the ingress rules see the original source after DNAT."""
    cloud = Cloud()
    result = cloud.send(1, internet_tcp(FIP, 50000, dport, SYN))
    assert reached(result) == ({"vm-a2"} if admitted else set())
    if admitted:
        [pkt] = result.at(*endpoint("vm-a2"))
        assert (pkt["ipv4_src"], pkt["ipv4_dst"]) == (INTERNET_IP, ip_of("vm-a2"))
        reply = cloud.send(2, tcp("vm-a2", ip_of("vm-a2"), INTERNET_IP, R1_IF_A.mac, dport,
                                  50000, SYN_ACK))
        [out] = reply.at(1, EXT)
        assert (out["ipv4_src"], out["eth_src"]) == (FIP, GW_MAC)


def test_a_floating_ip_on_the_routers_own_switch_is_filtered_there():
    """NAT (router zone 7) and the firewall (vm-a1's zone) on one switch, one after the
    other, both ways."""
    cloud = Cloud(make_local_fip_snapshot())
    result = cloud.send(1, internet_tcp(LOCAL_FIP, 50000, 8080, SYN))
    assert reached(result) == {"vm-a1"}
    [pkt] = result.at(*endpoint("vm-a1"))
    assert (pkt["ipv4_src"], pkt["ipv4_dst"]) == (INTERNET_IP, ip_of("vm-a1"))
    answer = tcp("vm-a1", ip_of("vm-a1"), INTERNET_IP, R1_IF_A.mac, 8080, 50000, SYN_ACK)
    [out] = cloud.send(1, answer).at(1, EXT)
    assert out["ipv4_src"] == LOCAL_FIP
    assert reached(cloud.send(1, internet_tcp(LOCAL_FIP, 50001, 8081, SYN))) == set()


def test_icmp_and_udp_to_the_web_server_are_dropped():
    cloud = Cloud()
    assert reached(cloud.send(1, internet_ping(FIP))) == set()
    assert reached(cloud.send(1, from_internet(FIP, udp_src=5000, udp_dst=8080))) == set()


def test_remote_prefixes_are_matched_against_the_original_source():
    cloud = Cloud()
    ssh = internet_tcp(FIP, 50000, 22, SYN, ipv4_src=OTHER_INTERNET_IP)
    assert reached(cloud.send(1, ssh)) == set()  # not in 198.51.100.0/24
    ping = internet_ping(FIP, ipv4_src=OTHER_INTERNET_IP)
    assert reached(cloud.send(1, ping)) == {"vm-a2"}  # icmp echo from 192.0.2.0/24
    assert reached(cloud.send(1, {**ping, "icmpv4_type": 13})) == set()  # not an echo


@pytest.mark.parametrize(("dport", "admitted"), [(4999, False), (5000, True), (5003, True),
                                                 (5004, False)])
def test_a_udp_range_and_a_tcp_port_with_one_remote_share_it_but_stay_apart(dport, admitted):
    """admin: tcp 22 and udp 5000-5003 from 198.51.100.0/24 (one conjunction, two protocol
    values): udp 22 and tcp 5000 are neither."""
    cloud = Cloud()
    pkt = from_internet(FIP, udp_src=7000, udp_dst=dport)
    assert (reached(cloud.send(1, pkt)) == {"vm-a2"}) is admitted
    assert reached(cloud.send(1, internet_tcp(FIP, 7001, dport, SYN))) == set()
    assert reached(cloud.send(1, from_internet(FIP, udp_src=7002, udp_dst=22))) == set()


def test_a_remote_group_rule_admits_members_only_adding_one_opens_removing_closes():
    cloud = Cloud()
    assert opens(cloud, "vm-a22", "vm-a1", via=R1_IF_A2.mac)[0] == set()

    a22_in_default = replace(secured_port("vm-a22"), security_group_ids=(SG_OUT.id, SG_A.id))
    cloud.program(make_secured_snapshot(**{"vm-a22": a22_in_default}))
    assert opens(cloud, "vm-a22", "vm-a1", via=R1_IF_A2.mac, sport=40100) == [
        {"vm-a1"}, {"vm-a22"}, {"vm-a1"}, {"vm-a22"}]

    cloud.program(make_secured_snapshot())  # vm-a22 leaves the group again
    assert opens(cloud, "vm-a22", "vm-a1", via=R1_IF_A2.mac, sport=40101)[0] == set()
    # and its established connection is cut at its next segment, replies included.
    ack = tcp("vm-a22", ip_of("vm-a22"), ip_of("vm-a1"), R1_IF_A2.mac, 40100, 80, ACK)
    assert reached(cloud.send(1, ack)) == set()
    data = tcp("vm-a1", ip_of("vm-a1"), ip_of("vm-a22"), R1_IF_A.mac, 80, 40100, PSH_ACK)
    assert reached(cloud.send(1, data)) == set()


def test_removing_an_ingress_rule_stops_the_established_connection_it_allowed():
    cloud = Cloud()
    steps = [internet_tcp(FIP, 50000, 8080, SYN)]
    assert reached(cloud.send(1, steps[0])) == {"vm-a2"}
    server = tcp("vm-a2", ip_of("vm-a2"), INTERNET_IP, R1_IF_A.mac, 8080, 50000, SYN_ACK)
    assert cloud.send(2, server).at(1, EXT)
    assert reached(cloud.send(1, internet_tcp(FIP, 50000, 8080, ACK))) == {"vm-a2"}

    without_web = SecurityGroup(SG_WEB.id, ())
    cloud.program(make_secured_snapshot(groups=(*[g for g in GROUPS if g is not SG_WEB],
                                                without_web)))
    # The client's next segment is dropped and marks the connection dead...
    assert reached(cloud.send(1, internet_tcp(FIP, 50000, 8080, PSH_ACK))) == set()
    # ...so the server's replies are dropped too, and a new connection is not opened.
    assert not cloud.send(2, {**server, "tcp_flags": PSH_ACK}).at(1, EXT)
    assert reached(cloud.send(1, internet_tcp(FIP, 50001, 8080, SYN))) == set()

    cloud.program(make_secured_snapshot())  # the rule is back: the connection lives again
    assert reached(cloud.send(1, internet_tcp(FIP, 50000, 8080, PSH_ACK))) == {"vm-a2"}
    assert cloud.send(2, {**server, "tcp_flags": PSH_ACK}).at(1, EXT)


def test_removing_an_egress_rule_stops_the_connections_the_port_opened():
    cloud = Cloud()
    assert opens(cloud, "vm-a1", "vm-a3") == [{"vm-a3"}, {"vm-a1"}, {"vm-a3"}, {"vm-a1"}]
    closed = SecurityGroup(SG_A.id, tuple(r for r in SG_A.rules if r.direction is INGRESS))
    cloud.program(make_secured_snapshot(groups=(closed, *GROUPS[1:])))
    ack = tcp("vm-a1", ip_of("vm-a1"), ip_of("vm-a3"), mac_of("vm-a3"), 40000, 80, ACK)
    assert reached(cloud.send(1, ack)) == set()
    data = tcp("vm-a3", ip_of("vm-a3"), ip_of("vm-a1"), mac_of("vm-a1"), 80, 40000, PSH_ACK)
    assert reached(cloud.send(3, data)) == set()


def test_invalid_packets_are_dropped_even_where_a_rule_admits_them():
    cloud = Cloud()
    # A SYN+ACK that answers nothing is invalid to conntrack: tcp 8080 is open, yet dropped.
    assert reached(cloud.send(1, internet_tcp(FIP, 50000, 8080, SYN_ACK))) == set()


VIP = "10.0.0.100"


def with_pairs(name: str, *pairs: tuple[str, str | None]):
    return make_secured_snapshot(**{name: replace(secured_port(name),
                                                  allowed_address_pairs=pairs)})


def test_an_address_pair_lets_a_vip_answer_without_it_the_vip_is_spoofing():
    cloud = Cloud(with_pairs("vm-a1", (VIP, None)))
    # vm-a3 talks to the VIP, which vm-a1 holds (same MAC): in, and answered from the VIP.
    syn = tcp("vm-a3", ip_of("vm-a3"), VIP, mac_of("vm-a1"), 41000, 80, SYN)
    assert reached(cloud.send(3, syn)) == {"vm-a1"}
    answer = tcp("vm-a1", VIP, ip_of("vm-a3"), mac_of("vm-a3"), 80, 41000, SYN_ACK)
    assert reached(cloud.send(1, answer)) == {"vm-a3"}
    assert reached(cloud.send(1, arp_request("vm-a1", ip_of("vm-a3"), arp_spa=VIP))) >= {
        "vm-a3"}
    # The pair also makes the VIP a member address of vm-a1's groups (remote-group rules).
    opened = tcp("vm-a1", VIP, ip_of("vm-a3"), mac_of("vm-a3"), 42000, 80, SYN)
    assert reached(cloud.send(1, opened)) == {"vm-a3"}

    plain = Cloud()
    assert reached(plain.send(1, answer)) == set()
    assert reached(plain.send(1, opened)) == set()
    assert reached(plain.send(1, arp_request("vm-a1", ip_of("vm-a3"), arp_spa=VIP))) == set()


def test_an_address_pair_with_a_mac_and_a_cidr():
    cloud = Cloud(with_pairs("vm-a1", ("10.0.0.128/25", None), (VIP, "fa:16:3e:00:99:99")))
    dst = (ip_of("vm-a3"), mac_of("vm-a3"))
    for source, mac, ok in [("10.0.0.200", mac_of("vm-a1"), True),
                            ("10.0.0.127", mac_of("vm-a1"), False),
                            (VIP, "fa:16:3e:00:99:99", True),
                            (VIP, mac_of("vm-a1"), False),
                            (ip_of("vm-a1"), "fa:16:3e:00:99:99", False)]:
        pkt = udp("vm-a1", *dst, ipv4_src=source, eth_src=mac)
        assert (reached(cloud.send(1, pkt)) == {"vm-a3"}) is ok, (source, mac)


def test_any_protocol_number_and_flooded_multicast_through_each_ports_firewall():
    vrrp = dict(udp("vm-a22", "224.0.0.18", "01:00:5e:00:00:12"), ip_proto=112)
    del vrrp["udp_src"], vrrp["udp_dst"]
    gre = dict(vrrp, ipv4_dst=ip_of("vm-a21"), eth_dst=R1_IF_A2.mac, ip_proto=47)
    # vm-a21 (a-default) admits group members only; vm-a22 is not one.
    cloud = Cloud()
    assert reached(cloud.send(1, vrrp)) == set()
    assert reached(cloud.send(1, gre)) == set()

    a_vrrp = SecurityGroup(SG_A.id, (*SG_A.rules, rule("vrrp", INGRESS, protocol=112)))
    cloud = Cloud(make_secured_snapshot(groups=(a_vrrp, *GROUPS[1:])))
    assert reached(cloud.send(1, vrrp)) == {"vm-a21"}  # the flood went through its firewall
    assert reached(cloud.send(1, gre)) == set()  # 47 is not 112
    assert reached(cloud.send(1, dict(vrrp, ip_proto=IP_PROTO_UDP, udp_src=1,
                                      udp_dst=2))) == set()


def with_ingress_rule(**fields) -> Cloud:
    extra = SecurityGroup(SG_OUT.id, (*SG_OUT.rules, rule("extra", INGRESS, **fields)))
    return Cloud(make_secured_snapshot(groups=(*GROUPS[:4], extra)))


@pytest.mark.parametrize(("dport", "admitted"), [(999, False), (1000, True), (1001, True),
                                                 (1500, True), (1998, True), (1999, True),
                                                 (2000, False), (0, False), (65535, False)])
def test_a_port_range_admits_exactly_its_ports(dport, admitted):
    cloud = with_ingress_rule(protocol=IP_PROTO_TCP, port_range_min=1000, port_range_max=1999)
    syn = tcp("vm-a1", ip_of("vm-a1"), ip_of("vm-a22"), R1_IF_A.mac, 40000, dport, SYN)
    assert (reached(cloud.send(1, syn)) == {"vm-a22"}) is admitted
    udp_same = udp("vm-a1", ip_of("vm-a22"), R1_IF_A.mac, udp_dst=dport)
    assert reached(cloud.send(1, udp_same)) == set()


def test_a_protocol_without_ports_admits_every_port_of_it_only():
    cloud = with_ingress_rule(protocol=IP_PROTO_UDP)
    for dport in (0, 53, 65535):
        pkt = udp("vm-a1", ip_of("vm-a22"), R1_IF_A.mac, udp_dst=dport, udp_src=dport + 1)
        assert reached(cloud.send(1, pkt)) == {"vm-a22"}
    syn = tcp("vm-a1", ip_of("vm-a1"), ip_of("vm-a22"), R1_IF_A.mac, 40000, 53, SYN)
    assert reached(cloud.send(1, syn)) == set()


def test_no_groups_means_nothing_but_dhcp():
    closed = replace(secured_port("vm-a1"), security_group_ids=())
    cloud = Cloud(make_secured_snapshot(**{"vm-a1": closed}))
    assert opens(cloud, "vm-a1", "vm-a3")[0] == set()
    assert opens(cloud, "vm-a3", "vm-a1", sport=41000)[0] == set()
    offer = udp("dhcp-a", ip_of("vm-a1"), mac_of("vm-a1"), udp_src=67, udp_dst=68)
    assert reached(cloud.send(3, offer)) == {"vm-a1"}
    broadcast_offer = udp("dhcp-a", "255.255.255.255", BROADCAST, udp_src=67, udp_dst=68)
    assert "vm-a1" in reached(cloud.send(3, broadcast_offer))
    renew = udp("vm-a1", ip_of("dhcp-a"), mac_of("dhcp-a"), udp_src=68, udp_dst=67)
    assert reached(cloud.send(1, renew)) == {"dhcp-a"}


def test_a_flooded_packet_is_not_judged_by_its_senders_own_ingress_firewall():
    """vm-a22 admits nothing in. Its traffic to a MAC nobody knows is flooded, and the
    flood's firewall forks include vm-a22's own: that copy must not kill its connection."""
    cloud = Cloud()
    stranger, stranger_mac = "10.0.1.50", "52:54:00:00:01:50"
    syn = tcp("vm-a22", ip_of("vm-a22"), stranger, stranger_mac, 40000, 80, SYN)
    assert cloud.send(1, syn).on_wire
    answer = dict(in_port=UPLINK, vlan_vid=OFPVID_PRESENT | 101, eth_src=stranger_mac,
                  eth_dst=mac_of("vm-a22"), eth_type=0x0800, ipv4_src=stranger,
                  ipv4_dst=ip_of("vm-a22"), ip_proto=IP_PROTO_TCP, tcp_src=80, tcp_dst=40000,
                  tcp_flags=SYN_ACK, ip_ttl=64)
    assert reached(cloud.send(1, answer)) == {"vm-a22"}
    assert cloud.send(1, {**syn, "tcp_flags": ACK}).on_wire
    assert reached(cloud.send(1, {**answer, "tcp_flags": PSH_ACK})) == {"vm-a22"}


def test_each_port_has_its_own_connections_even_with_a_twin_address():
    """vm-a1 and vm-b1 are both 10.0.0.11 on switch 1. What vm-a1 opens must not let a
    look-alike reply into vm-b1 (vm-b1 admits nothing here)."""
    b1_closed = replace(secured_port("vm-b1"), security_group_ids=(SG_OUT.id,))
    cloud = Cloud(make_secured_snapshot(**{"vm-b1": b1_closed}))
    assert ip_of("vm-a1") == ip_of("vm-b1") and ip_of("vm-a2") == ip_of("vm-b2")
    assert opens(cloud, "vm-a1", "vm-a2")[:2] == [{"vm-a2"}, {"vm-a1"}]
    fake = tcp("vm-b3", ip_of("vm-a2"), ip_of("vm-b1"), mac_of("vm-b1"), 80, 40000, PSH_ACK)
    assert reached(cloud.send(2, fake)) == set()


def test_snapshots_without_security_groups_get_no_firewall_at_all():
    from ryu_sched.flows.cookies import CookieKind, kind_of
    from ryu_sched.flows.pipeline import desired_flows
    from ryu_sched.flows.spec import Ct
    from ryu_sched.flows.tables import Table

    fw_tables = {Table.SG_EGRESS_STATE, Table.SG_EGRESS_RULES, Table.SG_EGRESS_ACCEPT,
                 Table.SG_INGRESS_STATE, Table.SG_INGRESS_RULES, Table.SG_INGRESS_ACCEPT}
    for dpid in (1, 2, 3):
        flows = desired_flows(make_snapshot(), dpid)
        assert all(f.priority == 0 for f in flows if f.table in fw_tables)
        assert not any(kind_of(f.cookie) is CookieKind.SECURITY_GROUP for f in flows)
        assert not any(isinstance(a, Ct) for f in flows if f.table in (Table.PORT_SECURITY,
                                                                       Table.L2_FORWARD)
                       for a in f.actions)
    assert PORTS["vm-a1"].security_group_ids is None
