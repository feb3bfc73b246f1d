"""ARP packets the controller sends: requests for upstream gateways and gratuitous ARPs."""

from __future__ import annotations

from ryu_sched import compat

BROADCAST = "ff:ff:ff:ff:ff:ff"


def arp_request(src_mac: str, src_ip: str, target_ip: str) -> bytes:
    pkt = compat.packet.Packet()
    pkt.add_protocol(compat.ethernet.ethernet(
        dst=BROADCAST, src=src_mac, ethertype=compat.ether_types.ETH_TYPE_ARP))
    pkt.add_protocol(compat.arp.arp(
        opcode=compat.arp.ARP_REQUEST, src_mac=src_mac, src_ip=src_ip,
        dst_mac="00:00:00:00:00:00", dst_ip=target_ip))
    pkt.serialize()
    return bytes(pkt.data)


def gratuitous_arp(mac: str, ip: str, vlan_id: int | None = None) -> bytes:
    """A gratuitous ARP request (sender = target = ip), as routers send after a move;
    802.1Q-tagged with ``vlan_id`` when given (for the uplink of a VLAN network)."""
    pkt = compat.packet.Packet()
    if vlan_id is None:
        pkt.add_protocol(compat.ethernet.ethernet(
            dst=BROADCAST, src=mac, ethertype=compat.ether_types.ETH_TYPE_ARP))
    else:
        pkt.add_protocol(compat.ethernet.ethernet(
            dst=BROADCAST, src=mac, ethertype=compat.ether_types.ETH_TYPE_8021Q))
        pkt.add_protocol(compat.vlan.vlan(vid=vlan_id,
                                          ethertype=compat.ether_types.ETH_TYPE_ARP))
    pkt.add_protocol(compat.arp.arp(
        opcode=compat.arp.ARP_REQUEST, src_mac=mac, src_ip=ip,
        dst_mac="00:00:00:00:00:00", dst_ip=ip))
    pkt.serialize()
    return bytes(pkt.data)


def parse_arp(data: bytes) -> tuple[int, str, str, str, str] | None:
    """(opcode, src_mac, src_ip, dst_mac, dst_ip) of an (untagged) ARP packet, else None."""
    try:
        pkt = compat.packet.Packet(data)
    except Exception:  # malformed packet-in: nothing to learn
        return None
    found = pkt.get_protocol(compat.arp.arp)
    if found is None:
        return None
    return (found.opcode, found.src_mac, found.src_ip, found.dst_mac, found.dst_ip)
