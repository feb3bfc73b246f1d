"""Three controllers on one PostgreSQL database, on real Open vSwitch: OpenFlow roles follow
the lease, a leader killed or frozen is replaced without disturbing traffic, and agents and
writes keep working through any survivor.

Topology: compute hosts h1 (vm1), h2 (vm2) and gateway hosts g1, g2, every switch listing
the three controllers; real L3 agent processes on g1 and g2 (mutual TLS, ``controller_hosts``
naming all three endpoints). Tenant network net-a 10.0.0.0/24 with router r1 on it.

One lab for the module, tests in file order like the steps of one scenario (each takeover
costs a lease time): roles at start; the leader SIGKILLed while vm1 pings vm2; a port
created through a survivor; the L3 agent hosting r1 killed; the new leader SIGSTOPped and
resumed; the killed controller restarted.

Deadlines are the issue's targets or generous bounds for polling (the timing figures are
measured by bench/cluster.py).
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, func, select
from sqlalchemy.engine import Engine

from ryu_sched.db import models
from tests.support.agent_process import AgentProcess
from tests.support.certs import TestPki
from tests.support.controller import ControllerProcess
from tests.support.lab import CloudLab
from tests.support.postgres import start_cluster
from tests.topology import CONTROLLER_IP, Host, leftovers, require_root_and_ovs, wait_until

pytestmark = pytest.mark.e2e

LEASE_TIME = 2.0
AGENT_DOWN_TIME = 3
#: the issue's bound for a new MASTER on every switch after the leader dies
TAKEOVER = LEASE_TIME + 2.0


class ClusterCloud:
    def __init__(self, lab: CloudLab, workdir: Path, pki: TestPki, engine: Engine) -> None:
        self.lab = lab
        self.engine = engine
        self.h1, self.h2 = lab.add_host("h1"), lab.add_host("h2")
        self.g1, self.g2 = lab.add_host("g1", gateway=True), lab.add_host("g2", gateway=True)
        self.hosts = [self.h1, self.h2, self.g1, self.g2]
        self.gateways = [self.g1, self.g2]
        lab.wait_connected(*self.hosts)
        first, *others = [c.rpc_port for c in lab.controllers]
        self.l3 = {g.ns: AgentProcess(lab.topo, g, "l3", first, workdir / "agents",
                                      tls=pki.issue(g.ns), more_rpc_ports=tuple(others))
                   for g in self.gateways}
        for agent in self.l3.values():
            agent.start()
        for g in self.gateways:
            lab.agent_id(g, "L3 agent")
        self.leader = self.wait_leader(lab.controllers)
        self.net, self.subnet = lab.create_tenant_network("tenant-a", "net-a", "10.0.0.0/24")
        self.vm1 = self.vm(self.h1, "vm1", "10.0.0.11")
        self.vm2 = self.vm(self.h2, "vm2", "10.0.0.12")
        self.router = lab.conn.network.create_router(name="r1", project_id="tenant-a")
        lab.conn.network.add_interface_to_router(self.router, subnet_id=self.subnet.id)
        wait_until(lambda: lab.router_host(self.router.id), 15, 0.1, "router scheduled")
        wait_until(lambda: self.vm1.ping("10.0.0.12"), 30, 0.2, "vm1 -> vm2")
        try:
            wait_until(lambda: self.vm1.ping("10.0.0.1"), 30, 0.2, "vm1 -> its router")
        except TimeoutError as exc:
            raise AssertionError(self.diagnostics()) from exc
        self.killed: ControllerProcess | None = None

    def vm(self, host: Host, name: str, ip: str) -> Any:
        port = self.lab.create_port(self.net, ip, project_id="tenant-a")
        return self.lab.topo.add_vm(host, name, port.id, port.mac_address, f"{ip}/24",
                                    "10.0.0.1")

    # --- who leads ----------------------------------------------------------------------

    @staticmethod
    def role(controller: ControllerProcess) -> dict[str, Any] | None:
        if not controller.alive():
            return None
        try:
            status, body = controller.request("GET", "/v2.0/agent-scheduler/stats",
                                              timeout=2)
        except OSError:
            return None
        return dict(body["stats"]["leadership"]) if status == 200 else None

    def wait_leader(self, among: list[ControllerProcess], timeout: float = 20.0
                    ) -> ControllerProcess:
        def one() -> ControllerProcess | None:
            leaders = [c for c in among if (r := self.role(c)) and r["leader"]]
            return leaders[0] if len(leaders) == 1 else None

        return wait_until(one, timeout, 0.1, "exactly one leader")  # type: ignore[no-any-return]

    def target(self, controller: ControllerProcess) -> str:
        return f"tcp:{CONTROLLER_IP}:{controller.of_port}"

    def roles(self) -> dict[str, dict[str, str]]:
        """Per switch, ``{controller target: role}`` as ovs-vswitchd reports it (the
        switches asked at once)."""
        with ThreadPoolExecutor(len(self.hosts)) as pool:
            return dict(zip([h.name for h in self.hosts],
                            pool.map(lambda h: h.controller_roles(), self.hosts),
                            strict=True))

    def masters(self) -> dict[str, list[str]]:
        return {name: [t for t, role in roles.items() if role == "master"]
                for name, roles in self.roles().items()}

    def master_of_every_switch(self, among: list[ControllerProcess]
                               ) -> ControllerProcess | None:
        """The controller of ``among`` whose role requests every switch granted (its own
        ``openflow`` stats, from the switches' role replies), if any."""
        for controller in among:
            role = self.role(controller) or {}
            if role.get("leader") and self.openflow(controller).get(
                    "programmed_switches") == len(self.hosts):
                return controller
        return None

    @staticmethod
    def openflow(controller: ControllerProcess) -> dict[str, int]:
        try:
            _status, body = controller.request("GET", "/v2.0/agent-scheduler/stats",
                                               timeout=2)
        except OSError:
            return {}
        return dict((body or {}).get("stats", {}).get("openflow", {}))

    def every_switch_master(self, controller: ControllerProcess) -> bool:
        return all(m == [self.target(controller)] for m in self.masters().values())

    # --- what the database holds --------------------------------------------------------

    def most_bindings_of_one_object(self) -> int:
        counts = []
        with self.engine.connect() as conn:
            for table, column in ((models.RouterL3AgentBinding, "router_id"),
                                  (models.NetworkDhcpAgentBinding, "network_id")):
                counts += conn.execute(select(func.count()).select_from(table)
                                       .group_by(getattr(table, column))).scalars().all()
        return max(counts, default=0)

    def api_on(self, controller: ControllerProcess) -> None:
        self.lab.use(controller)

    def diagnostics(self) -> str:
        """Roles, the router's placement and flows, the controllers' recent logs."""
        lab = self.lab
        lines = [f"roles {self.roles()}", f"router on {lab.router_host(self.router.id)}"]
        for host in self.hosts:
            lines += [f"{host.name}: {f}" for f in host.dump_flows()]
        for index, controller in enumerate(lab.controllers):
            log = [line for line in controller.log_text().splitlines()
                   if "ryu_sched" in line or "switch" in line or "lease" in line]
            lines += [f"controller{index}: {line}" for line in log[-40:]]
        return "\n".join(lines)


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterCloud]:
    require_root_and_ovs()
    workdir: Path = tmp_path_factory.mktemp("cluster")
    pg = start_cluster()
    url = pg.socket_url(pg.create_database("cluster"))   # reachable from any namespace
    engine = create_engine(url)
    pki = TestPki(workdir / "pki")
    endpoint = pki.issue("controller", ips=[CONTROLLER_IP])
    lab = CloudLab(workdir, {"connection": url, "leader_lease_time": LEASE_TIME,
                             "agent_down_time": AGENT_DOWN_TIME,
                             "heartbeat_flush_interval": 0.2, "rpc_host": CONTROLLER_IP,
                             "rpc_tls_cert_file": endpoint.cert_file,
                             "rpc_tls_key_file": endpoint.key_file,
                             "rpc_tls_ca_file": endpoint.ca_file}, controllers=3)
    try:
        with lab:
            built = ClusterCloud(lab, workdir, pki, engine)
            try:
                yield built
            finally:
                for agent in built.l3.values():
                    agent.stop()
                for controller in lab.controllers:   # a frozen one must run to stop
                    if controller.proc is not None and controller.alive():
                        controller.proc.send_signal(signal.SIGCONT)
        assert leftovers(lab.prefix) == []
    finally:
        engine.dispose()
        pg.destroy()


