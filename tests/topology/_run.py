"""Running commands, polling with deadlines, checking the machine, and tracking processes.

Every process the topology starts carries the environment variable ``RYU_SCHED_TOPO=<prefix>``
(inherited by its children and kept by daemons that ``--detach``), which is how
:func:`tests.topology.leftovers` and the cleanup find the processes of one topology and nothing
else.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

MARKER_VAR = "RYU_SCHED_TOPO"

# /usr/sbin and /sbin are not on every PATH; the OVS daemons, ip, dnsmasq and dhclient live there.
_SBIN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

REQUIRED_TOOLS = (
    "ip",
    "ethtool",
    "ovsdb-tool",
    "ovsdb-server",
    "ovs-vswitchd",
    "ovs-vsctl",
    "ovs-ofctl",
    "ovs-appctl",
    "ping",
)

T = TypeVar("T")


class TopologyError(RuntimeError):
    """Building, driving or tearing down the topology failed."""


class CommandError(TopologyError):
    """A command exited non-zero (or ran past its deadline)."""

    def __init__(self, argv: Sequence[str], returncode: int | None, stdout: str, stderr: str):
        self.argv = list(argv)
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        status = "timed out" if returncode is None else f"exited {returncode}"
        super().__init__(
            f"{' '.join(self.argv)} {status}\nstdout: {stdout.strip()}\nstderr: {stderr.strip()}"
        )


def search_path() -> str:
    """PATH for child processes: the caller's PATH plus the sbin directories."""
    current = os.environ.get("PATH", "")
    return f"{current}:{_SBIN_PATH}" if current else _SBIN_PATH


def which(tool: str) -> str | None:
    return shutil.which(tool, path=search_path())


def child_env(prefix: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of every process the topology starts: marked with its prefix."""
    env = dict(os.environ)
    env["PATH"] = search_path()
    env[MARKER_VAR] = prefix
    if extra:
        env.update(extra)
    return env


def run(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    timeout: float = 30.0,
    check: bool = True,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command to completion with a deadline; raise :class:`CommandError` on failure."""
    try:
        proc = subprocess.run(
            list(argv),
            env=dict(env) if env is not None else {**os.environ, "PATH": search_path()},
            capture_output=True,
            text=True,
            timeout=timeout,
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as exc:
        raise CommandError(argv, None, _text(exc.stdout), _text(exc.stderr)) from exc
    if check and proc.returncode != 0:
        raise CommandError(argv, proc.returncode, proc.stdout, proc.stderr)
    return proc


def _text(data: bytes | str | None) -> str:
    if data is None:
        return ""
    return data.decode(errors="replace") if isinstance(data, bytes) else data


def wait_until(
    predicate: Callable[[], T],
    timeout: float = 10.0,
    interval: float = 0.05,
    message: str | None = None,
) -> T:
    """Poll ``predicate`` until it returns something truthy and return that value.

    Raises :class:`TimeoutError` (with ``message`` and the last exception, if any) when the
    deadline passes. Exceptions raised by the predicate count as "not yet".
    """
    deadline = time.monotonic() + timeout
    last_exc: BaseException | None = None
    while True:
        try:
            value = predicate()
        except Exception as exc:
            last_exc = exc
        else:
            if value:
                return value
        if time.monotonic() >= deadline:
            what = message or getattr(predicate, "__name__", repr(predicate))
            detail = f" (last error: {last_exc!r})" if last_exc is not None else ""
            raise TimeoutError(f"timed out after {timeout:.1f}s waiting for {what}{detail}")
        time.sleep(interval)


def require_root_and_ovs() -> None:
    """Skip the calling test when this machine cannot build a topology.

    Needs root, Open vSwitch (``ovsdb-server``, ``ovs-vswitchd`` and the clients), iproute2,
    ethtool, ping and ``/dev/net/tun``. With ``CI=true`` in the environment a missing
    requirement raises :class:`TopologyError` instead, so that CI fails rather than passing
    vacuously.
    """
    missing = missing_requirements()
    if not missing:
        return
    reason = "topology tests need " + ", ".join(missing)
    if os.environ.get("CI", "").lower() == "true":
        raise TopologyError(reason)
    import pytest

    pytest.skip(reason)


def missing_requirements(extra_tools: Iterable[str] = ()) -> list[str]:
    missing: list[str] = []
    if os.geteuid() != 0:
        missing.append("root")
    for tool in (*REQUIRED_TOOLS, *extra_tools):
        if which(tool) is None:
            missing.append(tool)
    if not os.path.exists("/dev/net/tun"):
        missing.append("/dev/net/tun")
    if ovs_schema() is None:
        missing.append("vswitch.ovsschema")
    return missing


def ovs_schema() -> Path | None:
    candidates = [
        os.environ.get("OVS_SCHEMA", ""),
        "/usr/share/openvswitch/vswitch.ovsschema",
        "/usr/local/share/openvswitch/vswitch.ovsschema",
    ]
    for candidate in candidates:
        if candidate and os.path.isfile(candidate):
            return Path(candidate)
    return None


# --- processes ----------------------------------------------------------------------------


def pid_alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            stat = fh.read()
    except (FileNotFoundError, ProcessLookupError):
        return False
    # The state follows the parenthesised command name, which may itself contain spaces.
    state = stat.rsplit(")", 1)[-1].split()[0]
    return state not in ("Z", "X")


def read_pidfile(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        return None
    return int(text) if text.isdigit() else None


def terminate_pid(pid: int, timeout: float = 5.0) -> None:
    """SIGTERM, wait until gone, then SIGKILL. Works for processes that are not our children.

    A SIGCONT follows the SIGTERM, so that a process a test froze (``Host.vanish``) handles
    it now instead of waiting for the SIGKILL."""
    if not pid_alive(pid):
        return
    try:
        os.kill(pid, signal.SIGTERM)
        os.kill(pid, signal.SIGCONT)
    except ProcessLookupError:
        return
    try:
        wait_until(lambda: not pid_alive(pid), timeout=timeout, interval=0.02)
        return
    except TimeoutError:
        pass
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    wait_until(lambda: not pid_alive(pid), timeout=5.0, interval=0.02)


def stop_popen(proc: subprocess.Popen[str] | subprocess.Popen[bytes], timeout: float = 5.0) -> None:
    """Stop a child we started (SIGTERM, then SIGKILL) and reap it."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5.0)


def marked_pids(prefix: str) -> list[int]:
    """Live processes whose environment carries ``RYU_SCHED_TOPO=<prefix>``."""
    needle = f"{MARKER_VAR}={prefix}".encode()
    found: list[int] = []
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        if pid == me:
            continue
        try:
            with open(f"/proc/{pid}/environ", "rb") as fh:
                environ = fh.read()
        except OSError:
            continue
        if needle in environ.split(b"\0") and pid_alive(pid):
            found.append(pid)
    return found


def pids_in_netns(inodes: Iterable[int]) -> list[int]:
    """Live processes whose network namespace is one of ``inodes``."""
    wanted = set(inodes)
    if not wanted:
        return []
    found: list[int] = []
    me = str(os.getpid())
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or entry == me:
            continue
        try:
            inode = os.stat(f"/proc/{entry}/ns/net").st_ino
        except OSError:
            continue
        if inode in wanted and pid_alive(int(entry)):
            found.append(int(entry))
    return found


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return "?"
