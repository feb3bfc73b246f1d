"""``osken-manager ryu_sched.app --config-file <file>`` starts, answers GET /, stops on SIGTERM."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import urllib.request
from pathlib import Path

import pytest

from tests.support.controller import ControllerProcess, wait_until

pytestmark = pytest.mark.integration


@pytest.mark.skipif(shutil.which("osken-manager") is None, reason="os-ken not installed")
def test_osken_manager_launches_the_app(tmp_path: Path) -> None:
    config = ControllerProcess(tmp_path)      # only used to write a config on free ports
    config.write_config()
    log = open(tmp_path / "manager.log", "wb")
    # The checkout on the path too, so that top-level packages added since the last
    # `pip install -e .` (flows/, agents/) import as they will from a fresh install.
    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (root, os.environ.get("PYTHONPATH", "")) if p)}
    proc = subprocess.Popen(["osken-manager", "ryu_sched.app", "--config-file",
                             str(config.config_path)], stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True, env=env)
    log.close()
    try:
        def answers() -> dict | None:
            assert proc.poll() is None, (tmp_path / "manager.log").read_text()
            try:
                with urllib.request.urlopen(config.url + "/", timeout=1) as response:
                    return json.loads(response.read())
            except OSError:
                return None

        body = wait_until(answers, 30, 0.1, "GET /")
        assert body["versions"][0]["id"] == "v2.0"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) is not None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
