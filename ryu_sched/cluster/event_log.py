"""``cluster_events``: relayed events too large for a NOTIFY payload.

PostgreSQL refuses a NOTIFY payload of 8,000 bytes or more. An event whose wire form is
larger (a port with hundreds of fixed IPs) is stored here and the notification carries only
its row id; the receivers read the row. Rows are deleted once they are
:data:`KEEP_SECONDS` old, by the relay that wrote them.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, DateTime, Integer, Text
from sqlalchemy.orm import Mapped, mapped_column

from ryu_sched.db.models import Base, utcnow

KEEP_SECONDS = 300


class ClusterEvent(Base):
    __tablename__ = "cluster_events"

    # BigInteger on PostgreSQL, INTEGER on SQLite (its only autoincrementing type).
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                    primary_key=True, autoincrement=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, index=True)
    payload: Mapped[str] = mapped_column(Text)
