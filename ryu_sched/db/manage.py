"""``ryu-sched-db-manage``: look at and migrate the controller's database.

    ryu-sched-db-manage --config-file /etc/ryu-sched/ryu_sched.conf upgrade [REVISION]
    ryu-sched-db-manage --connection postgresql+psycopg://... current
    ryu-sched-db-manage --config-file ... check

The database is the controller's: ``[ryu_sched] connection`` of the configuration files
(empty: the SQLite file in ``state_path``), or ``--connection``.

- ``upgrade [REVISION]`` (default ``head``): migrate, as the controller does at start. On a
  SQLite file it refuses while a controller is using it.
- ``current``: print the database's revision and state (exit 0 at the newest, 1 behind or
  empty, 2 at a revision this code does not know).
- ``check``: exit 0 only if the database is at the newest revision and its tables match
  the models; otherwise print why and exit 1 (2 for an unknown revision).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings
from collections.abc import Sequence

from alembic.util.exc import CommandError
from oslo_config import cfg
from sqlalchemy.exc import SQLAlchemyError

from ryu_sched.config import register_opts, settings_from_conf
from ryu_sched.db import migrations
from ryu_sched.db.engine import Database
from ryu_sched.db.errors import DatabaseError, UnknownSchemaRevision
from ryu_sched.db.migrations import SchemaState

EXIT_OK, EXIT_NOT_CURRENT, EXIT_UNKNOWN, EXIT_ERROR = 0, 1, 2, 3


def connection_url(config_files: Sequence[str], connection: str | None) -> str:
    if connection:
        return connection
    conf = cfg.ConfigOpts()
    register_opts(conf)
    conf(args=[], project="ryu-sched", default_config_files=list(config_files))
    return settings_from_conf(conf).connection


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ryu-sched-db-manage",
                                     description="Schema migrations of the ryu-sched database.")
    parser.add_argument("--config-file", action="append", default=[], metavar="PATH",
                        help="controller configuration file ([ryu_sched] connection, "
                             "state_path); may be repeated")
    parser.add_argument("--connection", metavar="URL",
                        help="SQLAlchemy URL of the database (instead of the configuration)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what alembic does")
    commands = parser.add_subparsers(dest="command", required=True)
    upgrade = commands.add_parser("upgrade", help="migrate to REVISION (default: head)")
    upgrade.add_argument("revision", nargs="?", default="head")
    commands.add_parser("current", help="the database's revision")
    commands.add_parser("check", help="at the newest revision and matching the models?")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # The models import eventlet (the elector), whose deprecation banner is no news here.
    warnings.filterwarnings("ignore", message=r"(?s).*Eventlet is deprecated")
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if args.verbose:
        logging.getLogger("alembic.runtime.migration").setLevel(logging.INFO)
    try:
        db = Database(connection_url(args.config_file, args.connection))
    except (cfg.Error, ValueError) as exc:
        print(f"ryu-sched-db-manage: {exc}", file=sys.stderr)
        return EXIT_ERROR
    try:
        return _run(args, db)
    except (DatabaseError, CommandError, SQLAlchemyError, OSError) as exc:
        print(f"ryu-sched-db-manage: {exc}", file=sys.stderr)
        return EXIT_UNKNOWN if isinstance(exc, UnknownSchemaRevision) else EXIT_ERROR
    finally:
        db.dispose()


def _run(args: argparse.Namespace, db: Database) -> int:
    if args.command != "upgrade" and db.sqlite_path and not os.path.exists(db.sqlite_path):
        print(f"{db.display_url}: no such database file")
        return EXIT_NOT_CURRENT
    if args.command == "upgrade":
        db.claim_sole_use()
        before = migrations.upgrade(db.engine, args.revision, url_for_messages=db.display_url)
        with db.engine.connect() as connection:
            after = migrations.status(connection)
        print(f"{db.display_url}: {before.describe()} -> {after.describe()}")
        return EXIT_OK
    with db.engine.connect() as connection:
        status = migrations.status(connection)
        diffs = migrations.differences(connection) \
            if args.command == "check" and status.state is SchemaState.CURRENT else []
    print(f"{db.display_url}: {status.describe()}")
    if status.state is SchemaState.UNKNOWN:
        return EXIT_UNKNOWN
    if args.command == "current":
        return EXIT_OK if status.state is SchemaState.CURRENT else EXIT_NOT_CURRENT
    for diff in diffs:
        print(f"  differs from the models: {diff}")
    return EXIT_OK if status.state is SchemaState.CURRENT and not diffs else EXIT_NOT_CURRENT


if __name__ == "__main__":
    sys.exit(main())
