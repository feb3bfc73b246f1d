"""Start the real controller process for integration tests and talk to it.

``ControllerProcess`` writes a config file, launches ``python -m ryu_sched.launcher`` (the
same manager as ``osken-manager ryu_sched.app``) on free ports and waits, by polling the API
with a deadline, until it answers.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_until(predicate: Callable[[], Any], timeout: float, interval: float = 0.05,
               message: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


class ControllerProcess:
    def __init__(self, workdir: Path, options: dict[str, Any] | None = None,
                 host: str = "127.0.0.1", of_host: str = "127.0.0.1",
                 tokens: dict[str, dict[str, str]] | None = None,
                 nofile: int | None = None,
                 sections: dict[str, dict[str, Any]] | None = None) -> None:
        """``nofile``: the process's file descriptor limit (RLIMIT_NOFILE), as a small
        machine or a careless unit file would set it. ``sections``: other configuration
        groups than [ryu_sched], e.g. ``{"quotas": {"quota_network": 2}}``."""
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.host = host
        self.of_host = of_host
        self.api_port = free_port(host)
        self.rpc_port = free_port(host)
        self.metrics_port = free_port(host)
        self.of_port = free_port(of_host)
        self.options = dict(options or {})
        self.tokens = tokens
        self.nofile = nofile
        self.sections = dict(sections or {})
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = self.workdir / "controller.log"
        self.config_path = self.workdir / "ryu_sched.conf"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.api_port}"

    @property
    def metrics_url(self) -> str:
        return f"http://{self.host}:{self.metrics_port}/metrics"

    def write_config(self) -> None:
        group: dict[str, Any] = {
            "state_path": str(self.workdir / "state"),
            "api_host": self.host, "api_port": self.api_port,
            "rpc_host": self.host, "rpc_port": self.rpc_port,
            "metrics_host": self.host, "metrics_port": self.metrics_port,
        }
        if self.tokens is not None:
            token_file = self.workdir / "tokens.json"
            token_file.write_text(json.dumps(self.tokens))
            group["auth_strategy"] = "token"
            group["token_file"] = str(token_file)
        group.update(self.options)
        lines = ["[DEFAULT]", f"ofp_listen_host = {self.of_host}",
                 f"ofp_tcp_listen_port = {self.of_port}"]
        for name, options in {"ryu_sched": group, **self.sections}.items():
            lines += ["", f"[{name}]"]
            for key, value in options.items():
                if isinstance(value, bool):
                    value = "true" if value else "false"
                elif isinstance(value, list | tuple):
                    value = ",".join(str(v) for v in value)
                lines.append(f"{key} = {value}")
        self.config_path.write_text("\n".join(lines) + "\n")

    def start(self, timeout: float = 30.0) -> None:
        self.write_config()
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ryu_sched.launcher", "--config-file",
             str(self.config_path)],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"}, preexec_fn=self._limits)
        log.close()
        wait_until(self._answers, timeout, 0.1, f"controller API at {self.url}")

    def _limits(self) -> None:
        if self.nofile is not None:
            _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
            resource.setrlimit(resource.RLIMIT_NOFILE, (self.nofile, hard))

    def _answers(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"controller exited with {self.proc.returncode}:\n"
                               + self.log_text()[-4000:])
        try:
            with urllib.request.urlopen(self.url + "/", timeout=1) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def request(self, method: str, path: str, body: Any = None, token: str | None = None,
                raw: bytes | None = None, headers: dict[str, str] | None = None,
                timeout: float = 10.0) -> tuple[int, Any]:
        """Raw HTTP (for what openstacksdk would not send): ``(status, parsed JSON or None)``."""
        data = raw if raw is not None else (
            json.dumps(body).encode() if body is not None else None)
        headers = {"Content-Type": "application/json", "Accept": "application/json",
                   **(headers or {})}
        if token is not None:
            headers["X-Auth-Token"] = token
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as response:
                status, payload = response.status, response.read()
        except urllib.error.HTTPError as exc:
            status, payload = exc.code, exc.read()
        return status, (json.loads(payload) if payload else None)

    def sdk(self, token: str | None = None) -> Any:
        """An openstacksdk Connection to this controller (no Keystone)."""
        import openstack

        if token is None:
            return openstack.connect(auth_type="none", auth={"endpoint": self.url},
                                     network_endpoint_override=self.url)
        return openstack.connect(auth_type="admin_token",
                                 auth={"endpoint": self.url, "token": token},
                                 network_endpoint_override=self.url)

    def __enter__(self) -> ControllerProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
