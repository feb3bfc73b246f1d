"""Failover of a router on real Open vSwitch: the ping gap when its L3 agent dies.

Builds the namespace topology of the end-to-end tests (tests/topology): compute host h1 with
vm1, gateway hosts g1 and g2 with ext0 to the "internet" namespace, the real controller
(agent_down_time 3 s by default) and a real L3 agent process (``ryu_sched.agents.l3_agent``,
report_interval 1 s) on each gateway. Router r1 (SNAT gateway on the external network) serves
vm1's subnet. Each run pings the internet server from vm1 every ``--interval`` seconds,
breaks the gateway that hosts the router, waits until the router has moved and replies flow
again, and records the longest time without replies (``PingStats.longest_gap``) and the time
from the break until the registry had moved the router. The broken gateway is then repaired
(the agent restarted, the link brought up), so the next run moves the router back.

Modes: ``kill`` (default) SIGKILLs the L3 agent: its switch keeps forwarding until the
router's flows move, so the gap is the move itself. ``host`` SIGKILLs the agent and stops the
gateway's ovs-vswitchd (the whole gateway dies): nothing passes until the dead agent is
detected and the router has moved. ``link`` cuts the gateway's external link
(``ip link set ext0 down``), which the agent reports in its next heartbeat. Prints figures,
not pass/fail; the target is agent_down_time + 2 s.

    python bench/failover.py --runs 5
    python bench/failover.py --runs 5 --mode all
"""

from __future__ import annotations

import argparse
import signal
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.support.agent_process import AgentProcess  # noqa: E402
from tests.support.lab import CloudLab  # noqa: E402
from tests.topology import (  # noqa: E402
    CONTROLLER_IP,
    Host,
    leftovers,
    wait_until,
)
from tests.topology._run import missing_requirements  # noqa: E402

MODES = ("kill", "host", "link")


@dataclass(frozen=True)
class Run:
    mode: str
    from_host: str
    to_host: str
    moved_after: float   # seconds from the break until the API showed the router moved
    gap: float           # longest time without ping replies
    lost: int
    sent: int


class Bench:
    def __init__(self, lab: CloudLab, workdir: Path, report_interval: float,
                 ping_interval: float) -> None:
        assert lab.controller is not None
        self.lab = lab
        self.ping_interval = ping_interval
        conn = lab.conn
        self.h1 = lab.add_host("h1")
        self.g1 = lab.add_host("g1", gateway=True)
        self.g2 = lab.add_host("g2", gateway=True)
        self.gateways = [self.g1, self.g2]
        lab.wait_connected(self.h1, *self.gateways)
        self.l3 = {g.ns: AgentProcess(lab.topo, g, "l3", lab.controller.rpc_port,
                                      workdir / "agents", report_interval=report_interval)
                   for g in self.gateways}
        for agent in self.l3.values():
            agent.start()
        self.agent_ids = {g.ns: lab.agent_id(g, "L3 agent") for g in self.gateways}
        ext_net, _ = lab.create_external_network()
        net, subnet = lab.create_tenant_network("bench", "net-a", "10.0.0.0/24")
        port = lab.create_port(net, "10.0.0.11", project_id="bench")
        self.vm = lab.topo.add_vm(self.h1, "vm1", port.id, port.mac_address, "10.0.0.11/24",
                                  "10.0.0.1")
        self.router = conn.network.create_router(
            name="r1", project_id="bench", external_gateway_info={"network_id": ext_net.id})
        conn.network.add_interface_to_router(self.router, subnet_id=subnet.id)
        wait_until(lambda: lab.router_host(self.router.id), 15, 0.1, "router scheduled")

    def gateway(self, ns: str | None) -> Host:
        return next(g for g in self.gateways if g.ns == ns)

    def agent_state(self, host: Host) -> dict[str, object]:
        _status, body = self.lab.api("GET", f"/v2.0/agents/{self.agent_ids[host.ns]}")
        return dict(body["agent"])

    def usable(self, host: Host) -> bool:
        state = self.agent_state(host)
        conf = state.get("configurations") or {}
        return bool(state.get("alive")) and conf.get("external_link_up") is True  # type: ignore[union-attr]

    def run(self, mode: str) -> Run:
        lab = self.lab
        wait_until(lambda: all(self.usable(g) for g in self.gateways), 20, 0.1,
                   "both L3 agents alive with their external link up")
        wait_until(lambda: self.vm.ping(lab.topo.internet_ip), 20, 0.2, "vm1 -> internet")
        old = self.gateway(lab.router_host(self.router.id))
        new = self.g2 if old is self.g1 else self.g1
        pinger = self.vm.start_continuous_ping(lab.topo.internet_ip, self.ping_interval)
        pinger.wait_for_replies(10, timeout=10)
        broken_at = time.monotonic()
        if mode in ("kill", "host"):
            self.l3[old.ns].kill(signal.SIGKILL)
        if mode == "host":
            old.stop_vswitchd()
        if mode == "link":
            old.exec(["ip", "link", "set", "ext0", "down"])
        try:
            wait_until(lambda: lab.router_host(self.router.id) == new.ns, 30, 0.05,
                       f"router moved to {new.name}")
            moved_after = time.monotonic() - broken_at
            after = pinger.received
            pinger.wait_for_replies(after + int(2 / self.ping_interval), timeout=30)
            stats = pinger.stop()
        finally:
            if mode == "host":
                old.start_vswitchd()
                lab.wait_connected(old)
            if mode in ("kill", "host"):
                self.l3[old.ns].start()
            else:
                old.exec(["ip", "link", "set", "ext0", "up"])
        return Run(mode, old.name, new.name, moved_after, stats.longest_gap, stats.lost,
                   stats.sent)


