"""psycopg 3 under eventlet: make its waits cooperative.

psycopg 3 runs libpq in non-blocking mode and waits for its socket with a *wait function*.
By default it picks ``wait_c``, a C loop around ``poll()``, unless it sees gevent's monkey
patching; it does not recognise eventlet's. ``wait_c`` would hold the eventlet hub for the
whole of every query: a slow query (or a row lock waited for) would freeze every green
thread of the controller, the lease renewal included.

psycopg's pure-Python ``wait_select`` and ``wait_conn`` wait through the ``select`` module
and ``selectors.DefaultSelector`` that ``psycopg.waiting`` imported. :func:`make_psycopg_green`
points those at eventlet's green versions and makes ``wait_select`` the wait function, so a
waiting query yields to the hub like any green socket does. It is applied when the process
has been monkey-patched by eventlet (as the Ryu/os-ken manager does before loading the app);
in a process without green threads psycopg keeps its C wait.
"""

from __future__ import annotations

import logging
import sys

LOG = logging.getLogger(__name__)

_applied = False


def eventlet_patched() -> bool:
    """True when eventlet has monkey-patched ``select`` or ``socket`` in this process."""
    if "eventlet" not in sys.modules:
        return False
    import eventlet.patcher

    return bool(eventlet.patcher.is_monkey_patched("select")
                or eventlet.patcher.is_monkey_patched("socket"))


def make_psycopg_green() -> bool:
    """Route psycopg 3's waits through eventlet; True when this call changed anything."""
    global _applied
    if _applied:
        return False
    from eventlet.green import select as green_select
    from eventlet.green import selectors as green_selectors
    from psycopg import waiting

    waiting.select = green_select                              # used by wait_select
    waiting.DefaultSelector = green_selectors.DefaultSelector  # used by wait_conn
    waiting.wait = waiting.wait_select
    _applied = True
    LOG.info("psycopg waits go through eventlet's green select")
    return True


def prepare_driver(backend: str, driver: str) -> None:
    """Called before an engine is created for ``backend+driver``."""
    if backend == "postgresql" and driver == "psycopg" and eventlet_patched():
        make_psycopg_green()
