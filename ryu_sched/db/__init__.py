"""Database access: SQLAlchemy 2.x models, the unit-of-work session factory, migrations."""

from ryu_sched.db import (
    registry_models,  # noqa: F401  (registers its tables on Base)
    revisions,  # noqa: F401  (revision numbers: session events)
)
from ryu_sched.db.engine import Database
from ryu_sched.db.errors import DatabaseError, DatabaseInUse, UnknownSchemaRevision
from ryu_sched.db.models import Base

__all__ = ["Base", "Database", "DatabaseError", "DatabaseInUse", "UnknownSchemaRevision"]
