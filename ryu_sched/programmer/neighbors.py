"""Upstream gateway MACs learnt by ARP, kept in the database so that a restarted controller
computes the same SNAT/floating-IP flows at once instead of dropping them until ARP answers."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import DateTime, String, select
from sqlalchemy.orm import Mapped, mapped_column

from ryu_sched.db import Database
from ryu_sched.db.models import Base, utcnow


class LearnedNeighbor(Base):
    __tablename__ = "learned_neighbors"

    ip_address: Mapped[str] = mapped_column(String(64), primary_key=True)
    mac_address: Mapped[str] = mapped_column(String(32))
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class NeighborTable:
    """IP -> MAC of upstream gateways, in memory with write-through to the database."""

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
