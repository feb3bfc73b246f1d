"""This controller's OpenFlow role on one switch, as asked and as the switch answered.

With several controllers every switch lists all of them. The leader asks each switch for
MASTER with ``generation_id`` = its lease epoch; the others ask for SLAVE with the newest
epoch they have seen. A switch keeps one master (granting MASTER to one connection turns
the previous master into a slave), refuses a MASTER or SLAVE request whose generation id is
older than the newest it has seen (``OFPRRFC_STALE``), and refuses flow mods and
packet-outs from a slave. A new connection starts as EQUAL (``other`` in ``ovs-vsctl list
controller``). OpenFlow 1.3 does not tell a master that it was demoted: the controller
learns that from its own lease, not from the switch.

The programmer programs a switch only while it leads and the switch confirmed MASTER at its
current epoch (:meth:`SwitchRole.is_master`).
"""

from __future__ import annotations

import dataclasses
import enum

from ryu_sched import compat


class Role(enum.Enum):
    NONE = "none"        # nothing asked on this connection (or refused): EQUAL
    MASTER = "master"
    SLAVE = "slave"

    @property
    def wire(self) -> int:
        return {Role.MASTER: compat.ROLE_MASTER, Role.SLAVE: compat.ROLE_SLAVE,
                Role.NONE: compat.ROLE_EQUAL}[self]

    @classmethod
    def of_wire(cls, value: int) -> Role:
        return {compat.ROLE_MASTER: cls.MASTER, compat.ROLE_SLAVE: cls.SLAVE}.get(
            int(value), cls.NONE)


@dataclasses.dataclass
class SwitchRole:
    wanted: Role = Role.NONE
    generation: int = 0             # the generation id of the last request
    confirmed: Role = Role.NONE     # what the switch last answered to it
    xid: int | None = None          # the last request, to recognise its error
    refused: bool = False           # the switch refused it (a stale generation id)

    def asked(self, role: Role, generation: int, xid: int | None) -> None:
        self.wanted, self.generation, self.xid = role, generation, xid
        self.confirmed, self.refused = Role.NONE, False

    def answered(self, role: Role, xid: int) -> bool:
        """The switch's reply (it echoes the request's xid); True when it grants what we
        asked last."""
        if xid != self.xid or role is not self.wanted:
            return False            # the answer to an older request
        self.confirmed, self.refused = role, False
        return True

    def refuse(self) -> None:
        self.refused, self.confirmed = True, Role.NONE

    def is_master(self, epoch: int | None) -> bool:
        return (epoch is not None and self.wanted is Role.MASTER
                and self.confirmed is Role.MASTER and self.generation == epoch)

    def is_slave_at_least(self, generation: int) -> bool:
        return (self.wanted is Role.SLAVE and not self.refused
                and self.generation >= generation)
