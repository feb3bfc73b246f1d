"""Security groups, rules, ports' groups and allowed address pairs against the real
controller: through openstacksdk, raw HTTP for what the SDK would not send, the unmodified
``openstack`` CLI, and token mode (a project sees and manages only its own groups)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from typing import Any

import openstack.exceptions as sdk_exc
import pytest

from tests.support.controller import ControllerProcess

pytestmark = pytest.mark.integration

TOKENS = {"admin-tok": {"project_id": "ops", "role": "admin"},
          "alice-tok": {"project_id": "alice", "role": "member"},
          "bob-tok": {"project_id": "bob", "role": "member"}}
RULES = "/v2.0/security-group-rules"


@pytest.fixture(scope="module")
def ctl(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControllerProcess]:
    with ControllerProcess(tmp_path_factory.mktemp("secgroups"), tokens=TOKENS) as proc:
        yield proc


@pytest.fixture(scope="module")
def alice(ctl: ControllerProcess) -> Any:
    return ctl.sdk("alice-tok")


@pytest.fixture(scope="module")
def network(alice: Any) -> Any:
    net = alice.network.create_network(name="sg-net")
    alice.network.create_subnet(network_id=net.id, cidr="10.0.0.0/24", ip_version=4)
    return net


def error_of(ctl: ControllerProcess, method: str, path: str, body: Any = None,
             token: str = "alice-tok") -> tuple[int, str | None]:
    status, payload = ctl.request(method, path, body, token=token)
    return status, (payload or {}).get("NeutronError", {}).get("type")


def rule_body(group_id: str, **attrs: Any) -> dict[str, Any]:
    return {"security_group_rule": {"security_group_id": group_id, "direction": "ingress",
                                    **attrs}}


def shape(rule: Any) -> tuple[Any, ...]:
    rule = rule if isinstance(rule, dict) else rule.to_dict(computed=False)
    return (rule["direction"], rule.get("ethertype", rule.get("ether_type")), rule["protocol"],
            rule["remote_ip_prefix"], rule["remote_group_id"])


def test_first_list_makes_the_projects_default_group_with_neutrons_rules(ctl, alice):
    groups = list(alice.network.security_groups())
    assert [g.name for g in groups] == ["default"]
    default = groups[0]
    assert default.project_id == "alice" and default.stateful
    assert sorted(shape(r) for r in default.security_group_rules) == [
        ("egress", "IPv4", None, None, None), ("egress", "IPv6", None, None, None),
        ("ingress", "IPv4", None, None, default.id),
        ("ingress", "IPv6", None, None, default.id)]
    # Once only; its rules are listed with the others.
    assert [g.id for g in alice.network.security_groups()] == [default.id]
    rules = list(alice.network.security_group_rules(security_group_id=default.id))
    assert len(rules) == 4
    # The default group cannot be renamed, deleted by a member, or made twice.
    assert error_of(ctl, "PUT", f"/v2.0/security-groups/{default.id}",
                    {"security_group": {"name": "x"}}) == (
        409, "SecurityGroupCannotUpdateDefault")
    assert error_of(ctl, "DELETE", f"/v2.0/security-groups/{default.id}") == (
        409, "SecurityGroupCannotRemoveDefault")
    assert error_of(ctl, "POST", "/v2.0/security-groups",
                    {"security_group": {"name": "default"}}) == (
        409, "SecurityGroupDefaultAlreadyExists")


def test_a_port_gets_the_default_group_unless_it_names_groups(ctl, alice, network):
    default = alice.network.find_security_group("default", project_id="alice")
    web = alice.network.create_security_group(name="web", description="front")
    assert sorted(shape(r) for r in web.security_group_rules) == [
        ("egress", "IPv4", None, None, None), ("egress", "IPv6", None, None, None)]
    port = alice.network.create_port(network_id=network.id)
    assert port.security_group_ids == [default.id]
    named = alice.network.create_port(network_id=network.id, security_group_ids=[web.id])
    assert named.security_group_ids == [web.id]
    none = alice.network.create_port(network_id=network.id, security_group_ids=[])
    assert none.security_group_ids == []
    updated = alice.network.update_port(port, security_group_ids=[web.id, default.id])
    assert sorted(updated.security_group_ids) == sorted([web.id, default.id])
    assert {p.id for p in alice.network.ports(security_groups=web.id)} == {port.id, named.id}
    # In use: 409; free again: deleted.
    assert error_of(ctl, "DELETE", f"/v2.0/security-groups/{web.id}") == (
        409, "SecurityGroupInUse")
    for p in (port, named, none):
        alice.network.delete_port(p)
    alice.network.delete_security_group(web)
    with pytest.raises(sdk_exc.NotFoundException):
        alice.network.get_security_group(web.id)
    unknown = "6f1c1f2e-0000-4000-8000-00000000dead"
    assert error_of(ctl, "POST", "/v2.0/ports", {"port": {
        "network_id": network.id, "security_groups": [unknown]}}) == (
        404, "SecurityGroupNotFound")
    assert error_of(ctl, "POST", "/v2.0/ports", {"port": {
        "network_id": network.id, "security_groups": ["web"]}})[0] == 400


def test_ports_without_port_security_carry_no_groups_or_pairs(ctl, alice, network):
    plain = alice.network.create_port(network_id=network.id, port_security_enabled=False)
    assert plain.security_group_ids == [] and plain.allowed_address_pairs == []
    default = alice.network.find_security_group("default", project_id="alice")
    path = f"/v2.0/ports/{plain.id}"
    assert error_of(ctl, "PUT", path, {"port": {"security_groups": [default.id]}}) == (
        400, "PortSecurityAndIPRequiredForSecurityGroups")
    assert error_of(ctl, "POST", "/v2.0/ports", {"port": {
        "network_id": network.id, "port_security_enabled": False,
        "security_groups": [default.id]}}) == (400, "PortSecurityAndIPRequiredForSecurityGroups")
    assert error_of(ctl, "PUT", path, {"port": {"allowed_address_pairs": [
        {"ip_address": "10.0.0.50"}]}}) == (409, "AddressPairAndPortSecurityRequired")
    # Turning port security back on gives it the default group.
    back = alice.network.update_port(plain, is_port_security_enabled=True)
    assert back.security_group_ids == [default.id]
    # Turning it off while groups stay is refused; with the groups cleared it works.
    assert error_of(ctl, "PUT", path, {"port": {"port_security_enabled": False}}) == (
        409, "PortSecurityPortHasSecurityGroup")
    off = alice.network.update_port(plain, is_port_security_enabled=False,
                                    security_group_ids=[])
    assert not off.is_port_security_enabled and off.security_group_ids == []
    alice.network.delete_port(plain)


def test_allowed_address_pairs(ctl, alice, network):
    port = alice.network.create_port(network_id=network.id, allowed_address_pairs=[
        {"ip_address": "10.0.0.100"},
        {"ip_address": "10.9.0.0/24", "mac_address": "FA:16:3E:00:99:99"}])
    assert port.allowed_address_pairs == [
        {"ip_address": "10.0.0.100", "mac_address": port.mac_address},
        {"ip_address": "10.9.0.0/24", "mac_address": "fa:16:3e:00:99:99"}]
    path = f"/v2.0/ports/{port.id}"
    for pairs, expected in (
            ([{"ip_address": "10.0.0.1/24"}], (400, "HTTPBadRequest")),      # host bits
            ([{"ip_address": "nonsense"}], (400, "HTTPBadRequest")),
            ([{"mac_address": "fa:16:3e:00:00:01"}], (400, "HTTPBadRequest")),
            ([{"ip_address": "10.0.0.5", "mac_address": "zz"}], (400, "HTTPBadRequest")),
            ([{"ip_address": "10.0.0.5", "extra": 1}], (400, "HTTPBadRequest")),
            ([{"ip_address": "10.0.0.5"}] * 2, (400, "DuplicateAddressPairInRequest")),
            ([{"ip_address": f"10.0.1.{i}"} for i in range(11)],
             (400, "AllowedAddressPairExhausted"))):
        assert error_of(ctl, "PUT", path, {"port": {"allowed_address_pairs": pairs}}) == \
            expected, pairs
    cleared = alice.network.update_port(port, allowed_address_pairs=[])
    assert cleared.allowed_address_pairs == []
    alice.network.delete_port(port)


def test_rules_protocols_ranges_and_errors(ctl, alice):
    group = alice.network.create_security_group(name="rules")
    rule = alice.network.create_security_group_rule(
        security_group_id=group.id, direction="ingress", protocol="TCP",
        port_range_min=8080, port_range_max=8080, remote_ip_prefix="0.0.0.0/0",
        description="web")
    assert (rule.protocol, rule.ether_type, rule.remote_ip_prefix, rule.description) == (
        "tcp", "IPv4", "0.0.0.0/0", "web")
    assert rule.project_id == "alice"
    by_number = alice.network.create_security_group_rule(
        security_group_id=group.id, direction="ingress", protocol="17",
        port_range_min=5000, port_range_max=5003, remote_ip_prefix="198.51.100.7/24")
    assert (by_number.protocol, by_number.remote_ip_prefix) == ("17", "198.51.100.0/24")
    icmp = alice.network.create_security_group_rule(
        security_group_id=group.id, direction="ingress", protocol="icmp",
        port_range_min=8, port_range_max=0, remote_group_id=group.id)
    assert (icmp.port_range_min, icmp.port_range_max, icmp.remote_group_id) == (8, 0, group.id)
    v6 = alice.network.create_security_group_rule(
        security_group_id=group.id, direction="ingress", ether_type="ipv6", protocol="icmp")
    assert (v6.ether_type, v6.protocol) == ("IPv6", "ipv6-icmp")
    gid = group.id
    cases = [
        # the same rule again, spelt differently (number for name, no prefix for /0)
        (rule_body(gid, protocol="6", port_range_min=8080, port_range_max=8080), 409,
         "SecurityGroupRuleExists"),
        (rule_body(gid, protocol="udp", port_range_min=5000, port_range_max=5003,
                   remote_ip_prefix="198.51.100.0/24"), 409, "SecurityGroupRuleExists"),
        (rule_body(gid, remote_group_id=gid, remote_ip_prefix="10.0.0.0/8"), 400,
         "SecurityGroupRemoteGroupAndRemoteIpPrefix"),
        (rule_body(gid, port_range_min=22, port_range_max=22), 400,
         "SecurityGroupProtocolRequiredWithPorts"),
        (rule_body(gid, protocol="tcp", port_range_min=23, port_range_max=22), 400,
         "SecurityGroupInvalidPortRange"),
        (rule_body(gid, protocol="tcp", port_range_min=22), 400,
         "SecurityGroupInvalidPortRange"),
        (rule_body(gid, protocol="tcp", port_range_min=0, port_range_max=22), 400,
         "SecurityGroupInvalidPortValue"),
        (rule_body(gid, protocol="tcp", port_range_min=1, port_range_max=65536), 400,
         "SecurityGroupInvalidPortValue"),
        (rule_body(gid, protocol="icmp", port_range_min=256), 400,
         "SecurityGroupInvalidIcmpValue"),
        (rule_body(gid, protocol="icmp", port_range_max=0), 400,
         "SecurityGroupMissingIcmpType"),
        (rule_body(gid, protocol="gre", port_range_min=1, port_range_max=2), 400,
         "SecurityGroupInvalidProtocolForPortRange"),
        (rule_body(gid, protocol="foo"), 400, "SecurityGroupRuleInvalidProtocol"),
        (rule_body(gid, protocol="256"), 400, "SecurityGroupRuleInvalidProtocol"),
        (rule_body(gid, remote_ip_prefix="2001:db8::/64"), 400,
         "SecurityGroupRuleParameterConflict"),
        (rule_body(gid, remote_ip_prefix="10.0.0.0/33"), 400, "InvalidCIDR"),
        (rule_body(gid, direction="sideways"), 400, "HTTPBadRequest"),
        (rule_body(gid, ethertype="IPX"), 400, "HTTPBadRequest"),
        (rule_body(gid, remote_group_id="6f1c1f2e-0000-4000-8000-00000000dead"), 404,
         "SecurityGroupNotFound"),
        (rule_body("6f1c1f2e-0000-4000-8000-00000000dead"), 404, "SecurityGroupNotFound"),
        ({"security_group_rule": {"security_group_id": gid}}, 400, "HTTPBadRequest"),
    ]
    for body, status, kind in cases:
        assert error_of(ctl, "POST", RULES, body) == (status, kind), body
    # Only the description of a rule changes.
    assert ctl.request("PUT", f"{RULES}/{rule.id}", {"security_group_rule": {
        "description": "http"}}, token="alice-tok")[1]["security_group_rule"][
        "description"] == "http"
    assert error_of(ctl, "PUT", f"{RULES}/{rule.id}", {"security_group_rule": {
        "port_range_min": 1}}) == (400, "HTTPBadRequest")
    alice.network.delete_security_group_rule(rule)
    assert error_of(ctl, "DELETE", f"{RULES}/{rule.id}") == (404, "SecurityGroupRuleNotFound")
    shown = alice.network.get_security_group(group.id)
    assert rule.id not in [r["id"] for r in shown.security_group_rules]
    assert by_number.id in [r["id"] for r in shown.security_group_rules]
    # Deleting a group deletes the rules of other groups that name it as their remote.
    other = alice.network.create_security_group(name="other")
    naming = alice.network.create_security_group_rule(
        security_group_id=other.id, direction="ingress", remote_group_id=group.id)
    alice.network.delete_security_group(group)
    with pytest.raises(sdk_exc.NotFoundException):
        alice.network.get_security_group_rule(naming.id)
    alice.network.delete_security_group(other)


def test_projects_see_and_manage_only_their_own_groups(ctl, alice):
    bob, admin = ctl.sdk("bob-tok"), ctl.sdk("admin-tok")
    secret = alice.network.create_security_group(name="secret")
    bobs = list(bob.network.security_groups())
    assert [g.name for g in bobs] == ["default"] and bobs[0].project_id == "bob"
    assert secret.id not in [r.security_group_id for r in bob.network.security_group_rules()]
    for method, path, body in (
            ("GET", f"/v2.0/security-groups/{secret.id}", None),
            ("PUT", f"/v2.0/security-groups/{secret.id}", {"security_group": {"name": "x"}}),
            ("DELETE", f"/v2.0/security-groups/{secret.id}", None),
            ("POST", RULES, rule_body(secret.id))):
        assert error_of(ctl, method, path, body, token="bob-tok") == (
            404, "SecurityGroupNotFound"), (method, path)
    alice_rule = next(iter(alice.network.security_group_rules(security_group_id=secret.id)))
    assert error_of(ctl, "DELETE", f"{RULES}/{alice_rule.id}", token="bob-tok") == (
        404, "SecurityGroupRuleNotFound")
    # A remote group of another project cannot be named either.
    bob_default = bobs[0]
    assert error_of(ctl, "POST", RULES, rule_body(bob_default.id, remote_group_id=secret.id),
                    token="bob-tok") == (404, "SecurityGroupNotFound")
    # Nor can a port join another project's group.
    bob_net = bob.network.create_network(name="bob-net")
    assert error_of(ctl, "POST", "/v2.0/ports", {"port": {
        "network_id": bob_net.id, "security_groups": [secret.id]}}, token="bob-tok") == (
        404, "SecurityGroupNotFound")
    assert error_of(ctl, "POST", "/v2.0/security-groups", {"security_group": {
        "name": "x", "project_id": "alice"}}, token="bob-tok") == (403, "PolicyNotAuthorized")
    # The admin sees every project's groups and may create one for a project.
    assert {secret.id, bob_default.id} <= {g.id for g in admin.network.security_groups()}
    made = admin.network.create_security_group(name="for-bob", project_id="bob")
    assert made.project_id == "bob"
    assert made.id in [g.id for g in bob.network.security_groups()]
    bob.network.delete_security_group(made)
    bob.network.delete_network(bob_net)
    alice.network.delete_security_group(secret)
    # An admin may delete a project's unused default group (as Neutron); the next use of the
    # project makes a new one.
    admin.network.delete_security_group(bob_default)
    again = list(bob.network.security_groups())
    assert [g.name for g in again] == ["default"] and again[0].id != bob_default.id


def test_stateless_groups_are_refused(ctl):
    assert error_of(ctl, "POST", "/v2.0/security-groups", {"security_group": {
        "name": "x", "stateful": False}}) == (400, "HTTPBadRequest")


def test_openstack_cli_manages_groups_rules_and_ports_unmodified(ctl, network):
    if shutil.which("openstack") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("the openstack CLI is not installed")
        pytest.skip("openstack CLI not installed")
    base = ["openstack", "--os-auth-type", "admin_token", "--os-endpoint", ctl.url,
            "--os-token", "alice-tok", "--os-network-api-version", "2"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}

    def cli(*args: str) -> Any:
        done = subprocess.run([*base, *args], capture_output=True, text=True, timeout=90,
                              env=env)
        assert done.returncode == 0, (args, done.stderr)
        return json.loads(done.stdout) if "json" in args else None

    group = cli("security", "group", "create", "cli-web", "--description", "from the CLI",
                "-f", "json")
    assert group["name"] == "cli-web"
    rule = cli("security", "group", "rule", "create", "cli-web", "--protocol", "tcp",
               "--dst-port", "8080", "--ingress", "-f", "json")
    assert (rule["protocol"], rule["port_range_min"], rule["port_range_max"],
            rule["remote_ip_prefix"]) == ("tcp", 8080, 8080, "0.0.0.0/0")
    member = cli("security", "group", "rule", "create", "cli-web", "--protocol", "icmp",
                 "--remote-group", "cli-web", "-f", "json")
    assert member["remote_group_id"] == group["id"]
    listed = cli("security", "group", "rule", "list", "cli-web", "-f", "json")
    assert {rule["id"], member["id"]} <= {r["ID"] for r in listed}
    port = cli("port", "create", "--network", network.id, "cli-port", "-f", "json")
    cli("port", "set", "--security-group", "cli-web", "--allowed-address",
        "ip-address=10.0.0.200", "cli-port")
    shown = cli("port", "show", "cli-port", "-f", "json")
    assert group["id"] in shown["security_group_ids"]
    assert shown["allowed_address_pairs"] == [
        {"ip_address": "10.0.0.200", "mac_address": port["mac_address"]}]
    cli("security", "group", "rule", "delete", rule["id"])
    remaining = cli("security", "group", "show", "cli-web", "-f", "json")
    assert rule["id"] not in json.dumps(remaining["rules"])
    cli("port", "delete", "cli-port")
    cli("security", "group", "delete", "cli-web")
