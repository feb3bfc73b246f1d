"""The registry: ties the agent table, the binding store and the placement policy together,
and tells the world about binding changes (bus events, agent notifications).

- :mod:`~ryu_sched.registry.agent_table`: agents, heartbeats, liveness, batched rows;
- :mod:`~ryu_sched.registry.bindings`: binding rows and their in-memory maps, the move log;
- :mod:`~ryu_sched.registry.placement`: schedule, evacuate, rebalance through the drivers;
- :mod:`~ryu_sched.registry.kinds`: what differs between networks and routers.

Everything here is synchronous and runs on the controller's one OS thread under the eventlet
hub; the green threads that drive it (RPC readers, the API, the worker) never yield inside a
method (no green I/O between a database commit and the in-memory update), so the in-memory
maps and the database stay consistent without locks.

Several controllers may share the database (PostgreSQL). Each keeps this registry in memory
and serves agents and the API from it; only the leader (``services.leadership``) runs the
monitor, failover and automatic scheduling, and its writes go through the leadership's
fence. The others follow: :meth:`Registry.refresh_agents` (every monitor tick) and
:meth:`Registry.refresh_object` / :meth:`Registry.resync` (on events relayed from the other
controllers) bring memory to what the database says, and tell the agents connected here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from ryu_sched import errors
from ryu_sched.events import BindingChanged
from ryu_sched.leadership import FencedOut
from ryu_sched.registry.agent_table import AgentTable, RefreshResult
from ryu_sched.registry.bindings import BindingChange, BindingStore, Move, Switchover
from ryu_sched.registry.history import History
from ryu_sched.registry.kinds import (
    ROUTERS,
    SPECS,
    KindSpec,
    ObjectFacts,
    spec_of,
    spec_of_agent_type,
)
from ryu_sched.registry.model import AgentRecord
from ryu_sched.registry.placement import PlacementPolicy, Reasons
from ryu_sched.shared.vocabulary import HaState, HostedKind

LOG = logging.getLogger(__name__)


class Registry:
    def __init__(self, services: Any, clock: Callable[[], float] = time.time) -> None:
        self.settings = services.settings
        self.db = services.db
        self.bus = services.bus
        self.leadership = services.leadership
        self.clock = clock
        self.started = clock()
        self.agents = AgentTable(self.db, clock, float(self.settings.agent_down_time),
                                 self.settings.max_agents_per_type)
        self.bindings = BindingStore(self.db, clock, fence=self.leadership.fence)
        self.placement = PlacementPolicy(self.agents, self.bindings, self.db, self.settings,
                                         clock)
        self.reconcile_requested = True
        self.monitor_ticks = 0
        self.history = History(clock, services.metrics)

    @property
    def heartbeats(self) -> int:
        return self.agents.counters.heartbeats

    def load(self) -> None:
        """Read agents and bindings from the database (at start)."""
        self.agents.load()
        self.bindings.load()
        self.history.preload(self.bindings.moves_log(limit=200))
        LOG.info("registry loaded %d agents, %d network and %d router bindings",
                 len(self.agents), self.bindings.count(HostedKind.NETWORK),
                 self.bindings.count(HostedKind.ROUTER))

    @property
    def leading(self) -> bool:
        """Does this controller run the monitor, failover and automatic scheduling?"""
        return bool(self.leadership.is_leader)

    # --- following the other controllers -------------------------------------------------

    def refresh_agents(self) -> RefreshResult:
        """Merge the agents table as the other controllers wrote it (heartbeats they
        received, agents they registered, deleted or changed): one read."""
        result = self.agents.refresh()
        for agent_id in result.removed:
            self._tell_local(self.bindings.forget_agent(agent_id))
        if result.placement_changed:
            self.reconcile_requested = True
        return result

    def refresh_object(self, kind: HostedKind | str, obj_id: str) -> list[BindingChange]:
        """Read one object's bindings again (another controller changed them) and tell the
        agents connected here what they gained or lost."""
        changes = self.bindings.refresh_object(HostedKind(kind), obj_id)
        self._tell_local(changes)
        return changes

    def resync(self) -> list[BindingChange]:
        """Read agents and every binding again (events may have been missed); tell the
        agents connected here what changed."""
        self.refresh_agents()
        changes = self.bindings.reload()
        self._tell_local(changes)
        if changes:
            LOG.info("registry resync: %d bindings differed from the database", len(changes))
        return changes

    def take_over(self) -> None:
        """We were just elected: read everything again, and give every agent one
        ``agent_down_time`` to be heard (those of a dead controller reconnect elsewhere)
        before anything is judged dead."""
        self.resync()
        self.started = self.clock()
        for rec in self.agents:
            rec.judged_dead = False
        self.reconcile_requested = True

    def _tell_local(self, changes: Iterable[BindingChange]) -> None:
        """Notify the agents connected to this controller of binding changes another
        controller made (that controller published the events)."""
        for change in changes:
            rec = self.agents.find(change.agent_id)
            if rec is not None and rec.conn is not None:
                self._notify_change(change, rec)

    # --- agents ---------------------------------------------------------------------------

    def report_state(self, conn: Any, state: Any) -> dict[str, Any]:
        """One heartbeat (``conn`` is the RPC connection it came over, or None)."""
        report = self.agents.report(state, self.clock())
        rec = report.record
        if report.status == "revived":
            self.history.revived(rec)
        if report.placement_changed:
            self.reconcile_requested = True
        if conn is not None and rec.conn is not conn:
            rec.conn = conn
            conn.agent_ids.add(rec.id)
        if state.get("start_flag") and conn is not None:
            conn.notify("resync", [{"agent_id": rec.id, "reason": "start_flag"}])
        return {"status": report.status, "agent_id": rec.id}

    def connection_closed(self, conn: Any) -> None:
        for agent_id in list(getattr(conn, "agent_ids", ())):
            rec = self.agents.find(agent_id)
            if rec is not None and rec.conn is conn:
                rec.conn = None

    def flush(self) -> int:
        """Write pending heartbeats and agent rows; the number of rows written."""
        result = self.agents.flush()
        if result.registered:
            self.reconcile_requested = True
        return result.written

    def is_alive(self, rec: AgentRecord, now: float | None = None) -> bool:
        return self.agents.is_alive(rec, now)

    def update_agent(self, agent_id: str, admin_state_up: bool | None = None,
                     description: str | None = None) -> AgentRecord:
        rec = self.agents.get(agent_id)
        if self.agents.set_admin(rec, admin_state_up, description):
            LOG.info("agent %s (%s on %s) admin_state_up=%s", rec.id, rec.agent_type,
                     rec.host, rec.admin_state_up)
            self.reconcile_requested = True
        return rec

    def delete_agent(self, agent_id: str, fenced: bool = False) -> None:
        """Remove an agent and its bindings (it registers anew on its next heartbeat);
        ``fenced``: as the leader (expiry)."""
        rec = self.agents.get(agent_id)
        self.flush()
        spec = spec_of(rec.kind)
        switchovers = [s for obj_id in sorted(self.bindings.hosted_by(rec.id))
                       for s in self.placement.promotion(spec, obj_id, rec.id, Reasons.MANUAL)]
        changes = self.bindings.drop_agent(spec, rec.id, fenced=fenced,
                                           switchovers=switchovers)
        self.agents.remove(rec, self.leadership.fence if fenced else None)
        LOG.info("deleted agent %s (%s on %s) and its %d bindings", rec.id, rec.agent_type,
                 rec.host, sum(1 for c in changes if not c.bound))
        self.history.switchovers(switchovers)
        for change in changes:
            if change.agent_id == rec.id:
                self._announce(change, rec)
            elif (other := self.agents.find(change.agent_id)) is not None:
                self._announce(change, other)
        self.reconcile_requested = True

    # --- who hosts what -------------------------------------------------------------------

    def agents_hosting(self, kind: HostedKind | str, obj_id: str) -> list[AgentRecord]:
        """The agents hosting an object, in binding_index order."""
        hosts = self.bindings.hosts_of(HostedKind(kind), obj_id)
        return [rec for agent_id, _ in sorted(hosts.items(), key=lambda item: item[1])
                if (rec := self.agents.find(agent_id)) is not None]

    def hosted_by(self, agent_id: str) -> list[str]:
        return sorted(self.bindings.hosted_by(agent_id))

    def ha_state(self, kind: HostedKind | str, obj_id: str, agent_id: str) -> HaState | None:
        """The role of the object's binding to the agent (None: no binding, or a network)."""
        return self.bindings.state_of(HostedKind(kind), obj_id, agent_id)

    def load_of(self, agent_id: str) -> int:
        return self.bindings.load_of(agent_id)

    def hosted_on_host(self, kind: HostedKind | str, obj_id: str, host: str) -> bool:
        """Is the object bound to the agent of its kind on ``host``?"""
        spec = spec_of(kind)
        rec = self.agents.lookup(spec.agent_type, host)
        return rec is not None and rec.id in self.bindings.hosts_of(spec.kind, obj_id)

    # --- bindings -------------------------------------------------------------------------

    def bind(self, kind: HostedKind | str, obj_id: str, agent_id: str) -> None:
        """One binding by hand; Conflict if it exists (a router without ha: if any exists).
        A router's new binding is standby if the router has an active one."""
        self.agents.get(agent_id)
        self.refresh_object(kind, obj_id)      # another controller may have bound it
        spec = spec_of(kind)
        facts = self.placement.facts(spec, [obj_id], schedulable=False).get(
            obj_id, ObjectFacts())
        change = self.bindings.bind(spec, obj_id, agent_id, exclusive=spec.exclusive(facts))
        self._publish([change], "bound to")

    def unbind(self, kind: HostedKind | str, obj_id: str, agent_id: str) -> None:
        """Remove one binding by hand; a router's active binding first passes its role to
        its best live standby (same transaction)."""
        self.agents.get(agent_id)
        self.refresh_object(kind, obj_id)
        spec = spec_of(kind)
        switchovers = self.placement.promotion(spec, obj_id, agent_id, Reasons.MANUAL)
        changes = self.bindings.unbind(spec, obj_id, agent_id, switchovers)
        self.history.switchovers(switchovers)
        self._publish(changes, "unbound from")
        if spec.has_roles and not self.bindings.has_active(spec.kind, obj_id):
            self.reconcile_requested = True

    def set_active(self, router_id: str, agent_id: str) -> bool:
        """Give the router's active role to its binding on ``agent_id`` (the admin move;
        also the gateway-health module's). NotFound: no such agent or binding; Conflict:
        the agent is not alive. False if it was active there already."""
        rec = self.agents.get(agent_id)
        self.refresh_object(HostedKind.ROUTER, router_id)
        state = self.bindings.state_of(HostedKind.ROUTER, router_id, agent_id)
        if state is None:
            raise errors.RouterL3AgentBindingNotFound(router_id=router_id, agent_id=agent_id)
        if state is HaState.ACTIVE:
            return False
        if not self.is_alive(rec):
            raise errors.L3AgentNotAlive(router_id=router_id, agent_id=agent_id)
        active = self.bindings.active_of(HostedKind.ROUTER, router_id)
        switchover = self.placement.switchover(ROUTERS, router_id,
                                               active[0] if active else "", agent_id,
                                               Reasons.MANUAL)
        self._publish_moves([], self.bindings.set_roles([switchover], fenced=False))
        return True

    def gateway_failed(self, agent_id: str, reason: str) -> list[str]:
        """The agent's gateway is known silent (the controller's gateway-health module, on
        the leader): without waiting for ``agent_down_time``, promote the standbys of the
        routers active there and move everything it hosts to other live agents (its
        routers' bindings move as standbys; a router without a live standby moves with its
        active role). The agent is no candidate for routers until it reports again. The ids
        of the routers whose active role left it."""
        rec = self.agents.get(agent_id)
        if not self.leading or not self.settings.allow_automatic_failover:
            LOG.warning("gateway of %s (%s) failed (%s): not failing over (%s)", rec.host,
                        rec.id, reason, "not the leader" if not self.leading
                        else "allow_automatic_failover is off")
            return []
        rec.gateway_failed_at = self.clock()
        held = {obj_id for obj_id in self.bindings.hosted_by(rec.id)
                if self.bindings.state_of(HostedKind.ROUTER, obj_id, rec.id)
                is HaState.ACTIVE}
        LOG.warning("gateway of %s (%s) failed (%s): moving the %d routers active there",
                    rec.host, rec.id, reason, len(held))
        moves, switchovers = self.placement.evacuate([rec], Reasons.GATEWAY_FAILED)
        self._publish_moves(moves, switchovers)
        gone = {s.resource_id for s in switchovers if s.from_agent == rec.id}
        gone |= {m.resource_id for m in moves
                 if m.from_agent == rec.id and m.ha_state is HaState.ACTIVE}
        return sorted(held & gone)

    def forget_object(self, kind: HostedKind | str, obj_id: str) -> list[AgentRecord]:
        """The object was deleted (the database cascaded its bindings): its former agents."""
        self.placement.under_hosted[HostedKind(kind)].discard(obj_id)
        return [rec for agent_id in self.bindings.forget_object(HostedKind(kind), obj_id)
                if (rec := self.agents.find(agent_id)) is not None]

    def schedule(self, kind: HostedKind | str, ids: Iterable[str] | None = None) -> int:
        """Place every (or each listed) unhosted or under-hosted object; the bindings made
        (moves off agents that no longer qualify included)."""
        added, moves, switchovers = self.placement.schedule(spec_of(kind), ids)
        self._publish(added, "scheduled to")
        self._publish_moves(moves, switchovers)
        return len(added) + len(moves)

    def reconcile(self) -> int:
        """Schedule every unhosted or under-hosted object (auto-schedule permitting)."""
        self.reconcile_requested = False
        return sum(self.schedule(kind) for kind, spec in SPECS.items()
                   if spec.auto_schedule(self.settings))

    def rebalance(self, agent_type: str | None = None) -> list[Move]:
        """Even out load among live, enabled agents (of one type, or of both)."""
        specs: Sequence[KindSpec] = list(SPECS.values()) if not agent_type else [
            spec_of_agent_type(agent_type)]
        moves = [move for spec in specs for move in self.placement.rebalance(spec)]
        self._publish_moves(moves)
        return moves

    def drain(self, agent_id: str) -> list[Move]:
        """Move everything the agent hosts to other eligible live agents, now (what cannot
        be placed stays). The agent remains a candidate unless it is disabled."""
        rec = self.agents.get(agent_id)
        moves, switchovers = self.placement.evacuate([rec], Reasons.DRAIN)
        self._publish_moves(moves, switchovers)
        return moves

    def move(self, kind: HostedKind | str, obj_id: str, from_agent: str,
             to_agent: str) -> list[Move]:
        """Move one binding by hand (reason ``manual``); the caller checked the target."""
        spec = spec_of(kind)
        self.agents.get(from_agent)
        self.agents.get(to_agent)
        hosts = self.bindings.hosts_of(spec.kind, obj_id)
        if from_agent not in hosts:
            raise spec.not_hosted(obj_id, from_agent)
        if to_agent in hosts:
            raise spec.hosted(obj_id, to_agent)
        moves = self.placement.move_one(spec, obj_id, from_agent, to_agent, Reasons.MANUAL)
        self._publish_moves(moves)
        return moves

    def moves(self, agent_id: str | None = None, resource_id: str | None = None,
              limit: int = 1000) -> list[dict[str, Any]]:
        return self.bindings.moves_log(agent_id, resource_id, limit)

    # --- the monitor ----------------------------------------------------------------------

    def monitor_tick(self) -> dict[str, int]:
        """Judge liveness, fail over, drain, expire, and schedule what is unhosted. Works on
        memory: it does not depend on the last flush having succeeded."""
        now = self.clock()
        self.monitor_ticks += 1
        summary = {"dead": 0, "moved": 0, "expired": 0, "scheduled": 0}
        if now - self.started >= self.agents.down_time:   # grace period after a start
            dead = self.agents.judge(now)
            summary["dead"] = len(dead)
            self.history.judged_dead(dead, self.bindings.load_of,
                                     self.settings.allow_automatic_failover)
            try:
                for reason, group in self._leaving().items():
                    moves, switchovers = self.placement.evacuate(group, reason)
                    self._publish_moves(moves, switchovers)
                    summary["moved"] += len(moves)
                    summary["switched"] = summary.get("switched", 0) + len(switchovers)
                summary["expired"] = self._expire(now)
            except FencedOut as exc:
                LOG.warning("failover abandoned, no longer the leader: %s", exc)
                return summary
            except SQLAlchemyError as exc:
                # Judged dead stays judged dead: the next tick moves their objects.
                LOG.error("failover deferred to the next monitor tick: %s", exc)
        try:
            summary["scheduled"] = self.reconcile()
        except FencedOut as exc:
            LOG.warning("scheduling abandoned, no longer the leader: %s", exc)
        except SQLAlchemyError as exc:
            self.reconcile_requested = True
            LOG.error("scheduling deferred to the next monitor tick: %s", exc)
        self.history.settle(self.bindings.load_of, self.agents.__contains__)
        return summary

    def _leaving(self) -> dict[str, list[AgentRecord]]:
        leaving: dict[str, list[AgentRecord]] = {Reasons.FAILOVER: [], Reasons.DRAIN: []}
        for rec in self.agents:
            if not self.bindings.load_of(rec.id):
                continue
            if rec.judged_dead and self.settings.allow_automatic_failover:
                leaving[Reasons.FAILOVER].append(rec)
            elif (not rec.judged_dead and not rec.admin_state_up
                  and self.settings.drain_disabled_agents):
                leaving[Reasons.DRAIN].append(rec)
        return {reason: group for reason, group in leaving.items() if group}

    def _expire(self, now: float) -> int:
        """Delete agents silent for ``agent_expiry_time`` that host nothing (0: never)."""
        expiry = self.settings.agent_expiry_time
        if not expiry:
            return 0
        expired = [rec for rec in self.agents.silent_for(expiry, now)
                   if not self.bindings.load_of(rec.id)]
        for rec in expired:
            LOG.warning("agent %s (%s on %s) expired: silent for %.0fs", rec.id,
                        rec.agent_type, rec.host, now - rec.heartbeat)
            self.delete_agent(rec.id, fenced=True)
        self.agents.counters.expired_agents += len(expired)
        return len(expired)

    # --- telling the world ----------------------------------------------------------------

    def notify(self, rec: AgentRecord, method: str, payload: dict[str, Any]) -> None:
        if rec.conn is not None:
            rec.conn.notify(method, [payload])

    def notify_hosts(self, kind: HostedKind | str, obj_id: str, method: str,
                     payload: dict[str, Any]) -> None:
        for rec in self.agents_hosting(kind, obj_id):
            self.notify(rec, method, payload)

    def _publish(self, changes: Iterable[BindingChange], verb: str) -> None:
        for change in changes:
            rec = self.agents.find(change.agent_id)
            if rec is None:
                continue
            if not change.role_only:
                LOG.info("%s %s %s %s on %s%s", change.kind.value, change.object_id, verb,
                         rec.agent_type, rec.host,
                         f" ({change.ha_state})" if change.ha_state else "")
            self._announce(change, rec)

    def _publish_moves(self, moves: Sequence[Move],
                       switchovers: Sequence[Switchover] = ()) -> None:
        """Switchovers first (they were applied first), then moves."""
        self.history.switchovers(switchovers)
        self.history.moves(moves)
        for record in (*switchovers, *moves):
            for change in record.changes():
                rec = self.agents.find(change.agent_id)
                if rec is not None:
                    self._announce(change, rec)

    def _notify_change(self, change: BindingChange, rec: AgentRecord) -> None:
        spec = SPECS[change.kind]
        if change.role_only:
            self.notify(rec, spec.updated_method, spec.payload(
                change.object_id, reason="ha_state", ha_state=str(change.ha_state)))
            return
        method = spec.bound_method if change.bound else spec.unbound_method
        self.notify(rec, method, spec.payload(change.object_id))

    def _announce(self, change: BindingChange, rec: AgentRecord) -> None:
        """Notify the agent and publish :class:`BindingChanged` for one binding change."""
        spec = SPECS[change.kind]
        self._notify_change(change, rec)
        self.bus.publish(BindingChanged(
            kind=change.kind, object_id=change.object_id, agent_id=rec.id, host=rec.host,
            bound=change.bound, datapath_id=rec.datapath_id if spec.carries_datapath else None,
            ha_state=str(change.ha_state) if change.ha_state else None))


__all__ = ["Move", "Registry", "Switchover"]
