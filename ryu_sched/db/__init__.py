"""Database access: SQLAlchemy 2.x models and the unit-of-work session factory."""

from ryu_sched.db import registry_models  # noqa: F401  (registers its tables on Base)
from ryu_sched.db.engine import Database
from ryu_sched.db.models import Base

__all__ = ["Base", "Database"]
