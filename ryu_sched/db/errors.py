"""Why a database cannot be used: errors that stop a controller at start with a message."""

from __future__ import annotations


class DatabaseError(RuntimeError):
    """The database cannot be used as it is; the message says why and what to do."""


class DatabaseInUse(DatabaseError):
    """A SQLite database file is already used by another controller process."""


class UnknownSchemaRevision(DatabaseError):
    """The database's schema revision is not one this code knows (newer code migrated it)."""