def test_the_leader_is_master_on_every_switch_the_others_slaves(cloud: ClusterCloud) -> None:
    leader = cloud.leader
    wait_until(lambda: cloud.every_switch_master(leader), 10, 0.1, "the leader is master")
    for name, roles in cloud.roles().items():
        others = {t: r for t, r in roles.items() if t != cloud.target(leader)}
        assert set(others.values()) == {"slave"}, (name, roles)


def test_killed_leader_a_new_master_everywhere_and_the_ping_loses_nothing(
        cloud: ClusterCloud) -> None:
    old = cloud.leader
    survivors = [c for c in cloud.lab.controllers if c is not old]
    pinger = cloud.vm1.start_continuous_ping("10.0.0.12", interval=0.05)
    pinger.wait_for_replies(10)
    more_than_one_master: list[dict[str, list[str]]] = []

    def masters_seen() -> dict[str, list[str]]:
        masters = cloud.masters()
        if any(len(m) > 1 for m in masters.values()):
            more_than_one_master.append(masters)
        return masters

    old.stop(signal.SIGKILL)
    # The switches' answers to its role requests: a survivor is MASTER of all four.
    new = wait_until(lambda: cloud.master_of_every_switch(survivors), TAKEOVER, 0.05,
                     "a new MASTER on every switch within lease + 2 s")
    # The same, as ovs-vswitchd reports it (its status columns lag behind).
    wait_until(lambda: all(m == [cloud.target(new)] for m in masters_seen().values()), 15,
               0.05, "the new master in every switch's Controller table")
    assert more_than_one_master == []
    assert cloud.wait_leader(survivors) is new
    received = pinger.received
    pinger.wait_for_replies(received + 20)
    stats = pinger.stop()
    assert stats.lost == 0, stats
    cloud.leader, cloud.killed = new, old
    cloud.api_on(new)


