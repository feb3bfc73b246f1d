"""The ``openstack`` CLI, unmodified, against the real controller: tags, extra routes, RBAC,
IP availability, availability zones, service providers, floating IP port details."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.controller import ControllerProcess

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def ctl(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControllerProcess]:
    if shutil.which("openstack") is None:
        pytest.fail("the openstack CLI (python-openstackclient) is not installed")
    with ControllerProcess(tmp_path_factory.mktemp("cli")) as proc:
        yield proc


def cli(ctl: ControllerProcess, *args: str, parse: bool = True) -> Any:
    argv = ["openstack", "--os-auth-type", "none", "--os-endpoint", ctl.url,
            "--os-network-api-version", "2", *args]
    if parse:
        argv += ["-f", "json"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, f"{' '.join(args)}: {done.stderr}"
    return json.loads(done.stdout) if parse and done.stdout.strip() else done.stdout


def test_tags(ctl):
    net = cli(ctl, "network", "create", "--tag", "red", "--tag", "blue", "tagged")
    assert sorted(net["tags"]) == ["blue", "red"] and net["revision_number"] >= 1
    cli(ctl, "network", "create", "plain")
    cli(ctl, "network", "set", "--tag", "green", "tagged", parse=False)
    cli(ctl, "network", "unset", "--tag", "red", "tagged", parse=False)
    assert sorted(cli(ctl, "network", "show", "tagged")["tags"]) == ["blue", "green"]
    assert [n["Name"] for n in cli(ctl, "network", "list", "--tags", "blue,green")] == \
        ["tagged"]
    assert "tagged" not in [n["Name"] for n in cli(ctl, "network", "list", "--not-tags",
                                                    "green")]


def test_extra_routes_and_router_ports(ctl):
    cli(ctl, "network", "create", "rnet")
    cli(ctl, "subnet", "create", "--network", "rnet", "--subnet-range", "10.90.0.0/24", "rsub")
    cli(ctl, "router", "create", "r1")
    cli(ctl, "router", "add", "subnet", "r1", "rsub", parse=False)
    router = cli(ctl, "router", "add", "route", "--route",
                 "destination=192.168.7.0/24,gateway=10.90.0.7", "r1")
    assert router["routes"] == [{"destination": "192.168.7.0/24", "nexthop": "10.90.0.7"}]
    cli(ctl, "router", "set", "--route", "destination=192.168.8.0/24,gateway=10.90.0.8", "r1",
        parse=False)
    routes = cli(ctl, "router", "show", "r1")["routes"]
    assert {r["destination"] for r in routes} == {"192.168.7.0/24", "192.168.8.0/24"}
    router = cli(ctl, "router", "remove", "route", "--route",
                 "destination=192.168.7.0/24,gateway=10.90.0.7", "r1")
    assert router["routes"] == [{"destination": "192.168.8.0/24", "nexthop": "10.90.0.8"}]
    cli(ctl, "router", "set", "--no-route", "r1", parse=False)
    assert cli(ctl, "router", "show", "r1")["routes"] == []


def test_rbac_ip_availability_zones_providers(ctl):
    net = cli(ctl, "network", "create", "shared-later")
    policy = cli(ctl, "network", "rbac", "create", "--type", "network", "--action",
                 "access_as_shared", "--target-all-projects", net["id"])
    assert (policy["target_project_id"], policy["object_id"]) == ("*", net["id"])
    assert cli(ctl, "network", "show", net["id"])["shared"] is True
    assert policy["id"] in [p["ID"] for p in cli(ctl, "network", "rbac", "list")]
    cli(ctl, "network", "rbac", "delete", policy["id"], parse=False)
    assert cli(ctl, "network", "show", net["id"])["shared"] is False
    cli(ctl, "subnet", "create", "--network", "shared-later", "--subnet-range",
        "10.91.0.0/29", "s29")
    avail = cli(ctl, "ip", "availability", "show", net["id"])
    assert (avail["total_ips"], avail["used_ips"]) == (5, 0)
    assert net["id"] in [a["Network ID"] for a in cli(ctl, "ip", "availability", "list")]
    assert cli(ctl, "availability", "zone", "list", "--network") == []
    assert sorted(p["Name"] for p in cli(ctl, "network", "service", "provider", "list")) == [
        "ha", "single_node"]


def test_floating_ip_port_details(ctl):
    cli(ctl, "network", "create", "--external", "pub")
    cli(ctl, "subnet", "create", "--network", "pub", "--subnet-range", "198.51.100.0/24",
        "pubsub")
    cli(ctl, "network", "create", "inside")
    cli(ctl, "subnet", "create", "--network", "inside", "--subnet-range", "10.92.0.0/24",
        "insub")
    cli(ctl, "router", "create", "edge")
    cli(ctl, "router", "set", "--external-gateway", "pub", "edge", parse=False)
    cli(ctl, "router", "add", "subnet", "edge", "insub", parse=False)
    port = cli(ctl, "port", "create", "--network", "inside", "vm-port")
    fip = cli(ctl, "floating", "ip", "create", "--port", port["id"], "pub")
    shown = cli(ctl, "floating", "ip", "show", fip["id"])
    assert shown["port_details"]["name"] == "vm-port"
    assert shown["port_details"]["mac_address"] == port["mac_address"]
