"""Everything the API acknowledged survives a controller restart; the openstack CLI works."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator

import pytest

from tests.support.controller import ControllerProcess

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def ctl(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControllerProcess]:
    with ControllerProcess(tmp_path_factory.mktemp("persist")) as proc:
        yield proc


def snapshot(conn):
    return {
        "networks": sorted((n.id, n.name, n.provider_segmentation_id, tuple(n.subnet_ids))
                           for n in conn.network.networks()),
        "subnets": sorted((s.id, s.cidr, s.gateway_ip) for s in conn.network.subnets()),
        "ports": sorted((p.id, p.mac_address, json.dumps(p.fixed_ips), p.device_owner)
                        for p in conn.network.ports()),
        "routers": sorted((r.id, json.dumps(r.external_gateway_info, sort_keys=True))
                          for r in conn.network.routers()),
        "fips": sorted((f.id, f.floating_ip_address, f.port_id, f.router_id)
                       for f in conn.network.ips()),
    }


def test_state_survives_restart_with_allocations_intact(ctl):
    conn = ctl.sdk()
    ext = conn.network.create_network(name="ext", is_router_external=True,
                                      provider_network_type="flat",
                                      provider_physical_network="extnet")
    conn.network.create_subnet(network_id=ext.id, cidr="172.24.4.0/24", ip_version=4)
    net = conn.network.create_network(name="tenant")
    sub = conn.network.create_subnet(network_id=net.id, cidr="10.0.0.0/24", ip_version=4)
    vm = conn.network.create_port(network_id=net.id, binding_host_id="h1")
    router = conn.network.create_router(name="r", external_gateway_info={"network_id":
                                                                          ext.id})
    conn.network.add_interface_to_router(router, subnet_id=sub.id)
    conn.network.create_ip(floating_network_id=ext.id, port_id=vm.id)
    before = snapshot(conn)

    ctl.restart()
    conn = ctl.sdk()
    assert snapshot(conn) == before
    # Allocations are intact: the next port and network do not reuse taken values.
    port = conn.network.create_port(network_id=net.id)
    taken = {p[2] for p in before["ports"]}
    assert json.dumps(port.fixed_ips) not in taken
    other = conn.network.create_network(name="after")
    assert other.provider_segmentation_id not in {n[2] for n in before["networks"]}
    status, _body = ctl.request("POST", "/v2.0/ports", {"port": {
        "network_id": net.id, "fixed_ips": [{"ip_address": vm.fixed_ips[0]["ip_address"]}]}})
    assert status == 409


@pytest.mark.skipif(shutil.which("openstack") is None, reason="openstack CLI not installed")
def test_openstack_cli_network_create_and_list(ctl):
    base = ["openstack", "--os-auth-type", "none", "--os-endpoint", ctl.url,
            "--os-network-api-version", "2"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    created = subprocess.run([*base, "network", "create", "cli-net", "-f", "json"],
                             capture_output=True, text=True, timeout=60, env=env)
    assert created.returncode == 0, created.stderr
    net = json.loads(created.stdout)
    assert net["name"] == "cli-net"
    listed = subprocess.run([*base, "network", "list", "-f", "json"], capture_output=True,
                            text=True, timeout=60, env=env)
    assert listed.returncode == 0, listed.stderr
    assert net["id"] in [n["ID"] for n in json.loads(listed.stdout)]
