"""PostgreSQL through psycopg 3: sessions on a real pool, waits that do not block the
eventlet hub, and the controller running on it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.pool import QueuePool

from ryu_sched.db import Database
from ryu_sched.db import models as m
from tests.support.controller import ControllerProcess

pytestmark = pytest.mark.integration


def test_sessions_commit_roll_back_and_use_a_pool(postgres_url: str) -> None:
    db = Database(postgres_url)
    try:
        assert db.backend == "postgresql" and not db.is_sqlite
        assert isinstance(db.engine.pool, QueuePool)
        db.create_schema()
        with db.session() as session:
            session.add(m.Network(id="net-1", name="kept"))
        with pytest.raises(RuntimeError), db.session() as session:
            session.add(m.Network(id="net-2", name="rolled back"))
            session.flush()
            raise RuntimeError("abort")
        with db.session() as outer, db.session() as inner:   # two connections at once
            outer.add(m.Network(id="net-3", name="outer"))
            outer.flush()
            assert inner.scalar(select(m.Network.id).where(m.Network.id == "net-3")) is None
        with db.session() as session:
            assert sorted(session.scalars(select(m.Network.name))) == ["kept", "outer"]
    finally:
        db.dispose()


def probe(url: str, *args: str) -> dict[str, object]:
    proc = subprocess.run([sys.executable, "-m", "tests.support.pg_green_probe", url, *args],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def test_a_query_waiting_in_the_server_lets_other_green_threads_run(postgres_url: str) -> None:
    result = probe(postgres_url)
    assert result["wait"] == "wait_select"
    assert result == {"wait": "wait_select", "releaser": "saw the waiter queued",
                      "waiter": "got the lock", "cooperative": True}


def test_the_probe_sees_psycopgs_own_wait_block_the_hub(postgres_url: str) -> None:
    """The control: without ryu_sched's Database, psycopg's C wait holds the hub, the
    releaser cannot run and the waiter ends by its statement_timeout."""
    result = probe(postgres_url, "--plain", "--timeout-ms", "1500")
    assert result["wait"] == "wait_c"
    assert result["cooperative"] is False
    assert result["releaser"] == "never saw the waiter"


def test_controller_runs_on_postgresql_and_keeps_its_data(postgres_url: str,
                                                           tmp_path: Path) -> None:
    with ControllerProcess(tmp_path / "controller", {"connection": postgres_url}) as ctl:
        status, body = ctl.request("POST", "/v2.0/networks", {"network": {"name": "pg-net"}})
        assert status == 201, body
        net_id = body["network"]["id"]
        status, body = ctl.request("POST", "/v2.0/subnets", {"subnet": {
            "network_id": net_id, "cidr": "10.9.0.0/24", "ip_version": 4}})
        assert status == 201, body
        status, body = ctl.request("POST", "/v2.0/ports", {"port": {"network_id": net_id}})
        assert status == 201, body
        assert "database schema: empty database ->" in ctl.log_text()
        assert "psycopg waits go through eventlet's green select" in ctl.log_text()
        ctl.restart()
        status, body = ctl.request("GET", f"/v2.0/networks/{net_id}")
        assert status == 200 and body["network"]["name"] == "pg-net"
        status, body = ctl.request("GET", f"/v2.0/ports?network_id={net_id}")
        assert status == 200 and len(body["ports"]) == 1
        assert body["ports"][0]["fixed_ips"][0]["ip_address"].startswith("10.9.0.")
