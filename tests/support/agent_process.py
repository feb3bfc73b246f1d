"""Real agent processes (``ryu_sched.agents.dhcp_agent`` / ``ryu_sched.agents.l3_agent``)
inside a host namespace.

An :class:`AgentProcess` runs ``python -m ryu_sched.agents.<kind>_agent`` in the host's network
namespace with the topology's environment (so it carries the cleanup marker), talking to the
host's own ovsdb and to the controller's RPC endpoint over the management network (mutual TLS
when given its certificate files). Namespaces
it creates start with ``<host ns>-`` so that the topology's cleanup finds them. Its log goes
to ``<workdir>/<host>-<kind>.log``; :meth:`AgentProcess.log_text` reads it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from ryu_sched.shared.tls import TlsFiles
from tests.topology import CONTROLLER_IP, Host, Topology, wait_until

MODULES = {"dhcp": "ryu_sched.agents.dhcp_agent", "l3": "ryu_sched.agents.l3_agent"}
REPO_ROOT = Path(__file__).resolve().parents[2]


class AgentProcess:
    def __init__(self, topo: Topology, host: Host, kind: str, rpc_port: int,
                 workdir: Path, report_interval: float = 1.0,
                 controller_host: str = CONTROLLER_IP, extra: tuple[str, ...] = (),
                 tls: TlsFiles | None = None, more_rpc_ports: tuple[int, ...] = (),
                 code_root: Path = REPO_ROOT) -> None:
        """``tls``: the agent's certificate, key and CA, for a controller on mutual TLS.
        ``more_rpc_ports``: further controllers on ``controller_host`` (the agent gets
        ``controller_hosts``, the first one ``rpc_port``'s). ``code_root``: the checkout
        whose agent runs (first on its PYTHONPATH, its working directory)."""
        if kind not in MODULES:
            raise ValueError(f"kind must be one of {sorted(MODULES)}")
        self.topo = topo
        self.host = host
        self.kind = kind
        self.rpc_port = rpc_port
        self.controller_host = controller_host
        self.more_rpc_ports = more_rpc_ports
        self.report_interval = report_interval
        self.extra = extra
        self.tls = tls
        self.code_root = Path(code_root)
        self.workdir = Path(workdir)
        self.state_path = self.workdir / f"{host.name}-{kind}-state"
        self.log_path = self.workdir / f"{host.name}-{kind}.log"
        self.proc: subprocess.Popen[str] | None = None
        self.starts = 0

    @property
    def namespace_prefix(self) -> str:
        return f"{self.host.ns}-"

    @property
    def agent_host(self) -> str:
        """The ``host`` the agent reports (the host's namespace name, unique per lab)."""
        return self.host.ns

    def argv(self) -> list[str]:
        return [sys.executable, "-m", MODULES[self.kind],
                "--agent-host", self.agent_host,
                "--agent-ovsdb", self.host.db_sock,
                "--agent-controller_host", self.controller_host,
                "--agent-controller_port", str(self.rpc_port),
                "--agent-report_interval", str(self.report_interval),
                "--agent-state_path", str(self.state_path),
                "--agent-namespace_prefix", self.namespace_prefix,
                *self.controllers_argv(), *self.tls_argv(), *self.extra]

    def controllers_argv(self) -> list[str]:
        if not self.more_rpc_ports:
            return []
        return ["--agent-controller_hosts", ",".join(
            f"{self.controller_host}:{port}" for port in (self.rpc_port, *self.more_rpc_ports))]

    def tls_argv(self) -> list[str]:
        if self.tls is None:
            return []
        return ["--agent-tls_cert_file", self.tls.cert_file,
                "--agent-tls_key_file", self.tls.key_file,
                "--agent-tls_ca_file", self.tls.ca_file]

    def start(self) -> AgentProcess:
        if self.alive():
            raise RuntimeError(f"{self.kind} agent on {self.host.name} is already running")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        log = open(self.log_path, "a")
        log.write(f"--- start {self.starts} ---\n")
        log.flush()
        env = {**self.topo.env, "PYTHONUNBUFFERED": "1",
               "PYTHONPATH": os.pathsep.join(
                   p for p in (str(self.code_root), os.environ.get("PYTHONPATH", "")) if p)}
        try:
            # Not topo.popen: ``ip netns exec`` would put the agent in a private (slave)
            # mount namespace, and the namespaces the agent creates (bind mounts under
            # /run/netns) would then be empty files for everyone else. Only the network
            # namespace is switched, as for an agent running on a real host.
            with self.topo.netns(self.host):
                self.proc = subprocess.Popen(self.argv(), stdout=log, stderr=subprocess.STDOUT,
                                             stdin=subprocess.DEVNULL, text=True,
                                             cwd=str(self.code_root), env=env)
        finally:
            log.close()
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self, sig: int = signal.SIGKILL, timeout: float = 10.0) -> None:
        """Send ``sig`` (SIGKILL by default: a crash) and reap the process."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5.0)

    def stop(self) -> None:
        self.kill(signal.SIGTERM)

    def restart(self) -> AgentProcess:
        self.kill()
        return self.start()

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_log(self, needle: str, timeout: float = 15.0, since: int = 0) -> None:
        """Poll the log until ``needle`` appears after character offset ``since``."""
        wait_until(lambda: needle in self.log_text()[since:], timeout, 0.05,
                   f"{needle!r} in the {self.kind} agent log of {self.host.name}")
