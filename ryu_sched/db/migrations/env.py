"""alembic environment: the models' metadata, on the connection the caller hands in.

ryu-sched runs migrations itself (``ryu_sched.db.migrations.upgrade``, the controller at
start, ``ryu-sched-db-manage``) and passes its open connection in
``config.attributes["connection"]``, inside its transaction. Plain ``alembic`` (the
repository's alembic.ini, for writing new revisions) connects to ``sqlalchemy.url`` or
``-x url=...`` instead. ``render_as_batch`` lets revisions alter tables on SQLite too.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection
from sqlalchemy.pool import NullPool

from ryu_sched.db.schema import metadata

config = context.config


def _configure(**kwargs: object) -> None:
    context.configure(target_metadata=metadata(), render_as_batch=True, compare_type=True,
                      **kwargs)


def _run_on(connection: Connection) -> None:
    _configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()


def _url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url") \
        or config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit("no database: pass -x url=<SQLAlchemy URL> or set sqlalchemy.url")
    return url


if context.is_offline_mode():
    _configure(url=_url(), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
elif (given := config.attributes.get("connection")) is not None:
    _run_on(given)
else:
    with create_engine(_url(), poolclass=NullPool).begin() as own:
        _run_on(own)
