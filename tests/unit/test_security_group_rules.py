"""Rule requests: Neutron's checks and canonical shapes (pure), and that every IPv4 rule the
API accepts is one the flow compiler accepts."""

from __future__ import annotations

import random
from typing import Any

import pytest

from ryu_sched import errors
from ryu_sched.resources.port_filters import to_address_pairs
from ryu_sched.resources.security_group_rules import (
    SPEC,
    RuleShape,
    model_rule,
    normalize,
    to_port,
    to_prefix,
    to_protocol,
)

GROUP = "6f1c1f2e-0000-4000-8000-000000000001"


def rule(**attrs: Any) -> tuple[str | None, RuleShape]:
    return normalize({"direction": "ingress", **attrs})


def test_protocols_by_name_or_number_and_any() -> None:
    assert to_protocol("TCP", "protocol") == "tcp"
    assert to_protocol(6, "protocol") == "6"
    assert to_protocol("017", "protocol") == "17"
    assert to_protocol("any", "protocol") is None
    assert to_protocol(None, "protocol") is None
    for bad in ("foo", "256", -1, True, 1.5, "٦"):
        with pytest.raises(errors.SecurityGroupRuleInvalidProtocol):
            to_protocol(bad, "protocol")
    assert rule(protocol="tcp")[1] == rule(protocol="6")[1]
    assert rule(protocol="0")[1].protocol is None  # 0 is any, as for the flow compiler


def test_ports_prefixes_and_their_errors() -> None:
    assert to_port("22", "port_range_min") == 22
    for bad in (65536, -1, "x", True, 2.0):
        with pytest.raises(errors.SecurityGroupInvalidPortValue):
            to_port(bad, "port_range_min")
    assert to_prefix("10.1.2.3/8", "remote_ip_prefix") == "10.0.0.0/8"
    assert to_prefix("10.1.2.3", "remote_ip_prefix") == "10.1.2.3/32"
    assert to_prefix("", "remote_ip_prefix") is None
    for bad in ("10.0.0.0/33", "nonsense", 5):
        with pytest.raises(errors.InvalidCIDR):
            to_prefix(bad, "remote_ip_prefix")


@pytest.mark.parametrize(("attrs", "error"), [
    ({"remote_group_id": GROUP, "remote_ip_prefix": "10.0.0.0/8"},
     errors.SecurityGroupRemoteGroupAndRemoteIpPrefix),
    ({"port_range_min": 1, "port_range_max": 2}, errors.SecurityGroupProtocolRequiredWithPorts),
    ({"protocol": "tcp", "port_range_min": 2, "port_range_max": 1},
     errors.SecurityGroupInvalidPortRange),
    ({"protocol": "udp", "port_range_max": 1}, errors.SecurityGroupInvalidPortRange),
    ({"protocol": "tcp", "port_range_min": 0, "port_range_max": 0},
     errors.SecurityGroupInvalidPortValue),
    ({"protocol": "icmp", "port_range_min": 300}, errors.SecurityGroupInvalidIcmpValue),
    ({"protocol": "icmp", "port_range_min": 8, "port_range_max": 256},
     errors.SecurityGroupInvalidIcmpValue),
    ({"protocol": "icmp", "port_range_max": 0}, errors.SecurityGroupMissingIcmpType),
    ({"protocol": "sctp", "port_range_min": 1, "port_range_max": 1},
     errors.SecurityGroupInvalidProtocolForPortRange),
    ({"ethertype": "IPv6", "remote_ip_prefix": "10.0.0.0/8"},
     errors.SecurityGroupRuleParameterConflict),
    ({"remote_ip_prefix": "2001:db8::/32"}, errors.SecurityGroupRuleParameterConflict),
])
def test_invalid_combinations_are_refused_as_neutron_refuses_them(attrs, error) -> None:
    with pytest.raises(error):
        rule(**attrs)


def test_shapes_equate_what_means_the_same() -> None:
    assert rule(remote_ip_prefix="0.0.0.0/0")[1] == rule()[1]
    assert rule(protocol="udp", port_range_min=53, port_range_max=53)[1] != \
        rule(protocol="tcp", port_range_min=53, port_range_max=53)[1]
    stored, shape = rule(ethertype="IPv6", protocol="icmp")
    assert (stored, shape.protocol) == ("ipv6-icmp", 58)
    assert rule(ethertype="IPv6", protocol="1")[0] == "58"


def test_every_accepted_ipv4_rule_compiles() -> None:
    """Random requests: each is refused with a Neutron error or becomes a model rule."""
    rng = random.Random(13)
    protocols = [None, "tcp", "udp", "icmp", "6", "17", "1", "0", "gre", "sctp", "47", "any"]
    ports = [None, 0, 1, 22, 80, 255, 256, 1000, 65535]
    prefixes = [None, "0.0.0.0/0", "10.0.0.0/8", "192.0.2.7/32", "::/0"]
    accepted = 0
    for _ in range(3000):
        attrs: dict[str, Any] = {"direction": rng.choice(["ingress", "egress"]),
                                 "ethertype": "IPv4"}
        for key, choices in (("protocol", protocols), ("port_range_min", ports),
                             ("port_range_max", ports), ("remote_ip_prefix", prefixes)):
            value = rng.choice(choices)
            if value is not None:
                attrs[key] = SPEC[key].convert(value, key)
        if rng.random() < 0.2:
            attrs["remote_group_id"] = GROUP
        try:
            _stored, shape = normalize(attrs)
        except errors.BadRequest:
            continue
        model_rule(shape, "r")  # must not raise
        accepted += 1
    assert accepted > 300


def test_address_pairs() -> None:
    assert to_address_pairs(None, "allowed_address_pairs") == []
    assert to_address_pairs([{"ip_address": "10.0.0.5"},
                             {"ip_address": "10.9.0.0/24", "mac_address": "FA:16:3E:00:00:01"}],
                            "allowed_address_pairs") == [
        ("10.0.0.5", None), ("10.9.0.0/24", "fa:16:3e:00:00:01")]
    for bad in ([{"ip_address": "10.9.0.1/24"}], [{"ip_address": "x"}], [{}], ["10.0.0.5"],
                [{"ip_address": "10.0.0.5", "mac_address": "01:00:00:00:00:00"}],
                [{"ip_address": "10.0.0.5", "foo": 1}], "10.0.0.5"):
        with pytest.raises(errors.HTTPBadRequest):
            to_address_pairs(bad, "allowed_address_pairs")
    with pytest.raises(errors.DuplicateAddressPairInRequest):
        to_address_pairs([{"ip_address": "10.0.0.5"}] * 2, "allowed_address_pairs")
    with pytest.raises(errors.AllowedAddressPairExhausted):
        to_address_pairs([{"ip_address": f"10.0.0.{i}"} for i in range(11)],
                         "allowed_address_pairs")
