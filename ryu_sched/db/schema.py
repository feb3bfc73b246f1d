"""The whole schema: every module that defines tables on ``Base``, in one list.

The migrations compare against this metadata (``ryu-sched-db-manage check`` and the test
that the newest revision matches the models), so a module that adds tables belongs here.
"""

from __future__ import annotations

import importlib

from sqlalchemy import MetaData

from ryu_sched.db.models import Base

TABLE_MODULES = (
    "ryu_sched.db.models",
    "ryu_sched.db.registry_models",
    "ryu_sched.leadership.lease",
)


def metadata() -> MetaData:
    """``Base.metadata`` with the tables of every module in :data:`TABLE_MODULES`."""
    for name in TABLE_MODULES:
        importlib.import_module(name)
    return Base.metadata
