"""Request-body validation and list filtering/paging: pure, no database."""

from __future__ import annotations

import pytest

from ryu_sched import errors
from ryu_sched.resources import common, networks, ports
from ryu_sched.resources.context import Context
from ryu_sched.resources.validation import check_body, to_bool

ADMIN = Context("admin", True)
MEMBER = Context("p1", False)


@pytest.mark.parametrize("value,expected", [(True, True), ("true", True), ("False", False),
                                            (0, False), ("1", True)])
def test_booleans_accept_neutron_spellings(value, expected):
    assert to_bool(value, "admin_state_up") is expected


@pytest.mark.parametrize("value", ["yes", 2, None, [], "on"])
def test_wrong_boolean_is_http_bad_request(value):
    with pytest.raises(errors.HTTPBadRequest) as info:
        to_bool(value, "admin_state_up")
    assert info.value.status == 400


def test_unknown_attribute_is_rejected():
    with pytest.raises(errors.HTTPBadRequest, match=r"Unrecognized attribute.*color"):
        check_body("network", networks.SPEC, {"name": "a", "color": "red"}, ADMIN, create=True)


def test_read_only_attribute_cannot_be_updated():
    with pytest.raises(errors.HTTPBadRequest, match="read-only"):
        check_body("network", networks.SPEC, {"provider:segmentation_id": 5}, ADMIN,
                   create=False)


def test_required_attribute_missing():
    with pytest.raises(errors.HTTPBadRequest, match="network_id"):
        check_body("port", ports.SPEC, {"name": "p"}, ADMIN, create=True)


def test_wrong_types_are_400():
    for body in ({"name": 5}, {"mtu": "big"}, {"provider:segmentation_id": 5000}):
        with pytest.raises(errors.HTTPBadRequest):
            check_body("network", networks.SPEC, body, ADMIN, create=True)


def test_admin_only_attributes_are_403_for_members():
    for key, value in (("provider:network_type", "flat"), ("router:external", True),
                       ("shared", True)):
        with pytest.raises(errors.PolicyNotAuthorized) as info:
            check_body("network", networks.SPEC, {key: value}, MEMBER, create=True)
        assert info.value.status == 403
    with pytest.raises(errors.PolicyNotAuthorized):
        check_body("port", ports.SPEC, {"network_id": "6a1b5c7e-6f0d-4c2a-9f0e-1e2f3a4b5c6d",
                                        "binding:host_id": "h1"}, MEMBER, create=True)


def test_project_defaults_to_caller_and_only_admin_sets_another():
    assert check_body("network", networks.SPEC, {}, MEMBER, create=True)["project_id"] == "p1"
    assert check_body("network", networks.SPEC, {"tenant_id": "p2"}, ADMIN,
                      create=True)["project_id"] == "p2"
    with pytest.raises(errors.PolicyNotAuthorized):
        check_body("network", networks.SPEC, {"project_id": "p2"}, MEMBER, create=True)
    with pytest.raises(errors.HTTPBadRequest):
        check_body("network", networks.SPEC, {"project_id": "a", "tenant_id": "b"}, ADMIN,
                   create=True)


ITEMS = [
    {"id": "1", "name": "a", "router:external": True, "fixed_ips": [
        {"subnet_id": "s1", "ip_address": "10.0.0.5"}], "gateway_ip": None},
    {"id": "2", "name": "b", "router:external": False, "fixed_ips": [], "gateway_ip": "x"},
    {"id": "3", "name": "c", "router:external": False, "fixed_ips": [], "gateway_ip": "y"},
]


def _ids(items):
    return [i["id"] for i in items]


def test_filters_repeated_keys_or_and_booleans_any_case():
    f = common.normalize_filters
    assert _ids(common.filter_items(ITEMS, f({"name": ["a", "c"]}))) == ["1", "3"]
    assert _ids(common.filter_items(ITEMS, f({"router:external": "True"}))) == ["1"]
    assert _ids(common.filter_items(ITEMS, f({"router:external": False}))) == ["2", "3"]
    assert _ids(common.filter_items(ITEMS, f({"fixed_ips": "ip_address=10.0.0.5"}))) == ["1"]
    assert _ids(common.filter_items(ITEMS, f({"unknown": "x"}))) == ["1", "2", "3"]


def test_fields_selection():
    assert common.select_fields(ITEMS[0], ["id", "name", "nope"]) == {"id": "1", "name": "a"}
    assert common.select_fields(ITEMS[0], []) is ITEMS[0]


def test_timestamps_format():
    import datetime as dt

    assert common.fmt_time(dt.datetime(2024, 1, 2, 3, 4, 5, 6789)) == "2024-01-02T03:04:05Z"
