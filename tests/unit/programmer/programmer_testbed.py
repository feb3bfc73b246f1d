"""A small cloud in an in-memory database and a fake datapath that records what it is sent.

Flow stats are the bytes of ``ofp_flow_stats`` entries built from serialised ``OFPFlowMod``s,
as a switch would report them (and as the framework hands them over: ``compat.RawFlowStats``),
so the programmer's canonical forms are exercised on both sides.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

from ryu_sched import compat
from ryu_sched.config import Settings
from ryu_sched.db import Database
from ryu_sched.db import models as db
from ryu_sched.db.models import LearnedNeighbor
from ryu_sched.flows.model import OWNER_ROUTER_GATEWAY, OWNER_ROUTER_INTERFACE, tap_name
from ryu_sched.programmer import readback
from ryu_sched.programmer.programmer import Programmer
from ryu_sched.services import Services
from tests.unit.programmer.ofchannel import BundleAdd, decode

ofp = compat.ofproto_v1_3
parser = compat.ofproto_v1_3_parser

SWITCH1, SWITCH2 = 1, 2
UPSTREAM_IP, UPSTREAM_MAC = "203.0.113.1", "52:54:00:ff:00:01"
# ofp_flow_mod is 56 bytes, of which the last 8 are the start of the ofp_match
FLOW_MOD_MATCH_OFFSET = ofp.OFP_FLOW_MOD_SIZE - ofp.OFP_MATCH_SIZE


class FakeDatapath:
    """What the programmer needs of an os-ken Datapath: ``id``, ``set_xid``, ``send_msg``
    (which gives a message its xid), ``send`` (bytes: decoded back into messages here) and
    the protocol modules messages are built with."""

    def __init__(self, dpid: int) -> None:
        self.id = dpid
        self.ofproto = ofp
        self.ofproto_parser = parser
        self.sent: list[Any] = []
        self.xid = 0

    def set_xid(self, msg: Any) -> int:
        self.xid += 1
        msg.set_xid(self.xid)
        return self.xid

    def send_msg(self, msg: Any) -> None:
        if msg.xid is None:
            self.set_xid(msg)
        self.sent.append(msg)

    def send(self, data: bytes) -> None:
        self.sent.extend(decode(self, data))

    def flow_mods(self) -> list[Any]:
        """Every flow mod sent, plain or inside a bundle, in order."""
        return [m.message if isinstance(m, BundleAdd) else m for m in self.sent
                if isinstance(m, parser.OFPFlowMod | BundleAdd)]

    def bundles(self) -> list[Bundle]:
        """The bundles sent, as the switch would see them."""
        result: dict[int, Bundle] = {}
        for m in self.sent:
            if isinstance(m, compat.ONFBundleCtrlMsg):
                if m.type == ofp.ONF_BCT_OPEN_REQUEST:
                    result[m.bundle_id] = Bundle(m.bundle_id, m.flags)
                elif m.type == ofp.ONF_BCT_COMMIT_REQUEST:
                    result[m.bundle_id].committed = True
            elif isinstance(m, BundleAdd):
                bundle = result[m.bundle_id]
                assert not bundle.committed, "message added to a committed bundle"
                assert m.flags == bundle.flags
                bundle.mods.append(m.message)
        return list(result.values())

    def plain_flow_mods(self) -> list[Any]:
        return [m for m in self.sent if isinstance(m, parser.OFPFlowMod)]

    def barriers(self) -> list[Any]:
        return [m for m in self.sent if isinstance(m, parser.OFPBarrierRequest)]

    def clear(self) -> None:
        self.sent.clear()


def port_desc(ports: dict[str, int]) -> list[Any]:
    """OFPPort entries as a port-description reply carries them (LOCAL included)."""
    entries = [parser.OFPPort(ofport, "02:00:00:00:00:%02x" % (ofport % 256),
                              name.encode(), 0, 0, 0, 0, 0, 0, 0, 0)
               for name, ofport in ports.items()]
    entries.append(parser.OFPPort(ofp.OFPP_LOCAL, "02:00:00:00:00:ff", b"br-int",
                                  0, 0, 0, 0, 0, 0, 0, 0))
    return entries


def flow_stats(mod: Any, cookie: int | None = None) -> compat.RawFlowStats:
    """The flow-stats entry a switch reports for an installed ``OFPFlowMod`` (with another
    ``cookie`` if given)."""
    mod.xid = None
    mod.set_xid(1)
    mod.serialize()
    tail = bytes(mod.buf[FLOW_MOD_MATCH_OFFSET:])  # match (padded) + instructions
    head = struct.pack(ofp.OFP_FLOW_STATS_0_PACK_STR, ofp.OFP_FLOW_STATS_0_SIZE + len(tail),
                       mod.table_id, 12, 0, mod.priority, mod.idle_timeout, mod.hard_timeout,
                       mod.flags, mod.cookie if cookie is None else cookie, 0, 0)
    return compat.RawFlowStats(head + tail)


def stats_form(entry: compat.RawFlowStats) -> tuple[Any, Any]:
    """``(key, body)`` of a flow-stats entry, as the programmer reads it."""
    decoded = readback.decode(entry.data)
    return decoded.key, decoded.body


@dataclass
class Bundle:
    bundle_id: int
    flags: int
    mods: list[Any] = field(default_factory=list)
    committed: bool = False


@dataclass
class Cloud:
    net: db.Network
    ext: db.Network
    local_port: db.Port  # its tap is on switch 1
    remote_port: db.Port  # last seen on switch 2
    router: db.Router
    agent: db.Agent
    ports_of: dict[int, dict[str, int]] = field(default_factory=dict)


def make_services() -> Services:
    database = Database("sqlite://")
    database.create_schema()
    return Services(settings=Settings(), db=database)


def seed(database: Database) -> Cloud:
    """net-a (vlan 100, 10.0.0.0/24) with a port on switch 1 and one last seen on switch 2;
    router r1 (interface 10.0.0.1, gateway 203.0.113.10) hosted by the L3 agent of switch 1."""
    with database.session() as session:
        net = db.Network(name="net-a", project_id="tenant-a", network_type="vlan",
                         physical_network="physnet1", segmentation_id=100)
        ext = db.Network(name="public", network_type="flat", physical_network="extnet",
                         router_external=True)
        session.add_all([net, ext])
        session.flush()
        sub = db.Subnet(network_id=net.id, cidr="10.0.0.0/24", gateway_ip="10.0.0.1")
        ext_sub = db.Subnet(network_id=ext.id, cidr="203.0.113.0/24", gateway_ip=UPSTREAM_IP)
        session.add_all([sub, ext_sub])
        session.flush()

        def port(network: db.Network, subnet: db.Subnet, mac: str, ip: str,
                 owner: str = "compute:nova", **kw: Any) -> db.Port:
            row = db.Port(network_id=network.id, mac_address=mac, device_owner=owner, **kw)
            session.add(row)
            session.flush()
            session.add(db.IPAllocation(port_id=row.id, subnet_id=subnet.id,
                                        network_id=network.id, ip_address=ip))
            return row

        local = port(net, sub, "fa:16:3e:00:00:11", "10.0.0.11")
        remote = port(net, sub, "fa:16:3e:00:00:12", "10.0.0.12", bound_dpid=SWITCH2)
        router = db.Router(name="r1", project_id="tenant-a")
        session.add(router)
        session.flush()
        iface = port(net, sub, "fa:16:3e:00:aa:01", "10.0.0.1", OWNER_ROUTER_INTERFACE,
                     device_id=router.id)
        gw = port(ext, ext_sub, "fa:16:3e:00:ee:01", "203.0.113.10", OWNER_ROUTER_GATEWAY,
                  device_id=router.id)
        router.gw_port_id = gw.id
        session.add_all([
            db.RouterPort(router_id=router.id, port_id=iface.id,
                          port_type=OWNER_ROUTER_INTERFACE),
            db.RouterPort(router_id=router.id, port_id=gw.id, port_type=OWNER_ROUTER_GATEWAY),
        ])
        agent = db.Agent(agent_type="L3 agent", host="gw1",
                         configurations={"datapath_id": f"{SWITCH1:016x}",
                                         "external_port": "ext0"})
        session.add(agent)
        session.flush()
        session.add(db.RouterL3AgentBinding(router_id=router.id, l3_agent_id=agent.id))
        session.add(LearnedNeighbor(ip_address=UPSTREAM_IP, mac_address=UPSTREAM_MAC))
    return Cloud(net=net, ext=ext, local_port=local, remote_port=remote, router=router,
                 agent=agent, ports_of={
                     SWITCH1: {"uplink": 1, "ext0": 2, tap_name(local.id): 10},
                     SWITCH2: {"uplink": 1}})


def connect(programmer: Programmer, datapath: FakeDatapath, ports: dict[str, int],
            installed: list[Any]) -> None:
    """Drive the connect handshake: features -> port desc -> flow stats -> one sync."""
    programmer.switch_connected(datapath)
    programmer.port_desc_reply(datapath, port_desc(ports), more=False)
    half = len(installed) // 2
    programmer.flow_stats_reply(datapath, installed[:half], more=True)  # two multiparts
    programmer.flow_stats_reply(datapath, installed[half:], more=False)
    programmer.sync_dirty()


def acknowledge(programmer: Programmer, datapath: FakeDatapath) -> None:
    """The switch answers every barrier sent so far (it has applied everything before it);
    the programmer then records the port statuses that waited for that."""
    for barrier in datapath.barriers():
        programmer.barrier_reply(datapath, barrier.xid)
    programmer.record_acknowledged()
