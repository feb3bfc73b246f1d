"""Run as a script (``python -m tests.support.pg_green_probe URL [--plain]``): does a green
thread waiting inside a PostgreSQL query let the other green threads run?

The process is monkey-patched by eventlet first, as the controller's manager does. A
connection takes an advisory lock; green thread *waiter* asks for the same lock and so
waits inside the server. Green thread *releaser* watches ``pg_locks`` until the waiter is
queued, then releases the lock. If waiting in psycopg holds the eventlet hub, the releaser
never runs and the waiter is ended by ``statement_timeout`` instead.

``--timeout-ms N`` bounds the waiter (default 8000). ``--plain`` builds the engine without
ryu_sched's Database (psycopg's own C wait): the control showing that the probe sees the
difference. Prints one JSON line.
"""

from __future__ import annotations

import eventlet

eventlet.monkey_patch()

import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

from sqlalchemy import create_engine, text  # noqa: E402

KEY = 424242


def main() -> None:
    url, plain = sys.argv[1], "--plain" in sys.argv[2:]
    timeout_ms = int(sys.argv[sys.argv.index("--timeout-ms") + 1]) \
        if "--timeout-ms" in sys.argv else 8000
    if plain:
        engine = create_engine(url, pool_size=5)
    else:
        from ryu_sched.db import Database

        engine = Database(url).engine
    from psycopg import waiting

    result: dict[str, object] = {"wait": waiting.wait.__name__}
    holder = engine.connect()
    holder.execute(text("SELECT pg_advisory_lock(:k)"), {"k": KEY})

    def waiter() -> None:
        with engine.connect() as conn:
            conn.execute(text(f"SET statement_timeout = {timeout_ms}"))
            try:
                conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": KEY})
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": KEY})
                result["waiter"] = "got the lock"
            except Exception as exc:
                result["waiter"] = f"failed: {type(exc).__name__}"

    def releaser() -> None:
        deadline = time.monotonic() + timeout_ms / 1000
        with engine.connect() as conn:
            while "waiter" not in result and time.monotonic() < deadline:
                queued = conn.execute(text(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                    "AND NOT granted")).scalar_one()
                if queued:
                    result["releaser"] = "saw the waiter queued"
                    holder.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": KEY})
                    return
                eventlet.sleep(0.01)
            result["releaser"] = "never saw the waiter"

    threads = [eventlet.spawn(waiter), eventlet.spawn(releaser)]
    for thread in threads:
        thread.wait()
    holder.close()
    engine.dispose()
    result["cooperative"] = result.get("waiter") == "got the lock"
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
