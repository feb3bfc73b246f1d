"""Schema migrations (alembic): where a database is, and bringing it to the code's newest.

The revisions live in ``versions/``; ``0001`` is the schema as it was when migrations were
introduced. A database is in one of the :class:`SchemaState` states; :func:`upgrade` (what
the controller runs at start, and ``ryu-sched-db-manage upgrade``):

- ``EMPTY``: creates the whole schema by running every revision;
- ``UNVERSIONED`` (tables made by ``create_all`` before migrations existed, no
  ``alembic_version``): adopts it as revision 0001 (0001 creates only the tables it lacks,
  the existing ones and their rows are kept), then runs the later revisions;
- ``BEHIND``: runs the missing revisions;
- ``CURRENT``: nothing to do;
- ``UNKNOWN`` (a revision this code does not have: a newer ryu-sched migrated it): refuses,
  with :class:`~ryu_sched.db.errors.UnknownSchemaRevision`.

All of it runs in one transaction; on PostgreSQL under a transaction-level advisory lock,
so that controllers started together migrate one after the other (the later ones find the
work done).
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import logging
import os
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, Engine

from ryu_sched.db.errors import UnknownSchemaRevision

LOG = logging.getLogger(__name__)
# alembic says "Context impl ..." each time a database is looked at; our own log line
# ("database schema: ... -> ...") says what happened. An explicit level set by logging
# configuration is kept.
_ALEMBIC_CHATTER = logging.getLogger("alembic.runtime.migration")
if _ALEMBIC_CHATTER.level == logging.NOTSET:
    _ALEMBIC_CHATTER.setLevel(logging.WARNING)

MIGRATIONS_DIR = os.path.dirname(os.path.abspath(__file__))
INITIAL_REVISION = "0001"
VERSION_TABLE = "alembic_version"
# pg_advisory_xact_lock key serialising migrations of one database ("ryu-sched" in ASCII).
ADVISORY_LOCK_KEY = 0x7279752D73636864


class SchemaState(enum.Enum):
    EMPTY = "empty"
    UNVERSIONED = "unversioned"
    BEHIND = "behind"
    CURRENT = "current"
    UNKNOWN = "unknown"


@dataclasses.dataclass(frozen=True)
class SchemaStatus:
    state: SchemaState
    revision: str | None      # the database's, None without alembic_version
    head: str                 # the code's newest

    def describe(self) -> str:
        where = self.revision or "no revision"
        return {
            SchemaState.EMPTY: "empty database",
            SchemaState.UNVERSIONED: "tables without a revision (created before migrations)",
            SchemaState.BEHIND: f"at {where}, behind the code's {self.head}",
            SchemaState.CURRENT: f"at {where} (the code's newest)",
            SchemaState.UNKNOWN: f"at {where}, a revision this code does not know "
                                 f"(its newest is {self.head})",
        }[self.state]


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", MIGRATIONS_DIR)
    config.attributes["connection"] = connection
    return config


@functools.cache
def script() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def head() -> str:
    revision = script().get_current_head()
    assert revision is not None
    return revision


def status(connection: Connection) -> SchemaStatus:
    """Where the database on ``connection`` is, relative to this code's revisions."""
    newest = head()
    revisions = MigrationContext.configure(connection).get_current_heads()
    if not revisions:
        tables = set(inspect(connection).get_table_names()) - {VERSION_TABLE}
        state = SchemaState.UNVERSIONED if tables else SchemaState.EMPTY
        return SchemaStatus(state, None, newest)
    current = revisions[0]
    if len(revisions) > 1 or not _known(current):
        return SchemaStatus(SchemaState.UNKNOWN, ",".join(revisions), newest)
    state = SchemaState.CURRENT if current == newest else SchemaState.BEHIND
    return SchemaStatus(state, current, newest)


def _known(revision: str) -> bool:
    try:
        return script().get_revision(revision) is not None
    except CommandError:
        return False


def _serialise(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                           {"key": ADVISORY_LOCK_KEY})


def upgrade(engine: Engine, target: str = "head", url_for_messages: str = "") -> SchemaStatus:
    """Bring the database to ``target`` (default: the newest revision); returns the status
    found before. Raises :class:`UnknownSchemaRevision` for a database this code cannot
    know, without touching it."""
    with engine.begin() as connection:
        _serialise(connection)
        before = status(connection)
        if before.state is SchemaState.UNKNOWN:
            raise UnknownSchemaRevision(
                f"the database {url_for_messages or engine.url.render_as_string()} is "
                f"{before.describe()}: it was migrated by a newer ryu-sched. Run that "
                "version, or point this one at another database; this code will not use it")
        if before.state is SchemaState.UNVERSIONED:
            LOG.info("database created before schema migrations: adopting it as revision "
                     "%s (its tables and rows are kept)", INITIAL_REVISION)
        if before.state is not SchemaState.CURRENT or target != "head":
            command.upgrade(alembic_config(connection), target)
            LOG.info("database schema: %s -> %s", before.describe(), _current(connection))
        return before


def _current(connection: Connection) -> str:
    revisions = MigrationContext.configure(connection).get_current_heads()
    return ",".join(revisions) or "no revision"


def differences(connection: Connection) -> list[Any]:
    """How the database's tables differ from the models (alembic's autogenerate diff);
    empty when they match."""
    from alembic.autogenerate import compare_metadata

    from ryu_sched.db.schema import metadata

    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, metadata()))
