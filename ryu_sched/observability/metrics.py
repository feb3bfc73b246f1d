"""Prometheus metrics of one controller.

Two kinds of instruments:

- *events* (counters and histograms) that the components update as things happen: API
  requests, flow-mods, packet-ins, binding moves, failover durations, switch syncs;
- *state* (gauges) read at scrape time from a :class:`~ryu_sched.observability.status.Status`
  snapshot, so nothing has to keep them up to date: agents up, heartbeat ages, hosted
  objects, unhosted objects, active agents per router, switches, leadership.

Every metric name starts with ``ryu_sched_``; ``etc/prometheus/ryu-sched-alerts.yml`` and
``etc/grafana/ryu-sched-dashboard.json`` use only names from :data:`EXPORTED` (a test checks).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from ryu_sched.observability.status import Status

#: Histogram buckets for operations measured in seconds, from sub-millisecond to a minute.
SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
           30.0, 60.0)

AGENT_LABELS = ("agent_type", "host", "availability_zone")


class Metrics:
    """The controller's metrics registry and its event instruments."""

    def __init__(self, status: Callable[[], Status] | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        reg = self.registry
        self.api_request_seconds = Histogram(
            "ryu_sched_api_request_seconds", "REST API requests by method, resource and status.",
            ("method", "resource", "status"), buckets=SECONDS, registry=reg)
        self.moves = Counter(
            "ryu_sched_moves", "Bindings moved from one agent to another, by kind and reason.",
            ("kind", "reason"), registry=reg)
        self.failover_seconds = Histogram(
            "ryu_sched_failover_seconds",
            "From an agent judged dead to all of its objects placed on live agents.",
            buckets=SECONDS, registry=reg)
        self.flow_mods = Counter(
            "ryu_sched_flow_mods", "Flow-mods sent, per switch.", ("dpid",), registry=reg)
        self.switch_sync_seconds = Histogram(
            "ryu_sched_switch_sync_seconds", "Time to bring one switch's table in sync.",
            buckets=SECONDS, registry=reg)
        self.packet_ins = Counter(
            "ryu_sched_packet_ins", "Packet-ins received, by reason.", ("reason",),
            registry=reg)
        self._status = status
        if status is not None:
            reg.register(_StateCollector(status))

    def set_status_source(self, status: Callable[[], Status]) -> None:
        if self._status is None:
            self._status = status
            self.registry.register(_StateCollector(status))

    # --- event hooks (cheap; called on hot paths) -----------------------------------------

    def observe_api(self, method: str, resource: str, status: int, seconds: float) -> None:
        self.api_request_seconds.labels(method, resource, str(status)).observe(seconds)

    def moved(self, kind: str, reason: str, count: int = 1) -> None:
        if count:
            self.moves.labels(kind, reason).inc(count)

    def failed_over(self, seconds: float) -> None:
        self.failover_seconds.observe(seconds)

    def synced_switch(self, seconds: float) -> None:
        self.switch_sync_seconds.observe(seconds)

    def sent_flow_mods(self, dpid: int, count: int) -> None:
        if count:
            self.flow_mods.labels(f"{dpid:016x}").inc(count)

    def packet_in(self, reason: str) -> None:
        self.packet_ins.labels(reason).inc()


class _StateCollector(Collector):
    """Gauges computed from a fresh status snapshot at every scrape."""

    def __init__(self, status: Callable[[], Status]) -> None:
        self._status = status

    def describe(self) -> Iterator[Any]:
        return iter(())   # computed at scrape time; nothing to pre-describe

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        status = self._status()
        up = GaugeMetricFamily("ryu_sched_agent_up", "1 if the agent's last heartbeat is "
                               "younger than agent_down_time.", labels=AGENT_LABELS)
        admin = GaugeMetricFamily("ryu_sched_agent_admin_up", "1 if admin_state_up.",
                                  labels=AGENT_LABELS)
        age = GaugeMetricFamily("ryu_sched_agent_heartbeat_age_seconds",
                                "Seconds since the agent's last heartbeat.",
                                labels=AGENT_LABELS)
        hosted = GaugeMetricFamily("ryu_sched_agent_hosted",
                                   "Networks (DHCP agents) or routers (L3 agents) hosted.",
                                   labels=("agent_type", "host"))
        for agent in status.agents:
            labels = [agent.agent_type, agent.host, agent.availability_zone or ""]
            up.add_metric(labels, 1.0 if agent.alive else 0.0)
            admin.add_metric(labels, 1.0 if agent.admin_state_up else 0.0)
            age.add_metric(labels, agent.heartbeat_age)
            hosted.add_metric([agent.agent_type, agent.host], float(agent.load))
        unhosted = GaugeMetricFamily("ryu_sched_unhosted", "Networks or routers with fewer "
                                     "live agents than wanted.", labels=("kind",))
        for kind, count in sorted(status.unhosted_counts().items()):
            unhosted.add_metric([kind], float(count))
        active = GaugeMetricFamily("ryu_sched_router_active_agents",
                                   "Live agents actively hosting each router.",
                                   labels=("router_id",))
        for router_id, count in sorted(status.router_active_agents().items()):
            active.add_metric([router_id], float(count))
        connected = GaugeMetricFamily("ryu_sched_switch_connected",
                                      "1 while the switch is connected and programmed.",
                                      labels=("dpid",))
        flows = GaugeMetricFamily("ryu_sched_switch_flows", "Flows the switch should have.",
                                  labels=("dpid",))
        for switch in status.switches:
            connected.add_metric([switch.dpid], 1.0 if switch.connected else 0.0)
            flows.add_metric([switch.dpid], float(switch.flows))
        connections = GaugeMetricFamily("ryu_sched_rpc_connections",
                                        "Open agent RPC connections.")
        connections.add_metric([], float(status.rpc_connections))
        leader = GaugeMetricFamily("ryu_sched_leader",
                                   "1 if this controller is the leader.")
        leader.add_metric([], 1.0 if status.leader else 0.0)
        heartbeats = CounterMetricFamily("ryu_sched_heartbeats",
                                         "Agent heartbeats received (report_state).")
        heartbeats.add_metric([], float(status.heartbeats))
        malformed = CounterMetricFamily("ryu_sched_rpc_malformed_frames",
                                        "Malformed frames on the agent RPC endpoint.")
        malformed.add_metric([], float(status.rpc_malformed_frames))
        yield from (up, admin, age, hosted, unhosted, active, connected, flows, connections,
                    leader, heartbeats, malformed)


#: Every metric name a scrape can show (counters with their ``_total`` suffix, histograms with
#: ``_bucket``/``_sum``/``_count``); alert rules and dashboards may use only these.
EXPORTED: frozenset[str] = frozenset({
    "ryu_sched_agent_up", "ryu_sched_agent_admin_up", "ryu_sched_agent_heartbeat_age_seconds",
    "ryu_sched_agent_hosted", "ryu_sched_unhosted", "ryu_sched_router_active_agents",
    "ryu_sched_switch_connected", "ryu_sched_switch_flows", "ryu_sched_rpc_connections",
    "ryu_sched_leader",
    "ryu_sched_moves_total", "ryu_sched_heartbeats_total", "ryu_sched_rpc_malformed_frames_total",
    "ryu_sched_flow_mods_total", "ryu_sched_packet_ins_total",
    *(f"{h}_{s}" for h in ("ryu_sched_api_request_seconds", "ryu_sched_failover_seconds",
                           "ryu_sched_switch_sync_seconds")
      for s in ("bucket", "sum", "count")),
})
