"""docs/pipeline.md stays true: every example flow in it is emitted by the code."""

from __future__ import annotations

import re
from pathlib import Path

from flows_testbed import make_snapshot
from sg_testbed import make_secured_snapshot

from ryu_sched.flows.pipeline import desired_flows
from ryu_sched.flows.tables import Table

DOC = Path(__file__).resolve().parents[3] / "docs" / "pipeline.md"


def doc_examples() -> list[str]:
    lines, inside = [], False
    for line in DOC.read_text().splitlines():
        if line.startswith("```"):
            inside = not inside
        elif inside and line.startswith("table="):
            lines.append(line.strip())
    return lines


def emitted() -> set[str]:
    """What the test bed emits, without and with security groups."""
    return {re.sub(r"^cookie=0x[0-9a-f]+,", "", f.to_ofctl())
            for snap in (make_snapshot(), make_secured_snapshot())
            for dpid in (1, 2, 3) for f in desired_flows(snap, dpid)}


def test_every_example_flow_in_the_pipeline_doc_is_emitted_by_the_code():
    examples = doc_examples()
    assert len(examples) > 20
    missing = [line for line in examples if line not in emitted()]
    assert not missing, "docs/pipeline.md shows flows the code does not emit:\n" + "\n".join(
        missing)


def test_every_table_is_documented():
    text = DOC.read_text()
    for table in Table:
        assert f"### Table {int(table)}: {table.name}" in text
