"""Ryu 4.34 smoke test: ``RYU_SCHED_FRAMEWORK=ryu ryu-sched-controller --config-file <conf>``.

Runs only where Ryu is installed (tox env ``ryu``; see the README, "Ryu 4.34 or os-ken").
Starts the real controller under Ryu's manager and checks: GET / (Neutron API), a
MessagePack-RPC ``ping`` and an agent registration that GET /v2.0/agents then lists (RPC,
registry, database), an OpenFlow 1.3 handshake with a minimal switch (Ryu's listener and
the app's switch handler), clean exit on SIGTERM. Also pins down why the launcher is
needed: plain ``ryu-manager`` either works (then the launcher is no longer needed) or fails
on eventlet's ALREADY_HANDLED, nothing else.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.controller import ControllerProcess, wait_until

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(importlib.util.find_spec("ryu") is None,
                       reason="Ryu not installed (tox -e ryu installs it)"),
]

ROOT = Path(__file__).resolve().parents[2]


def _env() -> dict[str, str]:
    # The checkout first, as in test_launch.py, so that the code under test is this tree.
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "RYU_SCHED_FRAMEWORK": "ryu", "PYTHONPATH": path,
            "PYTHONUNBUFFERED": "1"}


def _script(name: str) -> list[str] | None:
    script = Path(sys.executable).parent / name
    return [str(script)] if script.exists() else None


def _controller_cmd() -> list[str]:
    # The console script operators run; `python -m ryu_sched.launcher` is the same main().
    return _script("ryu-sched-controller") or [sys.executable, "-m", "ryu_sched.launcher"]


def _get(url: str) -> Any:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return json.loads(response.read())
    except OSError:
        return None


@pytest.fixture()
def ryu_controller(tmp_path: Path) -> Iterator[tuple[ControllerProcess, subprocess.Popen[bytes]]]:
    ctl = ControllerProcess(tmp_path)         # config on free ports; we launch it ourselves
    ctl.write_config()
    with open(ctl.log_path, "wb") as log:
        proc = subprocess.Popen([*_controller_cmd(), "--config-file", str(ctl.config_path)],
                                stdout=log, stderr=subprocess.STDOUT, env=_env(),
                                start_new_session=True)
    try:
        def answers() -> Any:
            assert proc.poll() is None, ctl.log_text()[-4000:]
            return _get(ctl.url + "/")

        wait_until(answers, 60, 0.1, "GET / under Ryu")
        yield ctl, proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _rpc(sock: socket.socket, unpacker: Any, msgid: int, method: str,
         params: list[Any]) -> Any:
    import msgpack

    sock.sendall(msgpack.packb([0, msgid, method, params]))
    while True:
        for frame in unpacker:
            if frame[0] == 1 and frame[1] == msgid:
                assert frame[2] is None, frame[2]
                return frame[3]
        data = sock.recv(65536)
        assert data, "RPC connection closed"
        unpacker.feed(data)


def _of_read(sock: socket.socket) -> tuple[int, int, int]:
    def exactly(n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = sock.recv(n - len(buf))
            assert chunk, "controller closed the OpenFlow connection"
            buf += chunk
        return buf

    version, msg_type, length, xid = struct.unpack("!BBHI", exactly(8))
    exactly(length - 8)
    return version, msg_type, xid


def test_ryu_controller_serves_api_rpc_and_openflow(ryu_controller: Any) -> None:
    import msgpack

    ctl, proc = ryu_controller
    body = _get(ctl.url + "/")
    assert body["versions"][0]["id"] == "v2.0"
    assert "ryu-sched started (framework ryu," in ctl.log_text()
    assert "os_ken" not in ctl.log_text()

    # Agent RPC: ping, then a DHCP agent registers and the API lists it.
    with socket.create_connection((ctl.host, ctl.rpc_port), timeout=10) as sock:
        unpacker = msgpack.Unpacker(raw=False)
        assert _rpc(sock, unpacker, 1, "ping", []) == "pong"
        state = {"agent_type": "DHCP agent", "host": "ryu-smoke", "binary": "smoke",
                 "topic": "dhcp_agent", "availability_zone": "nova", "start_flag": True,
                 "configurations": {}}
        result = _rpc(sock, unpacker, 2, "report_state", [state])
        assert result["status"] == "registered"
        agents = _get(ctl.url + "/v2.0/agents")["agents"]
        assert [(a["host"], a["alive"]) for a in agents] == [("ryu-smoke", True)]

    # OpenFlow 1.3: HELLO, FEATURES_REQUEST/REPLY, then the app reads the switch's ports.
    with socket.create_connection((ctl.of_host, ctl.of_port), timeout=10) as sw:
        sw.sendall(struct.pack("!BBHI", 4, 0, 8, 1))                          # HELLO
        seen = []
        while 18 not in seen:                                                  # MULTIPART
            version, msg_type, xid = _of_read(sw)
            assert version == 4
            seen.append(msg_type)
            if msg_type == 5:                                                  # FEATURES
                sw.sendall(struct.pack("!BBHIQIBB2xII", 4, 6, 32, xid, 0x5EED, 0, 254, 0,
                                       0, 0))
            elif msg_type == 2:                                                # ECHO
                sw.sendall(struct.pack("!BBHI", 4, 3, 8, xid))
        assert seen[:2] == [0, 5]
        wait_until(lambda: "switch 0000000000005eed connected" in ctl.log_text(), 10,
                   0.1, "the app's switch handler")

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(15) is not None
    assert "Traceback" not in ctl.log_text(), ctl.log_text()[-4000:]


def test_plain_ryu_manager_fails_only_on_already_handled(tmp_path: Path) -> None:
    """Why ``ryu-sched-controller`` exists (README): plain ``ryu-manager`` cannot start."""
    cmd = _script("ryu-manager") or [sys.executable, "-c",
                                     "from ryu.cmd.manager import main; main()"]
    ctl = ControllerProcess(tmp_path)
    ctl.write_config()
    proc = subprocess.Popen([*cmd, "ryu_sched.app", "--config-file", str(ctl.config_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=_env(),
                            start_new_session=True)
    try:
        try:
            out, _ = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            # It runs: then it must serve the app, and the launcher is no longer needed.
            assert wait_until(lambda: _get(ctl.url + "/"), 30, 0.1, "GET / via ryu-manager")
            pytest.fail("ryu-manager now starts ryu_sched.app: update the README and "
                        "the launcher (the ALREADY_HANDLED fix is no longer needed)")
        text = out.decode(errors="replace")
        assert proc.returncode != 0
        assert "ImportError: cannot import name 'ALREADY_HANDLED' from 'eventlet.wsgi'" in text
        assert "ryu_sched" not in text          # it fails before loading any app
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
