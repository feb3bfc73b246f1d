"""The programmer against a real Open vSwitch 3.x: canonical forms of desired flows and of the
flow stats the switch reports are equal exactly when the flows are; changes arrive as atomic
bundles; a reconnect sends nothing; a flow the switch rejects is reported and the rest is
installed.

A private ovsdb-server and ovs-vswitchd (``tests/support/ovs_sandbox.py``, dummy ports, no
kernel devices); the programmer talks OpenFlow 1.3 to the bridge's management socket through
:class:`OpenFlowChannel`, with the framework's own message classes. Needs root and OVS:
skipped without them, except under CI=true where their absence is a failure.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from ryu_sched.flows.model import Snapshot
from ryu_sched.flows.partitions import BASE, PartitionId
from ryu_sched.flows.pipeline import desired_flows
from ryu_sched.flows.spec import FlowSpec, Match, Output, SetField
from ryu_sched.programmer import canonical, diff, readback
from ryu_sched.programmer import desired as desired_module
from ryu_sched.programmer.programmer import Programmer
from ryu_sched.programmer.send import send_changes
from tests.support import ovs_sandbox
from tests.unit.flows.flows_testbed import make_snapshot, make_two_router_snapshot
from tests.unit.flows.sg_testbed import make_local_fip_snapshot, make_secured_snapshot
from tests.unit.programmer.ofchannel import BundleAdd, OpenFlowChannel, ofp, parser
from tests.unit.programmer.programmer_testbed import (
    SWITCH1,
    flow_stats,
    make_services,
    seed,
    stats_form,
)

SNAPSHOTS = {"one router": make_snapshot(), "two routers": make_two_router_snapshot(),
             "security groups": make_secured_snapshot(),
             "firewall and floating IP on one switch": make_local_fip_snapshot()}
CASES = [(name, dpid) for name, snap in SNAPSHOTS.items() for dpid in (1, 2, 3)
         if snap.switch(dpid) is not None]



class Sandbox(ovs_sandbox.OvsSandbox):
    @contextmanager
    def bridge(self, dpid: int, ports: dict[str, int], name: str = "br-prog"
               ) -> Iterator[Path]:
        """A secure-mode OpenFlow 1.3 bridge with dummy ``ports``; yields the path of its
        management socket."""
        args = ["add-br", name, "--", "set", "bridge", name, "datapath_type=netdev",
                "protocols=OpenFlow13", "fail_mode=secure",
                f"other-config:datapath-id={dpid:016x}"]
        for port, ofport in sorted(ports.items()):
            args += ["--", "add-port", name, port, "--", "set", "interface", port,
                     "type=dummy", f"ofport_request={ofport}"]
        self.vsctl(*args)
        try:
            yield self.root / f"{name}.mgmt"
        finally:
            self.vsctl("--if-exists", "del-br", name)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with ovs_sandbox.running(Sandbox, "prog-ovs-") as box:
        yield box


@contextmanager
def channel_to(path: Path, dpid: int) -> Iterator[OpenFlowChannel]:
    channel = OpenFlowChannel(path, dpid)
    try:
        yield channel
    finally:
        channel.close()


def forms(flows: list[FlowSpec]) -> dict[canonical.FlowKey, tuple[canonical.Body, int]]:
    result = {}
    for spec in flows:
        key, body = canonical.of_spec(spec)
        result[key] = (body, spec.cookie)
    return result


def installed_forms(entries: list[readback.Entry],
                    ) -> dict[canonical.FlowKey, tuple[canonical.Body, int]]:
    result = {}
    for entry in entries:
        result[entry.key] = (entry.body, entry.cookie)
    return result


# --- canonical forms ---------------------------------------------------------------------

@pytest.mark.parametrize("name, dpid", CASES)
def test_desired_and_installed_forms_are_equal_when_we_install_them(
        sandbox: Sandbox, name: str, dpid: int) -> None:
    snapshot: Snapshot = SNAPSHOTS[name]
    switch = snapshot.switch(dpid)
    assert switch is not None
    flows = desired_flows(snapshot, dpid)
    with sandbox.bridge(dpid, dict(switch.ports)) as mgmt, channel_to(mgmt, dpid) as channel:
        changes = diff.diff({}, diff.wanted_of(flows))
        send_changes(channel, changes, iter(range(1, 100)).__next__)
        assert channel.barrier() == []
        entries = channel.flow_stats()
    assert len(entries) == len(flows)
    assert installed_forms(entries) == forms(flows)


@pytest.mark.parametrize("name, dpid", CASES)
def test_desired_and_installed_forms_are_equal_when_ovs_ofctl_installs_them(
        sandbox: Sandbox, name: str, dpid: int) -> None:
    """An independent encoder (ovs-ofctl parses ``FlowSpec.to_ofctl()``) gives the same forms:
    they describe the flows, not our way of sending them."""
    snapshot = SNAPSHOTS[name]
    switch = snapshot.switch(dpid)
    assert switch is not None
    flows = desired_flows(snapshot, dpid)
    with sandbox.bridge(dpid, dict(switch.ports)) as mgmt:
        path = sandbox.root / "flows.txt"
        path.write_text("".join(f.to_ofctl() + "\n" for f in flows))
        sandbox.run("ovs-ofctl", "-O", "OpenFlow13", "add-flows", "br-prog", str(path))
        with channel_to(mgmt, dpid) as channel:
            entries = channel.flow_stats()
    assert installed_forms(entries) == forms(flows)


def test_a_flow_that_differs_on_the_switch_has_another_form(sandbox: Sandbox) -> None:
    snapshot = SNAPSHOTS["one router"]
    switch = snapshot.switch(1)
    assert switch is not None
    flows = desired_flows(snapshot, 1)
    target = next(f for f in flows if f.table == 60 and any(
        isinstance(a, Output) and isinstance(a.port, int) for a in f.actions))
    with sandbox.bridge(1, dict(switch.ports)) as mgmt, channel_to(mgmt, 1) as channel:
        send_changes(channel, diff.diff({}, diff.wanted_of(flows)), iter(range(1, 9)).__next__)
        assert channel.barrier() == []
        sandbox.run("ovs-ofctl", "-O", "OpenFlow13", "--strict", "mod-flows", "br-prog",
                    f"table=60,priority={target.priority},{target.match.to_ofctl()},"
                    "actions=output:99")
        got = installed_forms(channel.flow_stats())
    want = forms(flows)
    key = canonical.spec_key(target)
    assert got[key] != want[key]
    assert {k: v for k, v in got.items() if k != key} == {
        k: v for k, v in want.items() if k != key}


# --- the programmer on a real switch ----------------------------------------------------

@pytest.fixture
def programmer() -> Iterator[tuple[Programmer, dict[str, int]]]:
    services = make_services()
    cloud = seed(services.db)
    prog = Programmer(services)
    prog.neighbors.load()
    prog.pause = lambda: None
    yield prog, cloud.ports_of[SWITCH1]


def connect(prog: Programmer, channel: OpenFlowChannel) -> None:
    """The connect handshake, one sync, and the switch's answers to what it was sent."""
    prog.switch_connected(channel)
    channel.pump(prog)  # port descriptions, then the flow table
    sent_before = len(channel.sent)
    prog.sync_dirty()
    if any(isinstance(m, parser.OFPBarrierRequest) for m in channel.sent[sent_before:]):
        channel.pump(prog, until_barrier=channel.last_barrier())


