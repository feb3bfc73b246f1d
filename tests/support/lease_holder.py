"""Run as a script: one process contending for the leader lease, as a controller would.

    python -m tests.support.lease_holder URL HOLDER LEASE_TIME

Monkey-patched by eventlet first (like the controller). Runs a LeaderElector on the
PostgreSQL database at URL and, while it believes it leads, keeps writing rows
``(holder, epoch)`` into table ``lease_probe`` (the test creates it), each write behind
the elector's fence. Reports on stdout, one JSON object a line:

- ``started``; ``attempt`` after each renewal attempt (``leader``, and the lease's
  ``holder``/``epoch`` as last seen in the database);
- ``elected`` (``epoch``), ``demoted``;
- ``wrote`` the first time a write of an epoch committed, ``fenced`` when the fence
  refused one, ``error`` for any other failed write;
- ``stopped`` after SIGTERM: the elector is stopped and its lease released.
"""

from __future__ import annotations

import json
import signal
import sys
from typing import Any


def main(url: str, holder: str, lease_time: float) -> None:
    import eventlet
    from sqlalchemy import text

    from ryu_sched.db import Database
    from ryu_sched.leadership import FencedOut, LeaderElector, Lease

    def emit(event: str, **fields: Any) -> None:
        print(json.dumps({"event": event, "holder": holder, **fields}), flush=True)

    db = Database(url)
    elector = LeaderElector(Lease(db), lease_time, holder,
                            on_elected=lambda epoch: emit("elected", epoch=epoch),
                            on_demoted=lambda: emit("demoted"))
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    elector.start()
    emit("started")
    seen_attempts, wrote = 0, set()
    while not stopping:
        if elector.attempts != seen_attempts:
            seen_attempts = elector.attempts
            state = elector.last_state
            emit("attempt", n=seen_attempts, leader=elector.is_leader,
                 lease_holder=state.holder if state else None,
                 lease_epoch=state.epoch if state else None)
        if elector.is_leader:
            try:
                with db.session() as session:
                    epoch = elector.fence(session)
                    session.execute(text("INSERT INTO lease_probe (holder, epoch) "
                                         "VALUES (:holder, :epoch)"),
                                    {"holder": holder, "epoch": epoch})
                if epoch not in wrote:
                    wrote.add(epoch)
                    emit("wrote", epoch=epoch)
            except FencedOut as exc:
                emit("fenced", ours=exc.ours, stored=exc.stored)
            except Exception as exc:
                emit("error", error=f"{type(exc).__name__}: {str(exc)[:200]}")
        eventlet.sleep(0.05)
    elector.stop(release=True)
    db.dispose()
    emit("stopped")


if __name__ == "__main__":
    import eventlet

    eventlet.monkey_patch()
    main(sys.argv[1], sys.argv[2], float(sys.argv[3]))
