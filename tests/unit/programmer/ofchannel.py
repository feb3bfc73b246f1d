"""An OpenFlow 1.3 connection to a real Open vSwitch bridge that stands in for the framework's
Datapath: the programmer sends through it, and :meth:`OpenFlowChannel.pump` hands what the
switch answers to the programmer as the app shim would.

It talks to the bridge's management socket (``<rundir>/<bridge>.mgmt``, the one ``ovs-ofctl``
uses), so no controller process or TCP port is needed. Messages are built and parsed by the
framework, as in production.
"""

from __future__ import annotations

import dataclasses
import socket
import struct
import time
from pathlib import Path
from typing import Any

from ryu_sched import compat
from ryu_sched.programmer import readback

ofp = compat.ofproto_v1_3
parser = compat.ofproto_v1_3_parser
HEADER = struct.Struct("!BBHI")
BUNDLE_ADD = struct.Struct("!IIIxxH")
ONF_EXPERIMENTER_ID = 0x4F4E4600


@dataclasses.dataclass
class BundleAdd:
    """A bundle-add message as the switch reads it (the framework parses no such message)."""

    xid: int
    bundle_id: int
    flags: int
    message: Any


def decode(datapath: Any, data: bytes) -> list[Any]:
    """The messages in ``data`` (what a controller sends), parsed by the framework where it
    can: flow mods and bundle control messages; bundle adds and barriers by hand."""
    result = []
    while data:
        version, msg_type, length, xid = HEADER.unpack_from(data)
        raw, data = data[:length], data[length:]
        if msg_type == ofp.OFPT_BARRIER_REQUEST:
            msg = parser.OFPBarrierRequest(datapath)
            msg.xid = xid
        elif msg_type == ofp.OFPT_EXPERIMENTER and BUNDLE_ADD.unpack_from(raw, 8)[:2] == (
                ONF_EXPERIMENTER_ID, ofp.ONF_ET_BUNDLE_ADD_MESSAGE):
            _exp, _type, bundle_id, flags = BUNDLE_ADD.unpack_from(raw, 8)
            (inner,) = decode(datapath, raw[8 + BUNDLE_ADD.size:])
            assert inner.xid == xid, "a bundled message carries the bundle add's xid"
            msg = BundleAdd(xid, bundle_id, flags, inner)
        else:
            msg = compat.ofproto_parser.msg(datapath, version, msg_type, length, xid, raw)
        result.append(msg)
    return result


class OpenFlowChannel:
    def __init__(self, path: Path, dpid: int, timeout: float = 10.0) -> None:
        self.id = dpid
        self.ofproto = ofp
        self.ofproto_parser = parser
        self.xid = 0
        self.sent: list[Any] = []
        self.errors: list[Any] = []
        self.timeout = timeout
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(timeout)
        self.sock.connect(str(path))
        self._buf = b""
        self.send_msg(parser.OFPHello(self))
        hello = self.receive()
        assert hello.msg_type == ofp.OFPT_HELLO, hello

    # --- what the programmer uses of a Datapath --------------------------------------

    def set_xid(self, msg: Any) -> int:
        self.xid += 1
        msg.set_xid(self.xid)
        return self.xid

    def send_msg(self, msg: Any) -> None:
        if msg.xid is None:
            self.set_xid(msg)
        msg.serialize()
        self.sock.sendall(msg.buf)
        self.sent.append(msg)

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)
        self.sent.extend(decode(self, data))

    # --- reading ------------------------------------------------------------------------

    def receive(self) -> Any:
        while len(self._buf) < HEADER.size or len(self._buf) < self._length():
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("switch closed the connection")
            self._buf += chunk
        length = self._length()
        data, self._buf = self._buf[:length], self._buf[length:]
        version, msg_type, msg_len, xid = HEADER.unpack_from(data)
        return compat.ofproto_parser.msg(self, version, msg_type, msg_len, xid, data)

    def _length(self) -> int:
        return int(HEADER.unpack_from(self._buf)[2])

    def pump(self, programmer: Any, until_barrier: int | None = None) -> None:
        """Hand replies to ``programmer`` (as the app shim does) until the reply to barrier
        ``until_barrier``, or until the flow table has been read when None."""
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            msg = self.receive()
            if isinstance(msg, parser.OFPEchoRequest):
                self.send_msg(parser.OFPEchoReply(self, data=msg.data))
            elif isinstance(msg, parser.OFPErrorMsg):
                self.errors.append(msg)
                programmer.error(self, msg)
            elif isinstance(msg, parser.OFPPortDescStatsReply):
                programmer.port_desc_reply(self, msg.body,
                                           bool(msg.flags & ofp.OFPMPF_REPLY_MORE))
            elif isinstance(msg, parser.OFPFlowStatsReply):
                more = bool(msg.flags & ofp.OFPMPF_REPLY_MORE)
                programmer.flow_stats_reply(self, msg.body, more)
                if not more and until_barrier is None:
                    return
            elif isinstance(msg, parser.OFPBarrierReply):
                programmer.barrier_reply(self, msg.xid)
                if msg.xid == until_barrier:
                    return
        raise TimeoutError("the switch did not answer in time")

    def last_barrier(self) -> int:
        return next(m.xid for m in reversed(self.sent)
                    if isinstance(m, parser.OFPBarrierRequest))

    def flow_stats(self) -> list[readback.Entry]:
        """Every installed flow, decoded as the programmer reads it."""
        self.send_msg(parser.OFPFlowStatsRequest(self, 0, ofp.OFPTT_ALL, ofp.OFPP_ANY,
                                                 ofp.OFPG_ANY, 0, 0, parser.OFPMatch()))
        entries: list[readback.Entry] = []
        while True:
            msg = self.receive()
            if isinstance(msg, parser.OFPErrorMsg):
                self.errors.append(msg)
            elif isinstance(msg, parser.OFPFlowStatsReply):
                entries.extend(readback.decode(raw.data) for raw in msg.body)
                if not msg.flags & ofp.OFPMPF_REPLY_MORE:
                    return entries

    def barrier(self) -> list[Any]:
        """Send a barrier, wait for its reply; returns the errors received meanwhile."""
        request = parser.OFPBarrierRequest(self)
        self.send_msg(request)
        errors = []
        while True:
            msg = self.receive()
            if isinstance(msg, parser.OFPErrorMsg):
                errors.append(msg)
                self.errors.append(msg)
            elif isinstance(msg, parser.OFPBarrierReply) and msg.xid == request.xid:
                return errors

    def close(self) -> None:
        self.sock.close()
