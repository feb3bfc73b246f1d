"""A private Open vSwitch: ovsdb-server + ovs-vswitchd with every file (database, sockets,
pidfiles, logs) under one directory, run from the calling thread's network namespace. Ports
may be dummy ports (``--enable-dummy=override``), which need no kernel device. Used by the
real-OVS flow tests and by bench/programmer.py; the namespace topology (tests/topology) runs
its hosts' daemons the same way."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

SCHEMAS = ("/usr/share/openvswitch/vswitch.ovsschema",
           "/usr/local/share/openvswitch/vswitch.ovsschema")


def ovs_schema() -> str | None:
    return next((p for p in SCHEMAS if Path(p).exists()), None)


class OvsSandbox:
    def __init__(self, root: Path, env: Mapping[str, str] | None = None,
                 timeout: float = 60.0) -> None:
        self.root = Path(root)
        self.env = {**(env if env is not None else os.environ), "OVS_RUNDIR": str(root),
                    "OVS_DBDIR": str(root), "OVS_LOGDIR": str(root)}
        self.db = f"unix:{root}/db.sock"
        self.timeout = timeout

    def run(self, *args: str, check: bool = True) -> str:
        proc = subprocess.run(args, env=self.env, capture_output=True, text=True,
                              timeout=self.timeout, check=False)
        if check and proc.returncode != 0:
            raise RuntimeError(f"{' '.join(args)}: {proc.stderr.strip()}")
        return proc.stdout

    def start(self) -> None:
        schema = ovs_schema()
        if schema is None:
            raise RuntimeError("no vswitch.ovsschema: is openvswitch-switch installed?")
        r = self.root
        self.run("ovsdb-tool", "create", f"{r}/conf.db", schema)
        self.run("ovsdb-server", f"--remote=punix:{r}/db.sock", f"--pidfile={r}/ovsdb.pid",
                 "--detach", f"--log-file={r}/ovsdb.log", f"{r}/conf.db")
        self.vsctl("--no-wait", "init")
        self.run("ovs-vswitchd", self.db, f"--pidfile={r}/vswitchd.pid", "--detach",
                 f"--log-file={r}/vswitchd.log", "--enable-dummy=override", "--disable-system")

    def pid(self, name: str) -> int | None:
        """Pid of ``vswitchd`` or ``ovsdb`` from its pidfile."""
        try:
            return int((self.root / f"{name}.pid").read_text().strip())
        except (OSError, ValueError):
            return None

    def vsctl(self, *args: str) -> str:
        return self.run("ovs-vsctl", f"--db={self.db}", f"--timeout={int(self.timeout)}", *args)

    def ofctl(self, bridge: str, command: str, *args: str) -> str:
        return self.run("ovs-ofctl", "-O", "OpenFlow13", command,
                        f"unix:{self.root}/{bridge}.mgmt", *args)

    def appctl(self, *args: str, check: bool = True) -> str:
        pid = self.pid("vswitchd")
        return self.run("ovs-appctl", "-t", f"{self.root}/ovs-vswitchd.{pid}.ctl", *args,
                        check=check)

    def stop(self) -> None:
        """Stop both daemons (vswitchd removes its datapath), by their own pids."""
        for name, target in (("vswitchd", "ovs-vswitchd"), ("ovsdb", "ovsdb-server")):
            pid = self.pid(name)
            if pid is None:
                continue
            args = ("exit", "--cleanup") if name == "vswitchd" else ("exit",)
            self.run("ovs-appctl", "-t", f"{self.root}/{target}.{pid}.ctl", *args, check=False)
            deadline = time.monotonic() + 2.5
            while time.monotonic() < deadline:
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.05)  # polling for the process to exit
            else:
                os.kill(pid, signal.SIGKILL)


#: What a private Open vSwitch needs on the machine.
TOOLS = ("ovsdb-tool", "ovsdb-server", "ovs-vswitchd", "ovs-vsctl", "ovs-ofctl", "ovs-appctl")


def missing() -> str | None:
    """Why a private Open vSwitch cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root"
    for tool in TOOLS:
        if shutil.which(tool) is None:
            return f"needs {tool}"
    if ovs_schema() is None:
        return "needs the vswitch.ovsschema"
    return None


@contextlib.contextmanager
def running(factory: Callable[[Path], OvsSandbox], prefix: str) -> Iterator[OvsSandbox]:
    """A started sandbox in a fresh temporary directory, stopped and removed afterwards.
    Without the parts it needs, the calling test skips; under ``CI=true`` it fails."""
    import pytest

    why = missing()
    if why:
        if os.environ.get("CI") == "true":
            pytest.fail(f"real OVS test cannot run under CI: {why}")
        pytest.skip(why)
    root = Path(tempfile.mkdtemp(prefix=prefix))
    box = factory(root)
    try:
        box.start()
        yield box
    finally:
        box.stop()
        shutil.rmtree(root, ignore_errors=True)