def summary(label: str, values: list[float]) -> str:
    return (f"{label}: median {statistics.median(values):.2f}s  max {max(values):.2f}s  "
            f"min {min(values):.2f}s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--mode", choices=(*MODES, "all"), default="kill")
    parser.add_argument("--agent-down-time", type=int, default=3)
    parser.add_argument("--report-interval", type=float, default=1.0)
    parser.add_argument("--ping-interval", type=float, default=0.05)
    parser.add_argument("--workdir", type=Path, default=None,
                        help="keep logs here (default: a temporary directory, removed)")
    args = parser.parse_args(argv)
    missing = missing_requirements()
    if missing:
        print("failover bench needs " + ", ".join(missing), file=sys.stderr)
        return 2
    modes = list(MODES) if args.mode == "all" else [args.mode]
    target = args.agent_down_time + 2.0
    with tempfile.TemporaryDirectory(prefix="bench-failover-") as tmp:
        workdir = args.workdir or Path(tmp)
        lab = CloudLab(workdir, {"agent_down_time": args.agent_down_time,
                                 "rpc_host": CONTROLLER_IP}, prefix=None)
        started = time.monotonic()
        results: dict[str, list[Run]] = {m: [] for m in modes}
        with lab:
            bench = Bench(lab, workdir, args.report_interval, args.ping_interval)
            print(f"failover: real OVS, L3 agents report every {args.report_interval:g}s, "
                  f"agent_down_time {args.agent_down_time}s, ping every "
                  f"{args.ping_interval:g}s (lab built in {time.monotonic() - started:.1f}s)")
            for mode in modes:
                for index in range(args.runs):
                    run = bench.run(mode)
                    results[mode].append(run)
                    print(f"  {mode} run {index + 1}: router {run.from_host} -> {run.to_host} "
                          f"moved after {run.moved_after:.2f}s; ping gap {run.gap:.2f}s, "
                          f"{run.lost}/{run.sent} lost", flush=True)
        left = leftovers(lab.prefix)
    for mode in modes:
        runs = results[mode]
        print(f"{mode} ({len(runs)} runs):")
        print("  " + summary("ping gap     ", [r.gap for r in runs]))
        print("  " + summary("router moved ", [r.moved_after for r in runs]))
    print(f"target: ping gap median <= agent_down_time + 2 s = {target:.1f}s")
    if left:
        print("leftovers: " + "; ".join(left))
    return 0


if __name__ == "__main__":
    sys.exit(main())
