"""Registry tables beyond the agents and bindings: the log of binding moves."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import DateTime, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from ryu_sched.db.models import Base, utcnow


class BindingMove(Base):
    """One network or router moved from one agent to another (failover, drain, rebalance,
    gateway re-placement). Agent ids are plain strings: the log outlives deleted agents."""

    __tablename__ = "bindingmoves"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, index=True)
    resource: Mapped[str] = mapped_column(String(16))          # "network" | "router"
    resource_id: Mapped[str] = mapped_column(String(36), index=True)
    from_agent_id: Mapped[str] = mapped_column(String(36), index=True)
    from_host: Mapped[str] = mapped_column(String(255), default="")
    to_agent_id: Mapped[str] = mapped_column(String(36), index=True)
    to_host: Mapped[str] = mapped_column(String(255), default="")
    reason: Mapped[str] = mapped_column(String(32))             # failover|drain|rebalance|gateway