def flow_messages(channel: OpenFlowChannel) -> list[Any]:
    return [m for m in channel.sent
            if isinstance(m, parser.OFPFlowMod | BundleAdd)]


def test_the_programmer_fills_a_real_switch_in_one_bundle_and_a_reconnect_sends_nothing(
        sandbox: Sandbox, programmer: tuple[Programmer, dict[str, int]]) -> None:
    prog, ports = programmer
    with sandbox.bridge(SWITCH1, ports) as mgmt:
        with channel_to(mgmt, SWITCH1) as first:
            connect(prog, first)
            assert first.errors == []
            bundled = [m for m in first.sent if isinstance(m, BundleAdd)]
            commits = [m for m in first.sent if isinstance(m, parser.ONFBundleCtrlMsg)
                       and m.type == ofp.ONF_BCT_COMMIT_REQUEST]
            desired = prog.desired_table(SWITCH1, prog.snapshot()).specs
            assert len(bundled) == len(desired) > 20 and len(commits) == 1
            assert installed_forms(first.flow_stats()) == forms(list(desired))
        prog.switch_disconnected(first)
        with channel_to(mgmt, SWITCH1) as second:  # the switch reconnects
            connect(prog, second)
            assert flow_messages(second) == []
            assert installed_forms(second.flow_stats()) == forms(list(desired))


