"""The partitions of a switch's flows (flows/partitions.py) add up to its desired flows."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings

from ryu_sched.flows.context import SwitchView
from ryu_sched.flows.model import Snapshot
from ryu_sched.flows.partitions import all_partition_flows
from ryu_sched.flows.pipeline import desired_flows, unique_flows
from tests.unit.flows import test_flows_generative, test_flows_security_groups_generative
from tests.unit.flows.flows_testbed import make_snapshot


def same_as_desired(snapshot: Snapshot) -> None:
    for switch in snapshot.switches:
        parts = unique_flows(all_partition_flows(SwitchView(snapshot, switch.dpid)))
        assert parts == desired_flows(snapshot, switch.dpid), switch.dpid


def test_the_reference_cloud_with_routers_nat_and_floating_ips() -> None:
    same_as_desired(make_snapshot())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cloud=test_flows_security_groups_generative.clouds())
def test_random_security_groups(cloud: Snapshot) -> None:
    same_as_desired(cloud)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cloud=test_flows_generative.clouds())
def test_random_networks(cloud: Snapshot) -> None:
    same_as_desired(cloud)
