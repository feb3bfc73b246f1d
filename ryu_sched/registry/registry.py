"""The component registry: agents, liveness, bindings, scheduling and failover.

Everything here is synchronous and runs on the controller's one OS thread under the eventlet
hub; the green threads that drive it (RPC readers, the API, the monitor) never yield inside
a method of this class (no green I/O between a database commit and the in-memory update),
so the in-memory maps and the database stay consistent without locks.

Hot data (the time of each agent's last heartbeat) lives in memory; :meth:`Registry.flush`
writes whatever changed since the last flush in one transaction. Bindings are rows under
unique constraints; the in-memory maps mirror them so that load counts are O(1).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from ryu_sched import errors
from ryu_sched.db import models
from ryu_sched.db.registry_models import BindingMove
from ryu_sched.events import (
    Action,
    BindingChanged,
    Event,
    FloatingIpChanged,
    NetworkChanged,
    PortChanged,
    RouterChanged,
    RouterGatewayChanged,
    RouterInterfaceChanged,
    SubnetChanged,
)
from ryu_sched.registry.model import (
    KIND_OF_TYPE,
    TYPE_OF_KIND,
    AgentRecord,
    AgentType,
    from_datetime,
    to_datetime,
    validate_configurations,
    validate_state,
)
from ryu_sched.resources.context import admin_context
from ryu_sched.resources.ports import delete_port
from ryu_sched.rpc.protocol import BadParams
from ryu_sched.scheduling import Candidate, Placement, get_driver
from ryu_sched.shared.vocabulary import DeviceOwner, HostedKind, dhcp_device_id

LOG = logging.getLogger(__name__)

KINDS = ("network", "router")
_CHUNK = 500


@dataclasses.dataclass(frozen=True)
class _Table:
    table: Any
    obj_col: str
    agent_col: str


def _tables() -> dict[str, _Table]:
    return {
        "network": _Table(models.NetworkDhcpAgentBinding.__table__, "network_id",
                          "dhcp_agent_id"),
        "router": _Table(models.RouterL3AgentBinding.__table__, "router_id", "l3_agent_id"),
    }


@dataclasses.dataclass(frozen=True)
class Move:
    kind: str
    resource_id: str
    from_agent: str
    to_agent: str
    reason: str


@dataclasses.dataclass(frozen=True)
class ObjectInfo:
    """What scheduling needs to know about a network or router."""

    hints: tuple[str, ...] = ()
    needs_external_port: bool = False


class AgentNotFound(errors.NotFound):
    type_name = "AgentNotFound"
    message_format = "Agent %(id)s could not be found."


class InvalidDHCPAgent(AgentNotFound):
    type_name = "InvalidDHCPAgent"
    message_format = "Agent %(id)s is not a valid DHCP Agent or has been disabled."


class InvalidL3Agent(AgentNotFound):
    type_name = "InvalidL3Agent"
    message_format = "Agent %(id)s is not a L3 Agent or has been disabled."


class NetworkHostedByDHCPAgent(errors.Conflict):
    type_name = "NetworkHostedByDHCPAgent"
    message_format = ("The network %(network_id)s has been already hosted by the DHCP "
                      "Agent %(agent_id)s.")


class NetworkNotHostedByDhcpAgent(errors.Conflict):
    type_name = "NetworkNotHostedByDhcpAgent"
    message_format = "The network %(network_id)s is not hosted by the DHCP agent %(agent_id)s."


class RouterHostedByL3Agent(errors.Conflict):
    type_name = "RouterHostedByL3Agent"
    message_format = ("The router %(router_id)s has been already hosted by the L3 Agent "
                      "%(agent_id)s.")


class RouterNotHostedByL3Agent(errors.Conflict):
    type_name = "RouterNotHostedByL3Agent"
    message_format = "The router %(router_id)s is not hosted by L3 agent %(agent_id)s."


class Registry:
    def __init__(self, services: Any, clock: Callable[[], float] = time.time) -> None:
        self.services = services
        self.settings = services.settings
        self.db = services.db
        self.bus = services.bus
        self.clock = clock
        self.started = clock()
        self.down_time = float(self.settings.agent_down_time)
        self.agents: dict[str, AgentRecord] = {}
        self.by_key: dict[tuple[str, str], AgentRecord] = {}
        self.by_type: dict[str, dict[str, AgentRecord]] = {t.value: {} for t in AgentType}
        # Heartbeats and agent rows not yet written to the database.
        self._pending_hb: dict[str, float] = {}
        self._pending_rows: set[str] = set()
        # Bindings: object id -> {agent id: binding_index}; agent id -> hosted object ids.
        self.hosts: dict[str, dict[str, dict[str, int]]] = {k: {} for k in KINDS}
        self.hosted: dict[str, set[str]] = defaultdict(set)
        self.drivers = {
            "network": get_driver(self.settings.network_scheduler_driver),
            "router": get_driver(self.settings.router_scheduler_driver),
        }
        self.tables = _tables()
        self.reconcile_requested = True
        self._unplaceable_logged: set[tuple[str, str]] = set()
        self.heartbeats = 0
        self.monitor_ticks = 0

    # --- loading and persistence ---------------------------------------------------------

    def load(self) -> None:
        """Read agents and bindings from the database (at start)."""
        with self.db.session() as session:
            for row in session.scalars(select(models.Agent)):
                rec = AgentRecord(
                    id=row.id, agent_type=row.agent_type, host=row.host, binary=row.binary,
                    topic=row.topic, availability_zone=row.availability_zone,
                    admin_state_up=row.admin_state_up, description=row.description,
                    configurations=dict(row.configurations or {}),
                    created_at=from_datetime(row.created_at),
                    started_at=from_datetime(row.started_at),
                    heartbeat=from_datetime(row.heartbeat_timestamp), persisted=True)
                if rec.agent_type not in self.by_type:
                    LOG.warning("ignoring agent %s of unknown type %r", rec.id, rec.agent_type)
                    continue
                self._index(rec)
            for kind, tab in self.tables.items():
                rows = session.execute(select(tab.table.c[tab.obj_col], tab.table.c[tab.agent_col],
                                              tab.table.c.binding_index))
                for obj_id, agent_id, index in rows:
                    self._remember(kind, obj_id, agent_id, index)
        LOG.info("registry loaded %d agents, %d network and %d router bindings",
                 len(self.agents), sum(len(h) for h in self.hosts["network"].values()),
                 sum(len(h) for h in self.hosts["router"].values()))

    def _index(self, rec: AgentRecord) -> None:
        self.agents[rec.id] = rec
        self.by_key[(rec.agent_type, rec.host)] = rec
        self.by_type[rec.agent_type][rec.id] = rec

    def _unindex(self, rec: AgentRecord) -> None:
        self.agents.pop(rec.id, None)
        if self.by_key.get((rec.agent_type, rec.host)) is rec:
            del self.by_key[(rec.agent_type, rec.host)]
        self.by_type[rec.agent_type].pop(rec.id, None)
        self._pending_hb.pop(rec.id, None)
        self._pending_rows.discard(rec.id)

    def _row(self, rec: AgentRecord) -> dict[str, Any]:
        return {"id": rec.id, "agent_type": rec.agent_type, "host": rec.host,
                "binary": rec.binary, "topic": rec.topic,
                "availability_zone": rec.availability_zone,
                "admin_state_up": rec.admin_state_up, "description": rec.description,
                "configurations": rec.configurations,
                "created_at": to_datetime(rec.created_at),
                "started_at": to_datetime(rec.started_at),
                "heartbeat_timestamp": to_datetime(rec.heartbeat)}

    def flush(self) -> int:
        """Write pending heartbeats and agent changes in one transaction; returns rows."""
        if not self._pending_hb and not self._pending_rows:
            return 0
        heartbeats, self._pending_hb = self._pending_hb, {}
        changed, self._pending_rows = self._pending_rows, set()
        new = [self.agents[a] for a in changed if a in self.agents and not self.agents[a].persisted]
        old = [self.agents[a] for a in changed if a in self.agents and self.agents[a].persisted]
        beats = [{"b_id": a, "b_ts": to_datetime(ts)} for a, ts in heartbeats.items()
                 if a not in changed and a in self.agents]
        table = models.Agent.__table__
        try:
            with self.db.session() as session:
                if new:
                    session.execute(insert(table), [self._row(r) for r in new])
                if old:
                    rows = [{("b_id" if k == "id" else k): v for k, v in self._row(r).items()
                             if k not in ("created_at", "agent_type", "host")} for r in old]
                    session.execute(update(table).where(table.c.id == bindparam("b_id")), rows)
                if beats:
                    session.execute(update(table).where(table.c.id == bindparam("b_id"))
                                    .values(heartbeat_timestamp=bindparam("b_ts")), beats)
        except IntegrityError:
            LOG.warning("agent rows conflicted (another controller?); adopting existing rows")
            self._adopt_existing(new)
            self._pending_rows |= {r.id for r in old}
            for a, ts in heartbeats.items():
                self._pending_hb.setdefault(a, ts)
            return 0
        for rec in new:
            rec.persisted = True
            LOG.info("registered %s on %s as agent %s", rec.agent_type, rec.host, rec.id)
        if new:
            self.reconcile_requested = True
        return len(new) + len(old) + len(beats)

    def _adopt_existing(self, new: Sequence[AgentRecord]) -> None:
        with self.db.session() as session:
            for rec in new:
                row = session.scalars(select(models.Agent).where(
                    models.Agent.agent_type == rec.agent_type,
                    models.Agent.host == rec.host)).first()
                if row is None:
                    self._pending_rows.add(rec.id)
                    continue
                self._unindex(rec)
                rec.id = row.id
                rec.persisted = True
                self._index(rec)
                if rec.conn is not None:
                    rec.conn.agent_ids.add(rec.id)
                self._pending_rows.add(rec.id)

    # --- heartbeats ---------------------------------------------------------------------

    def report_state(self, conn: Any, state: Any) -> dict[str, Any]:
        """One heartbeat. The fast path is a dict lookup and two assignments."""
        if type(state) is not dict:
            raise BadParams("params must be [agent_state] with agent_state a map")
        agent_type = state.get("agent_type")
        host = state.get("host")
        if type(agent_type) is not str or type(host) is not str:
            raise BadParams("agent_state.agent_type and host must be strings")
        now = self.clock()
        rec = self.by_key.get((agent_type, host))
        self.heartbeats += 1
        if rec is None:
            rec = self._register(validate_state(state), now)
            status = "registered"
        else:
            status = "alive"
            if rec.judged_dead or now - rec.heartbeat >= self.down_time:
                status = "revived"
                LOG.info("agent %s (%s on %s) is alive again after %.1fs", rec.id,
                         rec.agent_type, rec.host, now - rec.heartbeat)
                rec.judged_dead = False
                self.reconcile_requested = True
            conf = state.get("configurations")
            if conf is not None and conf != rec.configurations:
                self._update_fields(rec, state)
            elif (state.get("availability_zone", rec.availability_zone) != rec.availability_zone
                  or state.get("binary", rec.binary) != rec.binary
                  or state.get("topic", rec.topic) != rec.topic):
                self._update_fields(rec, state)
            if state.get("start_flag"):
                rec.started_at = now
                self._pending_rows.add(rec.id)
        rec.heartbeat = now
        self._pending_hb[rec.id] = now
        if conn is not None and rec.conn is not conn:
            rec.conn = conn
            conn.agent_ids.add(rec.id)
        if state.get("start_flag") and conn is not None:
            conn.notify("resync", [{"agent_id": rec.id, "reason": "start_flag"}])
        return {"status": status, "agent_id": rec.id}

    def _register(self, state: dict[str, Any], now: float) -> AgentRecord:
        rec = AgentRecord(
            id=models.new_id(), agent_type=state["agent_type"], host=state["host"],
            binary=state.get("binary") or "", topic=state.get("topic") or "",
            availability_zone=state.get("availability_zone"),
            configurations=validate_configurations(state.get("configurations")),
            created_at=now, started_at=now, heartbeat=now)
        self._index(rec)
        self._pending_rows.add(rec.id)
        return rec

    def _update_fields(self, rec: AgentRecord, state: dict[str, Any]) -> None:
        validate_state(state)
        conf = state.get("configurations")
        if conf is not None:
            old_ext, old_down = rec.has_external_port, rec.external_link_down
            rec.configurations = conf
            if old_ext and not rec.has_external_port:
                self.reconcile_requested = True   # routers with a gateway must move
            if old_down != rec.external_link_down:
                LOG.info("agent %s (%s on %s): external link %s", rec.id, rec.agent_type,
                         rec.host, "down" if rec.external_link_down else "up")
                self.reconcile_requested = True   # its routers move / it is a candidate again
        rec.availability_zone = state.get("availability_zone", rec.availability_zone)
        rec.binary = state.get("binary") or rec.binary
        rec.topic = state.get("topic") or rec.topic
        self._pending_rows.add(rec.id)

    def connection_closed(self, conn: Any) -> None:
        for agent_id in list(getattr(conn, "agent_ids", ())):
            rec = self.agents.get(agent_id)
            if rec is not None and rec.conn is conn:
                rec.conn = None

    # --- queries ------------------------------------------------------------------------

    def is_alive(self, rec: AgentRecord, now: float | None = None) -> bool:
        return (self.clock() if now is None else now) - rec.heartbeat < self.down_time

    def get(self, agent_id: str) -> AgentRecord:
        rec = self.agents.get(agent_id)
        if rec is None:
            raise AgentNotFound(id=agent_id)
        return rec

    def load_of(self, agent_id: str) -> int:
        return len(self.hosted.get(agent_id, ()))

    def agents_hosting(self, kind: str, obj_id: str) -> list[AgentRecord]:
        hosts = self.hosts[kind].get(obj_id, {})
        ordered = sorted(hosts.items(), key=lambda item: item[1])
        return [self.agents[a] for a, _ in ordered if a in self.agents]

    def hosted_by(self, agent_id: str) -> list[str]:
        return sorted(self.hosted.get(agent_id, ()))

    def agent_by_host(self, agent_type: str, host: str) -> AgentRecord | None:
        return self.by_key.get((agent_type, host))

    def candidates(self, agent_type: str, exclude: Iterable[str] = (),
                   now: float | None = None) -> list[Candidate]:
        now = self.clock() if now is None else now
        excluded = set(exclude)
        limit = now - self.down_time
        return [Candidate(rec.id, rec.host, rec.availability_zone,
                          len(self.hosted.get(rec.id, ())), rec.has_external_port)
                for rec in self.by_type[agent_type].values()
                if rec.persisted and rec.admin_state_up and rec.heartbeat > limit
                and not rec.external_link_down and rec.id not in excluded]

    # --- agent administration -----------------------------------------------------------

    def update_agent(self, agent_id: str, admin_state_up: bool | None = None,
                     description: str | None = None) -> AgentRecord:
        rec = self.get(agent_id)
        self.flush()
        values: dict[str, Any] = {}
        if admin_state_up is not None:
            values["admin_state_up"] = admin_state_up
        if description is not None:
            values["description"] = description
        if values:
            with self.db.session() as session:
                session.execute(update(models.Agent).where(models.Agent.id == rec.id)
                                .values(**values))
            if admin_state_up is not None and admin_state_up != rec.admin_state_up:
                LOG.info("agent %s (%s on %s) admin_state_up=%s", rec.id, rec.agent_type,
                         rec.host, admin_state_up)
                self.reconcile_requested = True
            rec.admin_state_up = values.get("admin_state_up", rec.admin_state_up)
            rec.description = values.get("description", rec.description)
        return rec

    def delete_agent(self, agent_id: str) -> None:
        """Remove an agent and its bindings (it registers anew on its next heartbeat)."""
        rec = self.get(agent_id)
        self.flush()
        kind = rec.kind
        tab = self.tables[kind]
        objects = sorted(self.hosted.get(rec.id, ()))
        with self.db.session() as session:
            session.execute(delete(tab.table).where(tab.table.c[tab.agent_col] == rec.id))
            session.execute(delete(models.Agent).where(models.Agent.id == rec.id))
        for obj_id in objects:
            self._forget(kind, obj_id, rec.id)
        self._unindex(rec)
        self.hosted.pop(rec.id, None)
        LOG.info("deleted agent %s (%s on %s) and its %d bindings", rec.id, rec.agent_type,
                 rec.host, len(objects))
        for obj_id in objects:
            self._announce(kind, "unbind", obj_id, rec, notify=True)
        self.reconcile_requested = True

    # --- bindings: memory ---------------------------------------------------------------

    def _remember(self, kind: str, obj_id: str, agent_id: str, index: int) -> None:
        self.hosts[kind].setdefault(obj_id, {})[agent_id] = index
        self.hosted[agent_id].add(obj_id)

    def _forget(self, kind: str, obj_id: str, agent_id: str) -> None:
        hosts = self.hosts[kind].get(obj_id)
        if hosts is not None:
            hosts.pop(agent_id, None)
            if not hosts:
                del self.hosts[kind][obj_id]
        agent_set = self.hosted.get(agent_id)
        if agent_set is not None:
            agent_set.discard(obj_id)

    def forget_object(self, kind: str, obj_id: str) -> list[AgentRecord]:
        """The object was deleted (the database cascaded its bindings)."""
        hosts = self.hosts[kind].pop(obj_id, {})
        for agent_id in hosts:
            self.hosted.get(agent_id, set()).discard(obj_id)
        return [self.agents[a] for a in hosts if a in self.agents]

    @staticmethod
    def _vacant_index(hosts: dict[str, int]) -> int:
        used = set(hosts.values())
        index = 1
        while index in used:
            index += 1
        return index

    # --- bindings: announcements --------------------------------------------------------

    def _announce(self, kind: str, action: str, obj_id: str, rec: AgentRecord,
                  notify: bool = True) -> None:
        if notify and rec.conn is not None:
            method = f"{kind}_{'bound' if action == 'bind' else 'unbound'}"
            rec.conn.notify(method, [{f"{kind}_id": obj_id}])
        self.bus.publish(BindingChanged(
            kind=HostedKind(kind), object_id=obj_id, agent_id=rec.id, host=rec.host,
            bound=action == "bind", datapath_id=rec.datapath_id if kind == "router" else None))

    # --- bindings: changes --------------------------------------------------------------

    def bind(self, kind: str, obj_id: str, agent_id: str) -> None:
        """Add one binding; raises Conflict if it (or, for routers, any binding) exists."""
        rec = self.get(agent_id)
        hosts = self.hosts[kind].get(obj_id, {})
        if agent_id in hosts:
            raise self._hosted_error(kind, obj_id, agent_id)
        if kind == "router" and hosts:
            raise RouterHostedByL3Agent(router_id=obj_id, agent_id=next(iter(hosts)))
        index = self._vacant_index(hosts)
        tab = self.tables[kind]
        try:
            with self.db.session() as session:
                session.execute(insert(tab.table), [{tab.obj_col: obj_id,
                                                     tab.agent_col: agent_id,
                                                     "binding_index": index}])
        except IntegrityError:
            raise self._hosted_error(kind, obj_id, agent_id) from None
        self._remember(kind, obj_id, agent_id, index)
        LOG.info("%s %s bound to %s on %s", kind, obj_id, rec.agent_type, rec.host)
        self._announce(kind, "bind", obj_id, rec)

    def _hosted_error(self, kind: str, obj_id: str, agent_id: str) -> errors.NeutronError:
        if kind == "network":
            return NetworkHostedByDHCPAgent(network_id=obj_id, agent_id=agent_id)
        return RouterHostedByL3Agent(router_id=obj_id, agent_id=agent_id)

    def unbind(self, kind: str, obj_id: str, agent_id: str) -> None:
        rec = self.get(agent_id)
        if agent_id not in self.hosts[kind].get(obj_id, {}):
            if kind == "network":
                raise NetworkNotHostedByDhcpAgent(network_id=obj_id, agent_id=agent_id)
            raise RouterNotHostedByL3Agent(router_id=obj_id, agent_id=agent_id)
        tab = self.tables[kind]
        with self.db.session() as session:
            session.execute(delete(tab.table).where(tab.table.c[tab.obj_col] == obj_id,
                                                    tab.table.c[tab.agent_col] == agent_id))
        self._forget(kind, obj_id, agent_id)
        LOG.info("%s %s unbound from %s on %s", kind, obj_id, rec.agent_type, rec.host)
        self._announce(kind, "unbind", obj_id, rec)

    def bind_many(self, kind: str, pairs: Sequence[tuple[str, str]]) -> int:
        """Bind (object, agent) pairs in one transaction; duplicates mean "already done"."""
        if not pairs:
            return 0
        tab = self.tables[kind]
        rows = []
        planned: dict[str, dict[str, int]] = {}
        for obj_id, agent_id in pairs:
            current = dict(self.hosts[kind].get(obj_id, {}))
            current.update(planned.get(obj_id, {}))
            if agent_id in current:
                continue
            index = self._vacant_index(current)
            planned.setdefault(obj_id, {})[agent_id] = index
            rows.append({tab.obj_col: obj_id, tab.agent_col: agent_id, "binding_index": index})
        if not rows:
            return 0
        try:
            with self.db.session() as session:
                for start in range(0, len(rows), _CHUNK):
                    session.execute(insert(tab.table), rows[start:start + _CHUNK])
        except IntegrityError:
            # Someone bound some of these meanwhile (or an object vanished): go one by one.
            done = 0
            for row in rows:
                try:
                    self.bind(kind, row[tab.obj_col], row[tab.agent_col])
                    done += 1
                except (errors.Conflict, errors.NotFound, IntegrityError):
                    pass
            return done
        for row in rows:
            obj_id, agent_id = row[tab.obj_col], row[tab.agent_col]
            self._remember(kind, obj_id, agent_id, row["binding_index"])
            rec = self.agents[agent_id]
            LOG.info("%s %s scheduled to %s on %s", kind, obj_id, rec.agent_type, rec.host)
            self._announce(kind, "bind", obj_id, rec)
        return len(rows)

    def move_many(self, moves: Sequence[Move]) -> int:
        """Move bindings (same binding_index) and log each move, in one transaction."""
        if not moves:
            return 0
        by_kind: dict[str, list[Move]] = defaultdict(list)
        for move in moves:
            by_kind[move.kind].append(move)
        now = to_datetime(self.clock())
        try:
            with self.db.session() as session:
                for kind, kind_moves in by_kind.items():
                    tab = self.tables[kind]
                    t = tab.table
                    session.execute(
                        delete(t).where(t.c[tab.obj_col] == bindparam("b_obj"),
                                        t.c[tab.agent_col] == bindparam("b_agent")),
                        [{"b_obj": m.resource_id, "b_agent": m.from_agent} for m in kind_moves])
                    rows = [{tab.obj_col: m.resource_id, tab.agent_col: m.to_agent,
                             "binding_index": self.hosts[kind][m.resource_id][m.from_agent]}
                            for m in kind_moves]
                    for start in range(0, len(rows), _CHUNK):
                        session.execute(insert(t), rows[start:start + _CHUNK])
                log_rows = [{"created_at": now, "resource": m.kind, "resource_id": m.resource_id,
                             "from_agent_id": m.from_agent,
                             "from_host": self.agents[m.from_agent].host
                             if m.from_agent in self.agents else "",
                             "to_agent_id": m.to_agent, "to_host": self.agents[m.to_agent].host,
                             "reason": m.reason} for m in moves]
                for start in range(0, len(log_rows), _CHUNK):
                    session.execute(insert(BindingMove), log_rows[start:start + _CHUNK])
        except IntegrityError:
            LOG.warning("batched move conflicted; moving one by one")
            return sum(self.move_many([m]) for m in moves) if len(moves) > 1 else 0
        for move in moves:
            hosts = self.hosts[move.kind][move.resource_id]
            index = hosts[move.from_agent]
            self._forget(move.kind, move.resource_id, move.from_agent)
            self._remember(move.kind, move.resource_id, move.to_agent, index)
            old = self.agents.get(move.from_agent)
            new = self.agents[move.to_agent]
            LOG.info("moved %s %s from %s to %s (%s)", move.kind, move.resource_id,
                     old.host if old else move.from_agent, new.host, move.reason)
            if old is not None:
                self._announce(move.kind, "unbind", move.resource_id, old)
            self._announce(move.kind, "bind", move.resource_id, new)
        return len(moves)

    def moves(self, agent_id: str | None = None, resource_id: str | None = None,
              limit: int = 1000) -> list[dict[str, Any]]:
        query = select(BindingMove).order_by(BindingMove.id.desc()).limit(limit)
        if agent_id:
            query = query.where((BindingMove.from_agent_id == agent_id)
                                | (BindingMove.to_agent_id == agent_id))
        if resource_id:
            query = query.where(BindingMove.resource_id == resource_id)
        with self.db.session() as session:
            return [{"id": m.id, "created_at": m.created_at.strftime("%Y-%m-%d %H:%M:%S"),
                     "resource": m.resource, "resource_id": m.resource_id,
                     "from_agent_id": m.from_agent_id, "from_host": m.from_host,
                     "to_agent_id": m.to_agent_id, "to_host": m.to_host, "reason": m.reason}
                    for m in session.scalars(query)]

    # --- DHCP ports of unbound networks -------------------------------------------------

    def release_dhcp_port(self, network_id: str, host: str) -> int:
        """Delete the DHCP port the DHCP agent of ``host`` used for ``network_id`` once the
        network is no longer bound to it (failover, manual unbind, agent deleted): its tap
        becomes an unknown port that the pipeline drops, so a dead agent's dnsmasq stops
        answering. Nothing happens if the network was bound to that agent again meanwhile.
        Returns the number of ports deleted."""
        rec = self.agent_by_host(AgentType.DHCP, host)
        if rec is not None and rec.id in self.hosts["network"].get(network_id, {}):
            return 0
        port = models.Port
        with self.db.session() as session:
            port_ids = list(session.scalars(select(port.id).where(
                port.network_id == network_id, port.device_owner == DeviceOwner.DHCP,
                port.device_id == dhcp_device_id(network_id, host))))
        deleted = 0
        for port_id in port_ids:
            try:
                delete_port(self.services, admin_context(), port_id)
            except errors.NotFound:
                continue
            deleted += 1
            LOG.info("deleted DHCP port %s of network %s on %s (no longer hosted there)",
                     port_id, network_id, host)
        return deleted

    # --- object information -------------------------------------------------------------

    def object_info(self, kind: str, ids: Iterable[str] | None = None) -> dict[str, ObjectInfo]:
        """Scheduling facts of networks (only those with a DHCP-enabled subnet) or routers;
        ``ids=None`` means all of them."""
        result: dict[str, ObjectInfo] = {}
        id_list = None if ids is None else list(ids)
        chunks: list[list[str] | None] = [None] if id_list is None else [
            id_list[i:i + _CHUNK] for i in range(0, len(id_list), _CHUNK)]
        with self.db.session() as session:
            for chunk in chunks:
                if kind == "network":
                    net, sub = models.Network, models.Subnet
                    query = select(net.id, net.availability_zone_hints).where(
                        select(sub.id).where(sub.network_id == net.id,
                                             sub.enable_dhcp.is_(True)).exists())
                    if chunk is not None:
                        query = query.where(net.id.in_(chunk))
                    for obj_id, hints in session.execute(query):
                        result[obj_id] = ObjectInfo(tuple(hints or ()), False)
                else:
                    rtr = models.Router
                    query = select(rtr.id, rtr.availability_zone_hints, rtr.gw_port_id)
                    if chunk is not None:
                        query = query.where(rtr.id.in_(chunk))
                    for obj_id, hints, gw in session.execute(query):
                        result[obj_id] = ObjectInfo(tuple(hints or ()), gw is not None)
        return result

    def object_exists(self, kind: str, obj_id: str) -> bool:
        model = models.Network if kind == "network" else models.Router
        with self.db.session() as session:
            return session.scalar(select(model.id).where(model.id == obj_id)) is not None

    # --- scheduling ---------------------------------------------------------------------

    def wanted_copies(self, kind: str) -> int:
        return self.settings.dhcp_agents_per_network if kind == "network" else 1

    def auto_schedule_enabled(self, kind: str) -> bool:
        if kind == "network":
            return bool(self.settings.network_auto_schedule)
        return bool(self.settings.router_auto_schedule)

    def schedule(self, kind: str, ids: Iterable[str] | None = None) -> int:
        """Give every (or each listed) object that is unhosted or under-hosted its agents,
        and move routers with a gateway off agents without an external port."""
        info = self.object_info(kind, ids)
        if not info:
            return 0
        agent_type = TYPE_OF_KIND[kind]
        want = self.wanted_copies(kind)
        placements: list[Placement] = []
        gateway_moves: list[tuple[str, str]] = []
        link_moves: list[tuple[str, str]] = []
        for obj_id, facts in info.items():
            hosts = self.hosts[kind].get(obj_id, {})
            if kind == "router" and hosts:
                for agent_id in hosts:
                    rec = self.agents.get(agent_id)
                    if rec is None:
                        continue
                    if rec.external_link_down:
                        link_moves.append((obj_id, agent_id))
                    elif facts.needs_external_port and not rec.has_external_port:
                        gateway_moves.append((obj_id, agent_id))
            if len(hosts) >= want:
                continue
            placements.append(self._placement(kind, obj_id, facts, want - len(hosts)))
        added = 0
        if placements:
            candidates = self.candidates(agent_type)
            chosen = self.drivers[kind].schedule(placements, candidates)
            pairs = []
            for placement, agents in zip(placements, chosen, strict=True):
                if len(agents) < placement.count:
                    self._log_unplaceable(kind, placement.resource_id, len(candidates))
                pairs.extend((placement.resource_id, a) for a in agents)
            added = self.bind_many(kind, pairs)
        if gateway_moves:
            added += self._move_off(kind, gateway_moves, "gateway")
        if link_moves:
            added += self._move_off(kind, link_moves, "link_down")
        return added

    def _placement(self, kind: str, obj_id: str, facts: ObjectInfo, count: int,
                   also_exclude: Iterable[str] = ()) -> Placement:
        hosts = self.hosts[kind].get(obj_id, {})
        zones = tuple(self.agents[a].availability_zone for a in hosts if a in self.agents)
        return Placement(obj_id, count, facts.hints, facts.needs_external_port,
                         frozenset(hosts) | frozenset(also_exclude), zones)

    def _log_unplaceable(self, kind: str, obj_id: str, n_candidates: int) -> None:
        key = (kind, obj_id)
        if key not in self._unplaceable_logged:
            self._unplaceable_logged.add(key)
            LOG.warning("no eligible %s for %s %s (%d live candidates)",
                        TYPE_OF_KIND[kind], kind, obj_id, n_candidates)

    def _move_off(self, kind: str, pairs: Sequence[tuple[str, str]], reason: str) -> int:
        """Move each (object, agent) binding to another eligible live agent."""
        if not pairs:
            return 0
        leaving = {agent_id for _, agent_id in pairs}
        info = self.object_info(kind, {obj_id for obj_id, _ in pairs})
        grouped: dict[str, list[str]] = defaultdict(list)
        for obj_id, agent_id in pairs:
            grouped[obj_id].append(agent_id)
        placements: list[Placement] = []
        origins: list[list[str]] = []
        for obj_id, from_agents in grouped.items():
            facts = info.get(obj_id, ObjectInfo())
            placements.append(self._placement(kind, obj_id, facts, len(from_agents)))
            origins.append(from_agents)
        candidates = self.candidates(TYPE_OF_KIND[kind], exclude=leaving)
        chosen = self.drivers[kind].schedule(placements, candidates)
        moves = []
        for placement, from_agents, to_agents in zip(placements, origins, chosen, strict=True):
            if len(to_agents) < len(from_agents):
                self._log_unplaceable(kind, placement.resource_id, len(candidates))
            for from_agent, to_agent in zip(from_agents, to_agents, strict=False):
                moves.append(Move(kind, placement.resource_id, from_agent, to_agent, reason))
        return self.move_many(moves)

    def evacuate(self, recs: Iterable[AgentRecord], reason: str) -> int:
        """Move everything the given agents host to other live agents."""
        pairs: dict[str, list[tuple[str, str]]] = defaultdict(list)
        for rec in recs:
            for obj_id in self.hosted.get(rec.id, ()):
                pairs[rec.kind].append((obj_id, rec.id))
        return sum(self._move_off(kind, kind_pairs, reason)
                   for kind, kind_pairs in pairs.items())

    def rebalance(self, agent_type: str | None = None) -> list[Move]:
        """Even out load among live, enabled agents: move from the most loaded to the least
        loaded until they differ by at most one (where constraints allow)."""
        all_moves: list[Move] = []
        for kind in KINDS:
            a_type = TYPE_OF_KIND[kind]
            if agent_type and agent_type != a_type:
                continue
            cands = {c.agent_id: c for c in self.candidates(a_type)}
            if len(cands) < 2:
                continue
            load = {a: set(self.hosted.get(a, ())) for a in cands}
            info = self.object_info(kind, set().union(*load.values())) if kind == "router" else {}
            stuck: set[str] = set()
            moves: list[Move] = []
            while True:
                donors = [a for a in cands if a not in stuck]
                if not donors:
                    break
                donor = max(donors, key=lambda a: (len(load[a]), a))
                receivers = sorted(cands, key=lambda a: (len(load[a]), a))
                moved = False
                for receiver in receivers:
                    if len(load[donor]) - len(load[receiver]) <= 1:
                        break
                    for obj_id in sorted(load[donor]):
                        if receiver in self.hosts[kind].get(obj_id, {}) or any(
                                m.resource_id == obj_id and m.to_agent == receiver
                                for m in moves[-8:]):
                            continue
                        facts = info.get(obj_id, ObjectInfo())
                        if facts.needs_external_port and not cands[receiver].has_external_port:
                            continue
                        if obj_id in load[receiver]:
                            continue
                        moves.append(Move(kind, obj_id, donor, receiver, "rebalance"))
                        load[donor].discard(obj_id)
                        load[receiver].add(obj_id)
                        moved = True
                        break
                    if moved:
                        break
                if not moved:
                    stuck.add(donor)
            self.move_many(moves)
            all_moves.extend(moves)
        return all_moves

    # --- the monitor --------------------------------------------------------------------

    def monitor_tick(self) -> dict[str, int]:
        """Judge liveness, fail over, drain, and schedule what is unhosted."""
        now = self.clock()
        self.monitor_ticks += 1
        summary = {"dead": 0, "moved": 0, "scheduled": 0}
        judging = now - self.started >= self.down_time
        if judging:
            newly_dead = []
            for rec in self.agents.values():
                if not rec.judged_dead and now - rec.heartbeat >= self.down_time:
                    rec.judged_dead = True
                    newly_dead.append(rec)
            for rec in newly_dead:
                LOG.warning("agent %s (%s on %s) is dead: no heartbeat for %.1fs", rec.id,
                            rec.agent_type, rec.host, now - rec.heartbeat)
            summary["dead"] = len(newly_dead)
            leaving: list[AgentRecord] = []
            if self.settings.allow_automatic_failover:
                leaving.extend(rec for rec in self.agents.values()
                               if rec.judged_dead and self.hosted.get(rec.id))
            if self.settings.drain_disabled_agents:
                leaving.extend(rec for rec in self.agents.values()
                               if not rec.admin_state_up and not rec.judged_dead
                               and self.hosted.get(rec.id))
            if leaving:
                reason = {rec.id: "failover" if rec.judged_dead else "drain" for rec in leaving}
                for why in ("failover", "drain"):
                    group = [r for r in leaving if reason[r.id] == why]
                    if group:
                        summary["moved"] += self.evacuate(group, why)
        summary["scheduled"] = self.reconcile()
        return summary

    def reconcile(self) -> int:
        """Schedule every unhosted or under-hosted object (auto-schedule permitting)."""
        self.reconcile_requested = False
        return sum(self.schedule(kind) for kind in KINDS if self.auto_schedule_enabled(kind))

    # --- bus events ---------------------------------------------------------------------

    def handle_event(self, event: Event) -> None:
        """React to a committed change: schedule, re-place, and notify hosting agents."""
        match event:
            case NetworkChanged(action=Action.DELETE, network_id=net_id):
                for rec in self.forget_object("network", net_id):
                    self._notify(rec, "network_deleted", {"network_id": net_id})
            case NetworkChanged(action=Action.UPDATE, network_id=net_id):
                self._notify_hosts("network", net_id, "network_updated", {"network_id": net_id})
            case NetworkChanged(action=Action.CREATE, network_id=net_id):
                if self.settings.network_auto_schedule:
                    self.schedule("network", [net_id])
            case SubnetChanged():
                if event.action != Action.DELETE and self.settings.network_auto_schedule:
                    self.schedule("network", [event.network_id])
                self._notify_hosts("network", event.network_id, "subnet_changed",
                                   {"network_id": event.network_id, "subnet_id": event.subnet_id,
                                    "action": event.action.value})
            case PortChanged():
                self._notify_hosts("network", event.network_id, "port_changed",
                                   {"network_id": event.network_id, "port_id": event.port_id,
                                    "action": event.action.value})
                if event.device_id in self.hosts["router"]:
                    self._notify_hosts("router", event.device_id, "router_updated",
                                       {"router_id": event.device_id, "reason": "port"})
            case RouterChanged(action=Action.DELETE, router_id=router_id):
                for rec in self.forget_object("router", router_id):
                    self._notify(rec, "router_deleted", {"router_id": router_id})
            case RouterChanged(action=action, router_id=router_id):
                if self.settings.router_auto_schedule and (
                        action == Action.CREATE or router_id not in self.hosts["router"]):
                    self.schedule("router", [router_id])
                if action == Action.UPDATE:
                    self._notify_hosts("router", router_id, "router_updated",
                                       {"router_id": router_id, "reason": "update"})
            case RouterGatewayChanged(router_id=router_id):
                if self.settings.router_auto_schedule and (
                        event.is_set or router_id not in self.hosts["router"]):
                    self.schedule("router", [router_id])
                self._notify_hosts("router", router_id, "router_updated", {
                    "router_id": router_id,
                    "reason": "gateway_set" if event.is_set else "gateway_cleared"})
            case RouterInterfaceChanged(router_id=router_id):
                if self.settings.router_auto_schedule and router_id not in self.hosts["router"]:
                    self.schedule("router", [router_id])
                self._notify_hosts("router", router_id, "router_updated", {
                    "router_id": router_id,
                    "reason": "interface_add" if event.added else "interface_remove"})
            case FloatingIpChanged():
                for router_id in event.routers:
                    self._notify_hosts("router", router_id, "router_updated",
                                       {"router_id": router_id, "reason": "floatingip"})
            case _:
                pass

    def _notify(self, rec: AgentRecord, method: str, payload: dict[str, Any]) -> None:
        if rec.conn is not None:
            rec.conn.notify(method, [payload])

    def _notify_hosts(self, kind: str, obj_id: str, method: str,
                      payload: dict[str, Any]) -> None:
        for rec in self.agents_hosting(kind, obj_id):
            self._notify(rec, method, payload)


__all__ = ["KINDS", "KIND_OF_TYPE", "Move", "Registry"]
