"""Upstream gateway MACs learnt by ARP, in memory with write-through to the database
(:class:`ryu_sched.db.models.LearnedNeighbor`), so that a restarted controller computes the same
SNAT/floating-IP flows at once instead of dropping them until ARP answers."""

from __future__ import annotations

from sqlalchemy import select

from ryu_sched.db import Database
from ryu_sched.db.models import LearnedNeighbor


class NeighborTable:
    """IP -> MAC of upstream gateways."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.macs: dict[str, str] = {}

    def load(self) -> None:
        with self.db.session() as session:
            rows = session.scalars(select(LearnedNeighbor)).all()
            self.macs = {row.ip_address: row.mac_address for row in rows}

    def learn(self, ip: str, mac: str) -> bool:
        """Record ``ip`` at ``mac``; True when this changed anything."""
        mac = mac.lower()
        if self.macs.get(ip) == mac:
            return False
        with self.db.session() as session:
            row = session.get(LearnedNeighbor, ip)
            if row is None:
                session.add(LearnedNeighbor(ip_address=ip, mac_address=mac))
            else:
                row.mac_address = mac
        self.macs[ip] = mac
        return True
