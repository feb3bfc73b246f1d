"""OpenFlow echo rounds to gateway switches: which answered, which missed.

Every ``gateway_echo_interval`` the monitor runs a round: a switch whose previous echo request
is still unanswered has missed one; then each gets a new request whose payload is a sequence
number, so that a late reply to an older request is not taken for the current one. Pure but
for the ``send(dpid, payload) -> bool`` it is given (the framework's
``datapath.send_msg(OFPEchoRequest(datapath, data=payload))``).
"""

from __future__ import annotations

import itertools
import struct
from collections.abc import Callable, Iterable

SendEcho = Callable[[int, bytes], bool]
_PAYLOAD = struct.Struct("!Q")
#: A marker in front of the sequence number: echo replies to other requests are not ours.
MAGIC = b"gwhealth"


def payload(seq: int) -> bytes:
    return MAGIC + _PAYLOAD.pack(seq)


def seq_of(data: bytes | None) -> int | None:
    if not data or len(data) != len(MAGIC) + _PAYLOAD.size or not data.startswith(MAGIC):
        return None
    return int(_PAYLOAD.unpack_from(data, len(MAGIC))[0])


class EchoProber:
    def __init__(self, send: SendEcho) -> None:
        self.send = send
        self._seq = itertools.count(1)
        self.outstanding: dict[int, int] = {}    # dpid -> sequence number awaited
        self.sent = 0

    def round(self, dpids: Iterable[int]) -> list[int]:
        """Send this round's requests; the switches that missed the previous one."""
        missed = []
        wanted = set(dpids)
        for dpid in list(self.outstanding):
            if dpid not in wanted:
                del self.outstanding[dpid]
        for dpid in sorted(wanted):
            if dpid in self.outstanding:
                missed.append(dpid)
                del self.outstanding[dpid]
            seq = next(self._seq)
            if self.send(dpid, payload(seq)):
                self.outstanding[dpid] = seq
                self.sent += 1
        return missed

    def reply(self, dpid: int, data: bytes | None) -> bool:
        """An echo reply from ``dpid``: True when it answers the request awaited."""
        seq = seq_of(data)
        if seq is None or self.outstanding.get(dpid) != seq:
            return False
        del self.outstanding[dpid]
        return True

    def forget(self, dpid: int) -> None:
        self.outstanding.pop(dpid, None)