def test_a_port_created_through_a_survivor_gets_programmed(cloud: ClusterCloud) -> None:
    follower = next(c for c in cloud.lab.controllers
                    if c is not cloud.leader and c is not cloud.killed)
    cloud.api_on(follower)
    vm3 = cloud.vm(cloud.h1, "vm3", "10.0.0.13")
    wait_until(lambda: vm3.ping("10.0.0.12"), 20, 0.2, "vm3 (made on a follower) -> vm2")
    assert cloud.most_bindings_of_one_object() == 1


def test_an_l3_agent_killed_after_the_takeover_has_its_router_moved(
        cloud: ClusterCloud) -> None:
    lab = cloud.lab
    old = lab.router_host(cloud.router.id)
    other = next(g for g in cloud.gateways if g.ns != old)
    cloud.l3[str(old)].kill(signal.SIGKILL)
    wait_until(lambda: lab.router_host(cloud.router.id) == other.ns, AGENT_DOWN_TIME + 15,
               0.1, "router moved to the live L3 agent")
    wait_until(lambda: cloud.vm1.ping("10.0.0.1"), 20, 0.2, "vm1 -> its moved router")
    cloud.l3[str(old)].start()
    assert cloud.most_bindings_of_one_object() == 1


def test_frozen_leader_exactly_one_master_at_every_poll_and_it_never_returns(
        cloud: ClusterCloud) -> None:
    frozen = cloud.leader
    assert cloud.killed is not None
    others = [c for c in cloud.lab.controllers if c is not frozen and c is not cloud.killed]
    (successor,) = others
    assert frozen.proc is not None
    flow_mods_before = cloud.openflow(frozen)["flow_mods"]
    pinger = cloud.vm1.start_continuous_ping("10.0.0.12", interval=0.05)
    pinger.wait_for_replies(10)
    violations: list[Any] = []

    def exactly_one_master() -> dict[str, list[str]]:
        masters = cloud.masters()
        if any(len(m) != 1 for m in masters.values()):
            violations.append(masters)
        return masters

    frozen.proc.send_signal(signal.SIGSTOP)
    try:
        wait_until(lambda: cloud.master_of_every_switch([successor]), TAKEOVER, 0.05,
                   "the follower is MASTER on every switch within lease + 2 s")
        wait_until(lambda: all(m == [cloud.target(successor)]
                               for m in exactly_one_master().values()),
                   15, 0.05, "the follower as master in every switch's Controller table")
    finally:
        frozen.proc.send_signal(signal.SIGCONT)
    log_offset = len(frozen.log_text())
    wait_until(lambda: (cloud.role(frozen) or {}).get("leader") is False, 10, 0.1,
               "the resumed controller knows it follows")
    # Several lease times: at every poll one master per switch, never the resumed one.
    until = time.monotonic() + 3 * LEASE_TIME

    def watched() -> bool:
        masters = exactly_one_master()
        assert all(m != [cloud.target(frozen)] for m in masters.values()), masters
        return time.monotonic() >= until

    wait_until(watched, 30, 0.05, "the watched window")
    assert violations == []
    stats = pinger.stop()
    assert stats.lost == 0, stats
    resumed = cloud.openflow(frozen)
    assert resumed["programmed_switches"] == 0
    assert resumed["flow_mods"] == flow_mods_before        # it sent nothing
    assert "elected leader" not in frozen.log_text()[log_offset:]
    assert cloud.most_bindings_of_one_object() == 1
    cloud.leader = successor
    cloud.api_on(successor)


def test_the_killed_controller_restarts_and_joins_as_slave(cloud: ClusterCloud) -> None:
    restarted = cloud.killed
    assert restarted is not None
    restarted.start()
    target = cloud.target(restarted)
    for host in cloud.hosts:            # OVS backs off up to 8 s: try this one now
        host.kick_target(target)
    wait_until(lambda: all(r.get(target) == "slave" for r in cloud.roles().values()), 20,
               0.1, "the restarted controller is slave on every switch")
    assert cloud.every_switch_master(cloud.leader)
    assert (cloud.role(restarted) or {}).get("leader") is False
    assert cloud.most_bindings_of_one_object() == 1
