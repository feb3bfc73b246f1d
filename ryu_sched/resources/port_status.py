"""Where each port's tap was seen and the status that follows from it: the one writer of
``ports.bound_dpid`` and of the data-plane status of a port (besides a DHCP agent's report
of its own port, ``update_dhcp_port``, for a port the controller sees on no switch).

The programmer (the leader's) learns locations from the switches' port descriptions and
decides statuses (VM and DHCP ports by their taps, router ports by the router's switch; see
``Programmer._port_changes``) and hands them here; :func:`record_port_locations` writes the
rows that differ in one transaction, bumping their revision numbers, and publishes a
:class:`ryu_sched.events.PortLocated` for each of them once it has committed (the programmer
itself ignores those events: it already knows).
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterable

from sqlalchemy import bindparam, select, update

from ryu_sched.db.models import Port, utcnow
from ryu_sched.events import PortLocated
from ryu_sched.resources.common import Tx, run
from ryu_sched.services import Services

#: Ports read per query: well under every database's limit on bound parameters.
CHUNK = 500


class PortStatus(enum.StrEnum):
    """The statuses the data plane decides: ACTIVE while the port's tap is seen on a switch
    and the port is administratively up, DOWN otherwise."""

    ACTIVE = "ACTIVE"
    DOWN = "DOWN"

    @classmethod
    def of(cls, dpid: int | None, admin_state_up: bool) -> PortStatus:
        return cls.ACTIVE if dpid is not None and admin_state_up else cls.DOWN


@dataclasses.dataclass(frozen=True)
class PortLocation:
    """Port ``port_id`` has its tap on switch ``dpid`` (None: on no switch)."""

    port_id: str
    dpid: int | None
    status: PortStatus


def record_port_locations(services: Services,
                          locations: Iterable[PortLocation]) -> list[PortLocated]:
    """Write each location whose row differs (ports deleted meanwhile are skipped); returns
    the events published, one per changed port. Only the leader programs switches and so
    records locations: the write goes through its fence (``FencedOut`` once it no longer
    leads)."""
    wanted = {location.port_id: location for location in locations}
    if not wanted:
        return []

    def work(tx: Tx) -> list[PortLocated]:
        services.leadership.fence(tx.session)
        ids = sorted(wanted)
        changed: list[dict[str, object]] = []
        for start in range(0, len(ids), CHUNK):
            rows = tx.session.execute(
                select(Port.id, Port.network_id, Port.bound_dpid, Port.status)
                .where(Port.id.in_(ids[start:start + CHUNK]))).all()
            for port_id, network_id, bound_dpid, status in rows:
                location = wanted[port_id]
                if bound_dpid == location.dpid and status == location.status:
                    continue
                changed.append({"b_id": port_id, "b_dpid": location.dpid,
                                "b_status": str(location.status)})
                tx.emit(PortLocated(port_id=port_id, network_id=network_id,
                                    status=str(location.status), dpid=location.dpid))
        if changed:
            # One UPDATE for all the rows; a status change is a change of the port: its
            # revision number and updated_at move too (standard attributes).
            table = Port.__table__
            tx.session.execute(
                update(table).where(table.c.id == bindparam("b_id")).values(
                    bound_dpid=bindparam("b_dpid"), status=bindparam("b_status"),
                    revision_number=table.c.revision_number + 1, updated_at=utcnow()),
                changed)
        return [event for event in tx.events if isinstance(event, PortLocated)]

    return run(services, work)
