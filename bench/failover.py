"""Failover of a router on real Open vSwitch: the ping gap, double ARP replies and TCP sessions
when the gateway hosting it fails.

Builds the namespace topology of the end-to-end tests (tests/support/gateway_lab.py): compute
host h1 with VMs r1snat (reaches the internet through the router's SNAT) and r1fip (with a
floating IP), gateway hosts g1 and g2 with ext0 to the "internet" namespace, the real
controller (agent_down_time 3 s by default) and a real L3 agent process
(``ryu_sched.agents.l3_agent``, report_interval 1 s) on each gateway. Router r1 (SNAT gateway
on the external network) serves the VMs' subnet. Each run pings the internet server from
r1snat every ``--ping-interval`` seconds,
breaks the gateway where the router is active, waits until the router has moved and replies
flow again, and records the longest time without replies (``PingStats.longest_gap``) and the
time from the break until the API showed the router elsewhere. The broken gateway is then
repaired, so the next run moves the router back.

Modes of the first measurements: ``kill`` SIGKILLs the L3 agent (its switch keeps forwarding,
so the gap is the move itself); ``host`` SIGKILLs the agent and stops ovs-vswitchd; ``link``
cuts ext0. Modes of issue 12 (``--mode gateway`` runs all five), which also probe, from the
internet namespace, the router's external address with an ARP request every 20 ms and count
the replies per request (tests/topology/arp_probe.py: two replies to one request = two
gateways answer for the router), and keep two TCP sessions to the internet's echo server open
(r1snat through SNAT, r1fip through its floating IP; tests/topology/tcp_session.py) to see
whether
they survive:

- ``vanish``: the gateway's uplink, external and management links go down at once and its
  ovs-vswitchd, ovsdb-server and L3 agent are SIGSTOPped (``Host.vanish``): no reset
  reaches anyone. Repaired by ``Host.come_back`` (processes resumed, then links up).
- ``switch-kill``: its ovs-vswitchd and L3 agent SIGKILLed.
- ``ext-cut``: its external link down.
- ``mgmt-cut``: its management link down (no controller, no RPC; its data plane keeps its
  flows and forwards).
- ``return``: a vanish failover first (not measured), then the old gateway comes back
  (``--return-order``) and the figures cover the return: ping loss, double ARP replies,
  sessions, from the moment it comes back until it is connected to the controller again
  (without being kicked: OVS's own backoff), its agent alive, and the last ``--observe``
  seconds of pings were all answered (at most 90 s).

After each run of the other modes the gateway is repaired, and the time until the SNAT VM
reaches the internet again and until everything is ready is reported too: a repair is a
return as well.

``--ha`` creates the router with ``"ha": true`` (exits with a message when the controller
refuses it), ``--code DIR`` runs the controller and agents of another checkout, ``--option
key=value`` sets a controller option. Prints figures, not pass/fail; issue 12's goal: median
gap < 1 s and max < 1.5 s in every mode, never a double reply.

    python bench/failover.py --mode gateway --runs 10
    python bench/failover.py --mode vanish --runs 10 --ha --code ../other-checkout
    python bench/failover.py --runs 5 --mode kill
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.support.gateway_lab import Failure, GatewayLab, HaUnsupported  # noqa: E402
from tests.support.lab import CloudLab  # noqa: E402
from tests.support.source_tree import source_env  # noqa: E402
from tests.topology import (  # noqa: E402
    CONTROLLER_IP,
    ArpProbe,
    ArpReport,
    ComeBackOrder,
    Host,
    Outcome,
    PingStats,
    SessionReport,
    TcpSession,
    leftovers,
    wait_until,
)
from tests.topology._run import missing_requirements  # noqa: E402

FIRST_MODES = ("kill", "host", "link")
GATEWAY_MODES = ("vanish", "switch-kill", "ext-cut", "mgmt-cut", "return")
MODES = (*FIRST_MODES, *GATEWAY_MODES)
DEFAULT_RUNS = {"first": 5, "gateway": 10}
NOT_CONNECTED = SessionReport(Outcome.NEVER_CONNECTED, "", 0, 0, 0.0, "no session before the break")


@dataclass(frozen=True)
class Run:
    mode: str
    from_host: str
    to_host: str
    moved_after: float | None   # seconds from the break until the API showed the move
    gap: float                  # longest time without ping replies
    lost: int
    sent: int
    arp: ArpReport | None = None
    snat: SessionReport | None = None
    fip: SessionReport | None = None
    doubles_at: tuple[float, ...] = ()   # when the doubled requests went out, from the break
    settle: float = 0.0          # time waited for one reply per ARP request before the break
    #: from the repair until three pings in a row of the SNAT VM reach the internet again
    #: (None: not within 120 s)
    internet_after_repair: float | None = None
    #: ... until three new TCP connections in a row from the SNAT VM get their echo
    tcp_after_repair: float | None = None
    #: from the repair until both agents are usable and both VMs reach the internet (ping
    #: and a TCP echo)
    recovered_after: float | None = None

    def describe(self) -> str:
        moved = ("not moved" if self.moved_after is None
                 else f"moved after {self.moved_after:.2f}s")
        text = (f"router {self.from_host} -> {self.to_host} {moved}; ping gap {self.gap:.2f}s, "
                f"{self.lost}/{self.sent} lost")
        if self.arp is not None:
            text += (f"; ARP {self.arp.doubled} doubled, {self.arp.unanswered}/"
                     f"{self.arp.sent} unanswered (silence {self.arp.longest_silence:.2f}s)")
            if self.doubles_at:
                text += (f" doubles from {min(self.doubles_at):+.2f}s to "
                         f"{max(self.doubles_at):+.2f}s, replies by {self.arp.repliers}")
            if self.settle > 1.0:
                text += f"; waited {self.settle:.1f}s for single ARP replies first"
        if self.recovered_after is not None:
            text += (f"; after the repair: ping in {self.internet_after_repair or 0:.2f}s, "
                     f"TCP in {self.tcp_after_repair or 0:.2f}s, all ready in "
                     f"{self.recovered_after:.2f}s")
        for name, session in (("SNAT", self.snat), ("FIP", self.fip)):
            if session is not None:
                text += (f"; {name} session {session.outcome.value} "
                         f"(gap {session.longest_gap:.2f}s)")
        return text


class Bench:
    def __init__(self, lab: CloudLab, gw: GatewayLab, ping_interval: float,
                 observe: float, order: ComeBackOrder) -> None:
        self.lab = lab
        self.gw = gw
        self.ping_interval = ping_interval
        self.observe = observe
        self.order = order

    def wait_moved(self, new: Host, timeout: float = 30.0) -> bool:
        try:
            wait_until(lambda: self.gw.active_host() == new.ns, timeout, 0.05,
                       f"router active on {new.name}")
        except TimeoutError:
            return False
        return True

    def run(self, mode: str) -> Run:
        gw = self.gw
        gw.wait_ready(timeout=120.0)
        if mode == "return":
            return self.run_return()
        old = gw.active_gateway()
        new = gw.other(old)
        failure = Failure(mode)
        measured = mode in GATEWAY_MODES
        router = gw.router
        pinger = router.snat_vm.start_continuous_ping(self.lab.topo.internet_ip,
                                                      self.ping_interval)
        probe = ArpProbe.start(self.lab.topo, gw.router.ip) if measured else None
        sessions = self.start_sessions() if measured else None
        pinger.wait_for_replies(10, timeout=10)
        settle = wait_single_replies(probe) if probe is not None else 0.0
        broken_at = time.monotonic()
        gw.break_(failure, old)
        try:
            moved = self.wait_moved(new)
            moved_after = time.monotonic() - broken_at if moved else None
            after = pinger.received
            try:
                pinger.wait_for_replies(after + int(2 / self.ping_interval), timeout=30)
            except TimeoutError:
                pass
            reports = self.finish_sessions(sessions, broken_at)
            stats = pinger.stop()
            arp = None
            if probe is not None:
                probe.stop()
                arp = probe.report(since=broken_at)
        finally:
            pinger.kill()
            if probe is not None:
                probe.stop()
            repaired_at = time.monotonic()
            gw.repair(failure, old)
        internet, tcp, ready = self.wait_recovered(repaired_at)
        return Run(mode, old.name, new.name, moved_after, gap_of(stats), stats.lost,
                   stats.sent, arp, *reports, doubles_at=offsets(arp, broken_at),
                   settle=settle, internet_after_repair=internet, tcp_after_repair=tcp,
                   recovered_after=ready)

    def wait_recovered(self, since: float
                       ) -> tuple[float | None, float | None, float | None]:
        """How long after ``since`` (a repair) the SNAT VM's ping, then a new TCP connection
        of it, reach the internet, and everything works again (None: not within 120 s; the
        next runs will then likely fail)."""
        vm = self.gw.router.snat_vm
        found: list[float] = []

        def steadily(check: Callable[[], bool]) -> Callable[[], bool]:
            # three in a row: right after a return the path can flap, one success is luck
            return lambda: all(check() for _ in range(3))

        try:
            wait_until(steadily(lambda: vm.ping(self.lab.topo.internet_ip, count=1,
                                                timeout=0.5)),
                       120.0, 0.0, f"{vm.name} -> internet")
            found.append(time.monotonic() - since)
            wait_until(steadily(lambda: self.gw.tcp_works(vm)), 120.0, 0.0,
                       f"{vm.name} TCP echo")
            found.append(time.monotonic() - since)
            steps = self.gw.wait_ready(timeout=120.0)
            found.append(time.monotonic() - since)
            slow = {what: f"{took:.1f}s" for what, took in steps.items() if took > 2.0}
            if slow:
                print(f"    slow to recover after the repair: {slow}", flush=True)
        except TimeoutError as exc:
            print(f"    not recovered: {exc}", flush=True)
        padded: list[float | None] = [*found, None, None, None]
        return padded[0], padded[1], padded[2]

    def run_return(self) -> Run:
        """A vanish failover (not measured), then the old gateway comes back: measured."""
        gw = self.gw
        old = gw.active_gateway()
        new = gw.other(old)
        gw.break_(Failure.VANISH, old)
        try:
            if not self.wait_moved(new):
                raise RuntimeError("return: the router did not move away from the vanished "
                                   f"gateway {old.name}; l3-agents: {gw.l3_agents()}")
            for vm in (gw.router.snat_vm, gw.router.fip_vm):
                wait_until(lambda vm=vm: gw.internet_reachable(vm), 30, 0.1,
                           f"{vm.name} -> internet")
            pinger = gw.router.snat_vm.start_continuous_ping(self.lab.topo.internet_ip,
                                                  self.ping_interval)
            probe = ArpProbe.start(self.lab.topo, gw.router.ip)
            sessions = self.start_sessions()
            pinger.wait_for_replies(10, timeout=10)
        except BaseException:
            gw.repair(Failure.VANISH, old)
            raise
        back_at = time.monotonic()
        try:
            gw.repair(Failure.VANISH, old, self.order, wait_connected=False)
            wait_until(old.controller_connected, 30, 0.1,
                       f"{old.name} reconnected to the controller by itself")
            wait_until(lambda: gw.agent_state(old).get("alive"), 30, 0.1,
                       f"{old.name}'s L3 agent alive again")
            # The window ends once the last --observe seconds of pings were all answered
            # (at most 90 s after the return): a long outage after the return is measured.
            quiet = max(1, int(self.observe / self.ping_interval))

            def answered_lately() -> bool:
                stats = pinger.stats()
                return (stats.sent - back_seq >= quiet
                        and not any(s > stats.sent - quiet for s in stats.lost_seqs))

            back_seq = pinger.stats().sent
            try:
                wait_until(answered_lately, 90, 0.1, f"{self.observe:g}s of answered pings")
            except TimeoutError:
                print("    return: pings still lost 90 s after the return", flush=True)
            reports = self.finish_sessions(sessions, back_at)
            stats = pinger.stop()
            arp = probe.stop()
        finally:
            pinger.kill()
            probe.stop()
            if not old.controller_connected():
                old.wait_controller_connected(20.0)
        return Run("return", old.name, new.name, None, gap_of(stats), stats.lost,
                   stats.sent, arp, *reports, doubles_at=offsets(arp, back_at))

    def start_sessions(self) -> tuple[TcpSession | None, TcpSession | None]:
        """A TCP session from each VM (three tries each: right after a repair a new
        connection can fail while pings pass); None where none connected."""
        server = self.lab.topo.internet_ip
        started: list[TcpSession | None] = []
        for vm in (self.gw.router.snat_vm, self.gw.router.fip_vm):
            session: TcpSession | None = None
            for _attempt in range(3):
                try:
                    session = TcpSession.start(vm, server, 7)
                except RuntimeError as exc:
                    print(f"    {exc}", flush=True)
                    continue
                if session.wait_echoes(5, timeout=10):
                    break
                session.stop(drain=0.0)
                session = None
            started.append(session)
        return started[0], started[1]

    def finish_sessions(self, sessions: tuple[TcpSession | None, TcpSession | None] | None,
                        since: float) -> tuple[SessionReport | None, SessionReport | None]:
        """Give each session up to 15 s to echo again after ``since`` (TCP backs off its
        retransmissions), then stop it."""
        if sessions is None:
            return None, None
        deadline = time.monotonic() + 15.0
        for session in sessions:
            while session is not None and session.open and time.monotonic() < deadline:
                last = session.last_echo()
                if last is not None and last > since + 0.5:
                    break
                time.sleep(0.05)
        snat, fip = (NOT_CONNECTED if s is None else s.stop() for s in sessions)
        return snat, fip


def wait_single_replies(probe: ArpProbe, window: float = 0.5, timeout: float = 20.0
                        ) -> float:
    """Wait until the last ``window`` seconds of requests got exactly one reply each (a
    gateway repaired by the previous run may still answer); returns the time waited."""
    started = time.monotonic()
    wanted = int(0.8 * window / probe.interval)

    def clean() -> bool:
        report = probe.report(since=time.monotonic() - window - 0.3)
        return report.sent >= wanted and report.answered_once == report.sent

    try:
        wait_until(clean, timeout, 0.05, "one ARP reply per request")
    except TimeoutError:
        print(f"    (ARP replies never settled: {probe.report().describe()})", flush=True)
    return time.monotonic() - started


def gap_of(stats: PingStats) -> float:
    """The longest time without replies, including one that had not ended at the stop."""
    return max(stats.longest_gap, stats.trailing_gap)


def offsets(arp: ArpReport | None, since: float) -> tuple[float, ...]:
    return tuple(at - since for _seq, at, _who in arp.doubles) if arp is not None else ()


def stats_line(label: str, values: Sequence[float]) -> str:
    if not values:
        return f"{label}: none"
    return (f"{label}: median {statistics.median(values):.2f}s  max {max(values):.2f}s  "
            f"min {min(values):.2f}s")


def summary(mode: str, runs: list[Run]) -> list[str]:
    lines = [f"{mode} ({len(runs)} runs):"]
    lines.append("  " + stats_line("ping gap     ", [r.gap for r in runs]))
    moved = [r.moved_after for r in runs if r.moved_after is not None]
    if mode != "return":
        lines.append("  " + stats_line("router moved ", moved)
                     + (f"  ({len(runs) - len(moved)} runs: never)" if len(moved) < len(runs)
                        else ""))
    lost = [r.lost for r in runs]
    lines.append(f"  pings lost: median {statistics.median(lost):g}, max {max(lost)}")
    internet = [r.internet_after_repair for r in runs if r.internet_after_repair is not None]
    if internet:
        lines.append("  " + stats_line("internet again after the repair", internet))
    tcp = [r.tcp_after_repair for r in runs if r.tcp_after_repair is not None]
    if tcp:
        lines.append("  " + stats_line("new TCP works after the repair", tcp))
    recovered = [r.recovered_after for r in runs if r.recovered_after is not None]
    if recovered:
        lines.append("  " + stats_line("all ready again after the repair", recovered))
    arps = [r.arp for r in runs if r.arp is not None]
    if arps:
        doubled = [a.doubled for a in arps]
        lines.append(f"  ARP requests answered twice: {sum(doubled)} of "
                     f"{sum(a.sent for a in arps)} in all, in {sum(1 for d in doubled if d)}"
                     f"/{len(arps)} runs (max {max(doubled)} in one run)")
        lines.append("  " + stats_line("ARP silence  ", [a.longest_silence for a in arps]))
    for name in ("snat", "fip"):
        reports = [getattr(r, name) for r in runs if getattr(r, name) is not None]
        if reports:
            outcomes = {o.value: sum(1 for s in reports if s.outcome is o) for o in Outcome}
            shown = ", ".join(f"{k} {v}" for k, v in outcomes.items() if v)
            gaps = [s.longest_gap for s in reports if s.outcome is Outcome.SURVIVED]
            lines.append(f"  {name.upper()} TCP session: {shown}"
                         + (f"; survivors' gap median {statistics.median(gaps):.2f}s"
                            if gaps else ""))
    return lines


def parse_options(pairs: Sequence[str]) -> dict[str, object]:
    options: dict[str, object] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"--option wants key=value, got {pair!r}")
        options[key.strip()] = value.strip()
    return options


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=None,
                        help="runs per mode (default: 5 for kill/host/link, 10 for the "
                             "gateway modes)")
    parser.add_argument("--mode", choices=(*MODES, "gateway", "all"), default="kill")
    parser.add_argument("--ha", action="store_true", help='create the router with "ha": true')
    parser.add_argument("--code", type=Path, default=ROOT,
                        help="the checkout whose controller and agents run (default: this one)")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                        help="a controller option ([ryu_sched] group), repeatable")
    parser.add_argument("--agent-down-time", type=int, default=3)
    parser.add_argument("--report-interval", type=float, default=1.0)
    parser.add_argument("--ping-interval", type=float, default=0.05)
    parser.add_argument("--observe", type=float, default=3.0,
                        help="return mode: the window ends once the old gateway is back and "
                             "this many seconds of pings were all answered")
    parser.add_argument("--return-order", choices=[o.value for o in ComeBackOrder],
                        default=ComeBackOrder.PROCESSES_FIRST.value)
    parser.add_argument("--workdir", type=Path, default=None,
                        help="keep logs here (default: a temporary directory, removed)")
    args = parser.parse_args(argv)
    missing = missing_requirements()
    if missing:
        print("failover bench needs " + ", ".join(missing), file=sys.stderr)
        return 2
    if args.mode == "all":
        modes = list(MODES)
    elif args.mode == "gateway":
        modes = list(GATEWAY_MODES)
    else:
        modes = [args.mode]
    code = args.code.resolve()
    target = args.agent_down_time + 2.0
    with tempfile.TemporaryDirectory(prefix="bench-failover-") as tmp:
        workdir = (args.workdir or Path(tmp)).resolve()
        # The controller and the agents run the code of --code, flows/ and agents/ included.
        os.environ.update(source_env(code, workdir / "source-shim"))
        os.chdir(code)   # ``python -m`` puts the working directory first on sys.path
        options: dict[str, object] = {"agent_down_time": args.agent_down_time,
                                      "rpc_host": CONTROLLER_IP, "rpc_allow_insecure": True,
                                      **parse_options(args.option)}
        lab = CloudLab(workdir, options, prefix=None)
        started = time.monotonic()
        results: dict[str, list[Run]] = {m: [] for m in modes}
        with lab:
            try:
                gw = GatewayLab(lab, workdir, ha=args.ha,
                                report_interval=args.report_interval, code_root=code)
            except HaUnsupported as exc:
                print(f"--ha: {exc}", file=sys.stderr)
                return 3
            bench = Bench(lab, gw, args.ping_interval, args.observe,
                          ComeBackOrder(args.return_order))
            print(f"failover: real OVS, code {code}, {'HA' if args.ha else 'non-HA'} router, "
                  f"L3 agents report every {args.report_interval:g}s, agent_down_time "
                  f"{args.agent_down_time}s, ping every {args.ping_interval:g}s (lab built "
                  f"in {time.monotonic() - started:.1f}s)", flush=True)
            try:
                for mode in modes:
                    runs = args.runs or DEFAULT_RUNS["gateway" if mode in GATEWAY_MODES
                                                     else "first"]
                    for index in range(runs):
                        run = bench.run(mode)
                        results[mode].append(run)
                        print(f"  {mode} run {index + 1}: {run.describe()}", flush=True)
                        if run.arp is not None and run.arp.doubles:
                            print(f"    {run.arp.describe()}", flush=True)
            finally:
                gw.close()
        left = leftovers(lab.prefix)
    for mode in modes:
        if results[mode]:
            print("\n".join(summary(mode, results[mode])))
    print(f"first target: ping gap median <= agent_down_time + 2 s = {target:.1f}s; "
          "issue 12: median < 1 s, max < 1.5 s, no double ARP replies")
    if left:
        print("leftovers: " + "; ".join(left))
    return 0


if __name__ == "__main__":
    sys.exit(main())