def test_a_flow_the_switch_rejects_is_reported_and_the_others_are_installed(
        sandbox: Sandbox, programmer: tuple[Programmer, dict[str, int]],
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    prog, ports = programmer
    # set_field ipv4_src without a match on IPv4: a FlowSpec, but Open vSwitch refuses it
    bad = FlowSpec(60, 7, Match(eth_dst="fa:16:3e:00:00:99"),
                   (SetField("ipv4_src", "192.0.2.1"), Output(1)), cookie=0x0300000000000099)

    real = desired_module.partition_flows

    def with_bad_flow(view: Any, part: PartitionId, firewall: Any) -> list[FlowSpec]:
        flows = real(view, part, firewall)
        return [*flows, bad] if part == BASE else flows

    monkeypatch.setattr(desired_module, "partition_flows", with_bad_flow)
    caplog.set_level("INFO", logger="ryu_sched.programmer.programmer")
    with sandbox.bridge(SWITCH1, ports) as mgmt, channel_to(mgmt, SWITCH1) as channel:
        connect(prog, channel)
        assert [(e.type, e.code) for e in channel.errors] == [
            (ofp.OFPET_BAD_ACTION, ofp.OFPBAC_MATCH_INCONSISTENT)]
        rejected = [r.getMessage() for r in caplog.records if "rejected" in r.getMessage()]
        assert len(rejected) == 1 and "set_field:192.0.2.1->nw_src" in rejected[0]
        good = desired_flows(prog.snapshot(), SWITCH1)
        assert installed_forms(channel.flow_stats()) == forms(good)
        # the programmer knows the flow is missing: the next sync tries it again, alone
        before = len(channel.sent)
        prog.mark_all_dirty()
        prog.sync_dirty()
        retried = [m for m in channel.sent[before:] if isinstance(m, parser.OFPFlowMod)]
        assert [stats_form(flow_stats(m))[0] for m in retried] == [
            canonical.spec_key(bad)]
        assert channel.barrier() != []


def test_security_groups_from_the_database_on_a_real_switch_and_a_reconnect_sends_nothing(
        sandbox: Sandbox, programmer: tuple[Programmer, dict[str, int]]) -> None:
    """Groups made through the service layer (every kind of rule: remote group, prefix, tcp
    range as masked blocks, icmp type and code, udp, any protocol), ports joined to them and
    an address pair: the switch reports exactly the desired forms, conjunctions and ct marks
    included, and a reconnect sends nothing."""
    from ryu_sched.db import models as db
    from ryu_sched.resources import admin_context, ports
    from ryu_sched.resources import security_group_rules as rules
    from ryu_sched.resources import security_groups as groups

    prog, switch_ports = programmer
    services, ctx = prog.services, admin_context("tenant-a")
    web = groups.create_security_group(services, ctx, {"name": "web"})
    for attrs in ({"protocol": "tcp", "port_range_min": 1000, "port_range_max": 1999},
                  {"protocol": "udp", "port_range_min": 53, "port_range_max": 53,
                   "remote_ip_prefix": "198.51.100.0/24"},
                  {"protocol": "icmp", "port_range_min": 8, "port_range_max": 0},
                  {"protocol": "112", "remote_group_id": web["id"]},
                  {"direction": "egress", "protocol": "tcp", "port_range_min": 443,
                   "port_range_max": 443, "remote_group_id": web["id"]}):
        rules.create_security_group_rule(services, ctx, {
            "security_group_id": web["id"], "direction": "ingress", **attrs})
    with services.db.session() as session:
        local, remote = (session.scalars(select(db.Port).where(
            db.Port.mac_address == mac)).one().id
            for mac in ("fa:16:3e:00:00:11", "fa:16:3e:00:00:12"))
    for port_id in (local, remote):
        ports.update_port(services, ctx, port_id, {
            "security_groups": [web["id"]],
            "allowed_address_pairs": [{"ip_address": "10.0.0.128/25"}]})
    with sandbox.bridge(SWITCH1, switch_ports) as mgmt:
        with channel_to(mgmt, SWITCH1) as first:
            connect(prog, first)
            assert first.errors == []
            desired = list(prog.desired_table(SWITCH1, prog.snapshot()).specs)
            assert any(f.conjunctions for f in desired)
            assert any("conj_id" in f.match for f in desired)
            assert installed_forms(first.flow_stats()) == forms(desired)
        prog.switch_disconnected(first)
        with channel_to(mgmt, SWITCH1) as second:
            connect(prog, second)
            assert flow_messages(second) == []
