"""Quotas through openstacksdk and raw HTTP against the real controller: defaults from the
configuration, per-project limits, usage details, enforcement on create."""

from __future__ import annotations

from collections.abc import Iterator

import openstack.exceptions as sdk_exc
import pytest

from tests.support.controller import ControllerProcess

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def ctl(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControllerProcess]:
    with ControllerProcess(tmp_path_factory.mktemp("quotas"), tokens={
            "admin-token": {"project_id": "admin-project", "role": "admin"},
            "alice-token": {"project_id": "alice", "role": "member"},
            "bob-token": {"project_id": "bob", "role": "member"}},
            sections={"quotas": {"quota_network": 3, "quota_port": -1,
                                 "quota_router": 1}}) as proc:
        yield proc


@pytest.fixture(scope="module")
def admin(ctl):
    return ctl.sdk("admin-token")


@pytest.fixture(scope="module")
def alice(ctl):
    return ctl.sdk("alice-token")


def error_type(ctl, method, path, body=None, token="admin-token"):
    status, payload = ctl.request(method, path, body, token=token)
    return status, (payload or {}).get("NeutronError", {}).get("type")


def test_defaults_come_from_the_configuration(admin):
    defaults = admin.network.get_quota_default("carol")
    assert (defaults.networks, defaults.ports, defaults.routers, defaults.subnets,
            defaults.floating_ips, defaults.rbac_policies) == (3, -1, 1, -1, -1, -1)
    assert admin.network.get_quota("carol").networks == 3


def test_create_is_refused_over_quota_and_allowed_again_when_raised(ctl, admin, alice):
    nets = [alice.network.create_network(name=f"q{i}") for i in range(3)]
    assert error_type(ctl, "POST", "/v2.0/networks", {"network": {"name": "q3"}},
                      token="alice-token") == (409, "OverQuota")
    # Bulk: the items within the quota are made, the first beyond it is refused.
    status, body = ctl.request("POST", "/v2.0/routers", {"routers": [{"name": "r1"},
                                                                     {"name": "r2"}]},
                               token="alice-token")
    assert (status, body["NeutronError"]["type"]) == (409, "OverQuota")
    assert len(list(alice.network.routers())) == 1
    # Another project is not affected; an admin creating for alice is counted for alice.
    other = ctl.sdk("bob-token").network.create_network(name="bob-net")
    assert error_type(ctl, "POST", "/v2.0/networks", {"network": {
        "project_id": "alice"}}) == (409, "OverQuota")
    quota = admin.network.update_quota("alice", networks=4)
    assert quota.networks == 4
    nets.append(alice.network.create_network(name="q3"))
    details = admin.network.get_quota("alice", details=True)
    assert details.networks == {"limit": 4, "used": 4, "reserved": 0}
    assert details.routers == {"limit": 1, "used": 1, "reserved": 0}
    # Unlimited.
    admin.network.update_quota("alice", networks=-1)
    nets.append(alice.network.create_network(name="q4"))
    for net in nets:
        alice.network.delete_network(net)
    for router in alice.network.routers():
        alice.network.delete_router(router)
    ctl.sdk("bob-token").network.delete_network(other)
    admin.network.delete_quota("alice")
    assert admin.network.get_quota("alice").networks == 3


def test_quota_api_permissions_and_validation(ctl, admin, alice):
    admin.network.update_quota("dave", subnets=7)
    assert "dave" in [q.project_id for q in admin.network.quotas()]
    assert next(q for q in admin.network.quotas() if q.project_id == "dave").subnets == 7
    # A member reads its own quota, nobody else's, and changes none.
    assert alice.network.get_quota("alice").subnets == -1
    with pytest.raises(sdk_exc.ForbiddenException):
        alice.network.get_quota("dave")
    with pytest.raises(sdk_exc.ForbiddenException):
        alice.network.update_quota("alice", networks=50)
    with pytest.raises(sdk_exc.ForbiddenException):
        list(alice.network.quotas())
    status, body = ctl.request("GET", "/v2.0/quotas/tenant", token="alice-token")
    assert (status, body) == (200, {"tenant": {"tenant_id": "alice"}})
    assert error_type(ctl, "PUT", "/v2.0/quotas/dave", {"quota": {"networks": 1}})[0] == 400
    assert error_type(ctl, "PUT", "/v2.0/quotas/dave", {"quota": {"network": -2}})[0] == 400
    assert error_type(ctl, "PUT", "/v2.0/quotas/dave", {"quota": {"network": "x"}})[0] == 400
    admin.network.delete_quota("dave")
    assert "dave" not in [q.project_id for q in admin.network.quotas()]


def test_check_limit_refuses_a_limit_below_the_usage(ctl, admin, alice):
    net = alice.network.create_network(name="used")
    assert error_type(ctl, "PUT", "/v2.0/quotas/alice", {"quota": {
        "network": 0, "check_limit": True}}) == (409, "InvalidQuotaValue")
    assert admin.network.update_quota("alice", networks=0).networks == 0
    admin.network.delete_quota("alice")
    alice.network.delete_network(net)


def test_system_ports_are_not_refused_but_counted(ctl, admin, alice):
    admin.network.update_quota("alice", ports=1)
    net = alice.network.create_network(name="ports")
    sub = alice.network.create_subnet(network_id=net.id, cidr="10.50.0.0/24", ip_version=4)
    router = alice.network.create_router(name="ports")
    port = alice.network.create_port(network_id=net.id)
    assert error_type(ctl, "POST", "/v2.0/ports", {"port": {"network_id": net.id}},
                      token="alice-token") == (409, "OverQuota")
    # The router's interface port is the system's: made, and counted.
    alice.network.add_interface_to_router(router, subnet_id=sub.id)
    assert admin.network.get_quota("alice", details=True).ports["used"] == 2
    alice.network.remove_interface_from_router(router, subnet_id=sub.id)
    alice.network.delete_router(router)
    alice.network.delete_port(port)
    alice.network.delete_network(net)
    admin.network.delete_quota("alice")
