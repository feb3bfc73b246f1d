"""What the programmer reports to the metrics: flow-mods per switch, switch syncs, packet-ins,
and the switch table the status snapshot reads (connected once programmed, desired flows)."""

from __future__ import annotations

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from ryu_sched.observability.collect import build_status
from ryu_sched.observability.metrics import Metrics
from ryu_sched.programmer import packets
from ryu_sched.programmer.programmer import Programmer
from tests.unit.programmer.programmer_testbed import (
    SWITCH1,
    FakeDatapath,
    make_services,
    port_desc,
    seed,
)


def samples(metrics: Metrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = generate_latest(metrics.registry).decode()
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_a_switch_sync_counts_its_flow_mods_and_its_duration():
    services = make_services()
    metrics = Metrics(lambda: build_status(services))
    services.metrics = metrics
    cloud = seed(services.db)
    programmer = Programmer(services)
    services.programmer = programmer
    programmer.neighbors.load()
    datapath = FakeDatapath(SWITCH1)
    programmer.switch_connected(datapath)
    programmer.port_desc_reply(datapath, port_desc(cloud.ports_of[SWITCH1]), more=False)
    programmer.flow_stats_reply(datapath, [], more=False)
    (switch,) = build_status(services).switches
    assert not switch.connected                          # read, not yet programmed
    programmer.sync_dirty()
    sent = len(datapath.flow_mods())
    assert sent > 0
    dpid = f"{SWITCH1:016x}"
    scraped = samples(metrics)
    assert scraped[("ryu_sched_flow_mods_total", frozenset({("dpid", dpid)}))] == sent
    assert scraped[("ryu_sched_switch_sync_seconds_count", frozenset())] == 1
    assert scraped[("ryu_sched_switch_connected", frozenset({("dpid", dpid)}))] == 1
    assert scraped[("ryu_sched_switch_flows", frozenset({("dpid", dpid)}))] == sent
    programmer.packet_in(datapath, b"\x00" * 20)
    programmer.packet_in(datapath, packets.arp_request("02:00:00:00:00:01", "10.0.0.1",
                                                       "10.0.0.2"))
    scraped = samples(metrics)
    assert scraped[("ryu_sched_packet_ins_total", frozenset({("reason", "other")}))] == 1
    assert scraped[("ryu_sched_packet_ins_total", frozenset({("reason", "arp")}))] == 1
