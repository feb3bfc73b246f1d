"""The alert rules and the Grafana dashboard shipped in etc/ name only metrics the controller
exports, and the alert rules are valid for Prometheus itself (promtool, when installed)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from ryu_sched.observability.metrics import EXPORTED, Metrics
from ryu_sched.observability.status import AgentStatus, Placement, Status, SwitchStatus

ETC = Path(__file__).resolve().parents[2] / "etc"
RULES = ETC / "prometheus" / "ryu-sched-alerts.yml"
DASHBOARD = ETC / "grafana" / "ryu-sched-dashboard.json"
NAME = re.compile(r"\bryu_sched_[a-z_]+\b")


def _rule_expressions() -> list[str]:
    text = RULES.read_text()
    exprs = []
    lines = text.splitlines()
    for i, line in enumerate(lines):
        stripped = line.strip()
        if not stripped.startswith("expr:"):
            continue
        value = stripped[len("expr:"):].strip()
        if value in (">-", "|", ">"):
            indent = len(line) - len(line.lstrip())
            block = []
            for follow in lines[i + 1:]:
                if follow.strip() and len(follow) - len(follow.lstrip()) <= indent:
                    break
                block.append(follow.strip())
            value = " ".join(block)
        exprs.append(value)
    return exprs


def _dashboard_expressions() -> list[str]:
    dash = json.loads(DASHBOARD.read_text())
    return [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]


@pytest.mark.parametrize("source", ["rules", "dashboard"])
def test_every_expression_names_only_exported_metrics(source):
    exprs = _rule_expressions() if source == "rules" else _dashboard_expressions()
    assert exprs, f"no expressions found in the {source}"
    for expr in exprs:
        names = set(NAME.findall(expr))
        assert names, f"{expr!r} names no ryu_sched metric"
        assert names <= EXPORTED, f"{expr!r} uses unknown metrics {sorted(names - EXPORTED)}"


def test_every_exported_name_appears_in_a_real_scrape():
    """EXPORTED is not a wish list: a scrape of a populated registry shows each name."""
    from prometheus_client import generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    status = Status(
        agents=(AgentStatus("a1", "L3 agent", "gw1", "nova", True, True, 0.5, 1),),
        placements=(Placement("router", "r1", ("a1",), 1, 1),),
        switches=(SwitchStatus("00000000000000aa", True, 42),), agent_down_time=15.0)
    metrics = Metrics(lambda: status)
    metrics.observe_api("GET", "networks", 200, 0.01)
    metrics.moved("router", "failover")
    metrics.failover_seconds.observe(0.7)
    metrics.sent_flow_mods(0xAA, 3)
    metrics.switch_sync_seconds.observe(0.05)
    metrics.packet_in("arp")
    scraped = {sample.name for family in text_string_to_metric_families(
        generate_latest(metrics.registry).decode()) for sample in family.samples}
    assert EXPORTED <= scraped, sorted(EXPORTED - scraped)


def test_promtool_accepts_the_alert_rules():
    promtool = shutil.which("promtool")
    if promtool is None:
        if os.environ.get("CI") == "true":
            pytest.fail("promtool is not installed (apt-get install prometheus)")
        pytest.skip("promtool not installed")
    result = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True,
                            text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
