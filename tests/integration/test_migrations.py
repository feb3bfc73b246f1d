"""Schema migrations on SQLite and PostgreSQL: the revisions build exactly the models'
schema, keep data across upgrades, adopt databases made before migrations, refuse ones
made by newer code; and ``ryu-sched-db-manage`` and the controller do the same."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Engine,
    Integer,
    MetaData,
    Table,
    create_engine,
    func,
    inspect,
    select,
    text,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ryu_sched.cluster.event_log import ClusterEvent
from ryu_sched.db import Database, UnknownSchemaRevision, migrations
from ryu_sched.db import models as m
from ryu_sched.db.migrations import SchemaState
from ryu_sched.db.registry_models import BindingMove
from ryu_sched.db.schema import metadata
from ryu_sched.leadership.lease import LeaderLease
from ryu_sched.programmer.neighbors import LearnedNeighbor
from tests.support.controller import ControllerProcess

pytestmark = pytest.mark.integration

FIRST = migrations.INITIAL_REVISION



def make_database_from_before_migrations(engine: Engine, without: tuple[str, ...] = ()
                                         ) -> None:
    """The tables ``create_all`` made before migrations existed (exactly revision 0001's,
    whatever the models have become since), minus ``without``, and no ``alembic_version``."""
    migrations.upgrade(engine, FIRST)
    with engine.begin() as connection:
        for name in (migrations.VERSION_TABLE, *without):
            connection.execute(text(f"DROP TABLE {name}"))


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/ryu_sched.sqlite"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def second_url(request: pytest.FixtureRequest, url: str, tmp_path: Path) -> str:
    """Another empty database on the same backend as ``url``."""
    if url.startswith("sqlite"):
        return f"sqlite:///{tmp_path}/other.sqlite"
    cluster = request.getfixturevalue("postgres_cluster")
    other = cluster.create_database("other")
    request.addfinalizer(lambda: cluster.drop_database(other))
    return str(other)


@pytest.fixture
def engine(url: str) -> Iterator[Engine]:
    engine = create_engine(url)
    yield engine
    engine.dispose()


def schema_of(engine: Engine) -> dict[str, Any]:
    """Everything the schema says about each table, comparable across two databases."""
    insp = inspect(engine)
    out: dict[str, Any] = {}
    for table in sorted(insp.get_table_names()):
        if table == migrations.VERSION_TABLE:
            continue
        out[table] = {
            "columns": [(c["name"], c["type"].compile(dialect=engine.dialect), c["nullable"],
                         c.get("default"))
                        for c in insp.get_columns(table)],
            "pk": insp.get_pk_constraint(table)["constrained_columns"],
            "fks": sorted((tuple(fk["constrained_columns"]), fk["referred_table"],
                           tuple(fk["referred_columns"]), fk["options"].get("ondelete"))
                          for fk in insp.get_foreign_keys(table)),
            "uniques": sorted((u["name"] or "", tuple(u["column_names"]))
                              for u in insp.get_unique_constraints(table)),
            "indexes": sorted((i["name"], tuple(i["column_names"]), bool(i["unique"]))
                              for i in insp.get_indexes(table)),
        }
    return out


def revision_of(engine: Engine) -> SchemaState:
    with engine.connect() as connection:
        return migrations.status(connection).state


def insert(connection: Connection, table_name: str, **values: Any) -> None:
    """A row in the table as the database has it (columns of any older revision): columns
    not given get a plain value of their type."""
    table = Table(table_name, MetaData(), autoload_with=connection)
    row = dict(values)
    for column in table.columns:
        if column.name in row or column.nullable or column.server_default is not None \
                or column.autoincrement is True:
            continue
        if isinstance(column.type, JSON):
            row[column.name] = {}
        elif isinstance(column.type, Boolean):
            row[column.name] = True
        elif isinstance(column.type, DateTime):
            row[column.name] = dt.datetime(2024, 1, 1)
        elif isinstance(column.type, Integer):
            row[column.name] = 1 if not column.primary_key else None
        else:
            row[column.name] = ""
    connection.execute(table.insert().values(**{k: v for k, v in row.items()
                                                 if v is not None}))


def fill(engine: Engine) -> None:
    """A little of everything the first revision holds, written with that revision's
    columns (the models may have more)."""
    with engine.begin() as connection:
        insert(connection, "networks", id="net-1", name="tenant", network_type="vlan",
               physical_network="physnet1", segmentation_id=101, mtu=1500,
               status="ACTIVE", availability_zone_hints=["az1"], shared=False,
               router_external=False)
        insert(connection, "subnets", id="sub-1", network_id="net-1", cidr="10.0.0.0/24",
               ip_version=4, gateway_ip="10.0.0.1",
               allocation_pools=[{"start": "10.0.0.2", "end": "10.0.0.9"}],
               dns_nameservers=[], host_routes=[])
        insert(connection, "ports", id="port-1", network_id="net-1",
               mac_address="fa:16:3e:00:00:01", bound_dpid=2**40, status="DOWN")
        insert(connection, "ipallocations", port_id="port-1", subnet_id="sub-1",
               network_id="net-1", ip_address="10.0.0.5")
        insert(connection, "agents", id="agent-1", agent_type="DHCP agent", host="h1",
               configurations={"networks": 1})
        insert(connection, "networkdhcpagentbindings", network_id="net-1",
               dhcp_agent_id="agent-1", binding_index=1)
        insert(connection, "bindingmoves", resource="network", resource_id="net-1",
               from_agent_id="a0", to_agent_id="agent-1", reason="failover")
        insert(connection, "learned_neighbors", ip_address="203.0.113.1",
               mac_address="00:00:5e:00:01:01")


def assert_filled(db: Database) -> None:
    with db.session() as session:
        net = session.scalars(select(m.Network)).one()
        assert (net.id, net.segmentation_id, net.availability_zone_hints) == \
            ("net-1", 101, ["az1"])
        assert session.get(m.Subnet, "sub-1").allocation_pools[0]["end"] == "10.0.0.9"
        port = session.get(m.Port, "port-1")
        assert port.bound_dpid == 2**40
        assert [a.ip_address for a in port.fixed_ips] == ["10.0.0.5"]
        assert session.get(m.Agent, "agent-1").configurations == {"networks": 1}
        assert session.scalar(select(func.count()).select_from(m.NetworkDhcpAgentBinding)) == 1
        assert session.scalar(select(BindingMove.reason)) == "failover"
        assert session.get(LearnedNeighbor, "203.0.113.1").mac_address == "00:00:5e:00:01:01"


# --- the revisions --------------------------------------------------------------------

def test_upgrade_builds_exactly_the_schema_of_the_models(url: str, second_url: str) -> None:
    migrated, created = Database(url), create_engine(second_url)
    try:
        before = migrated.create_schema()
        assert before.state is SchemaState.EMPTY
        metadata().create_all(created)
        assert schema_of(migrated.engine) == schema_of(created)
        assert revision_of(migrated.engine) is SchemaState.CURRENT
        with migrated.engine.connect() as connection:
            assert migrations.differences(connection) == []
    finally:
        migrated.dispose()
        created.dispose()


def test_upgrade_from_the_first_revision_keeps_the_data(url: str, engine: Engine) -> None:
    migrations.upgrade(engine, FIRST)
    assert not inspect(engine).has_table(LeaderLease.__tablename__)
    fill(engine)
    db = Database(url)
    try:
        before = db.create_schema()
        assert (before.state, before.revision) == (SchemaState.BEHIND, FIRST)
        assert revision_of(db.engine) is SchemaState.CURRENT
        assert inspect(db.engine).has_table(LeaderLease.__tablename__)
        assert inspect(db.engine).has_table(ClusterEvent.__tablename__)
        assert_filled(db)
    finally:
        db.dispose()


def test_ports_from_before_security_groups_stay_open_after_the_upgrade(url: str,
                                                                      engine: Engine) -> None:
    migrations.upgrade(engine, "0002")
    fill(engine)
    with engine.begin() as connection:
        insert(connection, "ports", id="dhcp-1", network_id="net-1",
               mac_address="fa:16:3e:00:00:02", device_owner="network:dhcp")
        insert(connection, "ports", id="open-1", network_id="net-1",
               mac_address="fa:16:3e:00:00:03", port_security_enabled=False)
    migrations.upgrade(engine)
    with Session(engine) as session:
        assert session.get(m.Port, "port-1").security_group_ids == [
            session.scalars(select(m.SecurityGroup.id)).one()]
        group = session.scalars(select(m.SecurityGroup)).one()
        assert group.name == "legacy-allow-all"
        assert sorted((r.direction, r.ethertype, r.protocol, r.remote_ip_prefix,
                       r.remote_group_id) for r in group.rules) == [
            ("egress", "IPv4", None, None, None), ("egress", "IPv6", None, None, None),
            ("ingress", "IPv4", None, None, None), ("ingress", "IPv6", None, None, None)]
        assert session.get(m.Port, "dhcp-1").security_group_ids == []
        assert session.get(m.Port, "open-1").security_group_ids == []


def test_shared_and_external_networks_become_their_wildcard_policies(url: str,
                                                                    engine: Engine) -> None:
    migrations.upgrade(engine, "0006")
    with engine.begin() as connection:
        for net_id, shared, external in (("shared-1", True, False), ("ext-1", False, True),
                                         ("both-1", True, True), ("plain-1", False, False)):
            insert(connection, "networks", id=net_id, project_id=f"p-{net_id}",
                   network_type="flat", physical_network=net_id, mtu=1500, status="ACTIVE",
                   availability_zone_hints=[], shared=shared, router_external=external)
    migrations.upgrade(engine)
    with Session(engine) as session:
        policies = sorted((p.object_id, p.action, p.target_project, p.project_id)
                          for p in session.scalars(select(m.NetworkRBAC)))
    assert policies == [
        ("both-1", "access_as_external", "*", "p-both-1"),
        ("both-1", "access_as_shared", "*", "p-both-1"),
        ("ext-1", "access_as_external", "*", "p-ext-1"),
        ("shared-1", "access_as_shared", "*", "p-shared-1")]


def test_routers_and_their_bindings_from_before_ha_are_single_and_active(
        url: str, engine: Engine) -> None:
    migrations.upgrade(engine, "0009")
    fill(engine)
    with engine.begin() as connection:
        insert(connection, "agents", id="l3-1", agent_type="L3 agent", host="h1")
        insert(connection, "agents", id="l3-2", agent_type="L3 agent", host="h2")
        insert(connection, "routers", id="rtr-1", name="kept", admin_state_up=True,
               enable_snat=True, availability_zone_hints=[])
        insert(connection, "routerl3agentbindings", router_id="rtr-1", l3_agent_id="l3-1",
               binding_index=1)
    migrations.upgrade(engine)
    with Session(engine) as session:
        router = session.scalars(select(m.Router)).one()
        assert (router.name, router.ha) == ("kept", False)
        binding = session.scalars(select(m.RouterL3AgentBinding)).one()
        assert (binding.l3_agent_id, binding.binding_index, binding.ha_state) == \
            ("l3-1", 1, "active")
    # a standby binding is welcome; a second active one is refused by the database
    with engine.begin() as connection:
        insert(connection, "routerl3agentbindings", router_id="rtr-1", l3_agent_id="l3-2",
               binding_index=2, ha_state="standby")
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(text("UPDATE routerl3agentbindings SET ha_state = 'active' "
                                "WHERE l3_agent_id = 'l3-2'"))


def test_a_database_from_before_migrations_is_adopted_with_its_rows(url: str,
                                                                   engine: Engine) -> None:
    make_database_from_before_migrations(engine)
    fill(engine)
    db = Database(url)
    try:
        assert db.create_schema().state is SchemaState.UNVERSIONED
        assert revision_of(db.engine) is SchemaState.CURRENT
        assert_filled(db)
        with db.engine.connect() as connection:
            assert migrations.differences(connection) == []
    finally:
        db.dispose()


def test_adopting_creates_the_tables_an_old_database_lacks(url: str, engine: Engine) -> None:
    make_database_from_before_migrations(engine, without=(LearnedNeighbor.__tablename__,))
    db = Database(url)
    try:
        assert db.create_schema().state is SchemaState.UNVERSIONED
        assert inspect(db.engine).has_table(LearnedNeighbor.__tablename__)
        with db.engine.connect() as connection:
            assert migrations.differences(connection) == []
    finally:
        db.dispose()


def test_a_database_migrated_by_newer_code_is_refused_untouched(url: str) -> None:
    db = Database(url)
    db.create_schema()
    with db.session() as session:
        session.add(m.Network(id="net-1"))
        session.execute(text("UPDATE alembic_version SET version_num = '9999_future'"))
    db.dispose()
    db = Database(url)
    try:
        with pytest.raises(UnknownSchemaRevision, match=r"9999_future.*newer ryu-sched"):
            db.create_schema()
        with db.session() as session:
            assert session.scalar(text("SELECT version_num FROM alembic_version")) == \
                "9999_future"
            assert session.scalar(select(m.Network.name).where(m.Network.id == "net-1")) == ""
    finally:
        db.dispose()


def test_controllers_migrating_at_once_take_turns(postgres_url: str) -> None:
    """Two controllers starting together on an empty PostgreSQL database: one migrates,
    the other waits on the advisory lock and finds it done."""
    barrier = threading.Barrier(2)
    results: list[Any] = []

    def start() -> None:
        db = Database(postgres_url)
        try:
            barrier.wait(timeout=30)
            results.append(db.create_schema().state)
        except Exception as exc:
            results.append(exc)
        finally:
            db.dispose()

    threads = [threading.Thread(target=start) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sorted(str(r) for r in results) == sorted(
        [str(SchemaState.EMPTY), str(SchemaState.CURRENT)])


# --- ryu-sched-db-manage ----------------------------------------------------------------

def manage(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ryu_sched.db.manage", *args],
                          capture_output=True, text=True, timeout=120, check=False)


def test_db_manage_reads_the_controller_configuration(url: str, tmp_path: Path) -> None:
    config = tmp_path / "ryu_sched.conf"
    config.write_text(f"[ryu_sched]\nconnection = {url}\n")
    current = manage("--config-file", str(config), "current")
    assert current.returncode == 1, current.stdout + current.stderr
    assert "empty database" in current.stdout or "no such database file" in current.stdout
    first = manage("--config-file", str(config), "upgrade", FIRST)
    assert first.returncode == 0, first.stderr
    assert f"at {FIRST}, behind" in first.stdout
    assert manage("--config-file", str(config), "check").returncode == 1
    upgraded = manage("--config-file", str(config), "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    assert f"-> at {migrations.head()} (the code's newest)" in upgraded.stdout
    assert manage("--config-file", str(config), "current").returncode == 0
    checked = manage("--connection", url, "check")
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_db_manage_names_an_unknown_revision(url: str) -> None:
    db = Database(url)
    db.create_schema()
    with db.session() as session:
        session.execute(text("UPDATE alembic_version SET version_num = '9999_future'"))
    db.dispose()
    assert manage("--connection", url, "current").returncode == 2
    refused = manage("--connection", url, "upgrade")
    assert refused.returncode == 2
    assert "newer ryu-sched" in refused.stderr


def test_db_manage_default_database_is_the_sqlite_file_in_state_path(tmp_path: Path) -> None:
    config = tmp_path / "ryu_sched.conf"
    config.write_text(f"[ryu_sched]\nstate_path = {tmp_path / 'state'}\n")
    assert manage("--config-file", str(config), "upgrade").returncode == 0
    assert (tmp_path / "state" / "ryu_sched.sqlite").exists()


def test_db_manage_will_not_migrate_a_sqlite_file_a_controller_uses(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/ryu.sqlite"
    db = Database(url)
    db.create_schema()
    try:
        refused = manage("--connection", url, "upgrade")
        assert refused.returncode == 3
        assert "in use by another ryu-sched controller" in refused.stderr
        assert manage("--connection", url, "current").returncode == 0  # reading is fine
    finally:
        db.dispose()


# --- the controller ---------------------------------------------------------------------

def test_controller_adopts_a_database_from_before_migrations(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/old.sqlite"
    engine = create_engine(url)
    make_database_from_before_migrations(engine)
    with engine.begin() as connection:
        insert(connection, "networks", id="6f1c1f2e-0000-4000-8000-000000000001",
               name="kept", network_type="vlan", physical_network="physnet1",
               segmentation_id=100, mtu=1500, status="ACTIVE", availability_zone_hints=[],
               shared=False, router_external=False)
    engine.dispose()
    with ControllerProcess(tmp_path / "controller", {"connection": url}) as controller:
        status, body = controller.request("GET", "/v2.0/networks")
        assert status == 200
        assert [n["name"] for n in body["networks"]] == ["kept"]
        assert "adopting it as revision" in controller.log_text()
    engine = create_engine(url)
    assert revision_of(engine) is SchemaState.CURRENT
    engine.dispose()


def test_controller_refuses_a_database_migrated_by_newer_code(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/new.sqlite"
    db = Database(url)
    db.create_schema()
    with db.session() as session:
        session.execute(text("UPDATE alembic_version SET version_num = '9999_future'"))
    db.dispose()
    controller = ControllerProcess(tmp_path / "controller", {"connection": url})
    try:
        with pytest.raises(RuntimeError, match=r"controller exited with [1-9]"):
            controller.start()
        assert "migrated by a newer ryu-sched" in controller.log_text()
    finally:
        controller.stop()
