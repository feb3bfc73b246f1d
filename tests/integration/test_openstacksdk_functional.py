"""openstacksdk's own functional tests of the network service, unmodified, against the real
controller: the tests OpenStack runs against Neutron in its gate.

A clouds.yaml names the controller for every cloud the tests use (no Keystone: ``auth_type:
none``; only the network service), and a ``public`` external network exists, as devstack
makes one. Left out: tests of what ryu-sched does not implement (QoS, segments, trunks,
security groups until they land, ...) and ``test_quota``, which creates a Keystone project.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.controller import ControllerProcess

pytestmark = pytest.mark.integration

MODULES = ("test_network", "test_subnet", "test_port", "test_router",
           "test_router_add_remove_interface", "test_floating_ip", "test_rbac_policy",
           "test_network_ip_availability", "test_availability_zone",
           "test_service_provider", "test_extension", "test_agent")


@pytest.fixture(scope="module")
def ctl(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControllerProcess]:
    with ControllerProcess(tmp_path_factory.mktemp("sdkfunctional")) as proc:
        conn = proc.sdk()
        public = conn.network.create_network(
            name="public", is_router_external=True, provider_network_type="flat",
            provider_physical_network="extnet")
        conn.network.create_subnet(network_id=public.id, name="public-subnet",
                                   cidr="172.24.4.0/24", ip_version=4)
        yield proc


def clouds_yaml(url: str) -> str:
    services = ("compute", "image", "volume", "block_storage", "identity", "object_store",
                "placement", "dns", "load_balancer", "key_manager")
    lines = ["clouds:", "  devstack: &cloud", "    auth_type: none", "    auth:",
             f"      endpoint: {url}", f"    network_endpoint_override: {url}",
             "    region_name: RegionOne"]
    lines += [f"    has_{service}: false" for service in services]
    lines += [f"  {name}: *cloud" for name in ("devstack-admin", "devstack-alt",
                                               "devstack-system-admin")]
    return "\n".join(lines) + "\n"


def test_openstacksdk_network_functional_tests_pass(ctl: ControllerProcess,
                                                   tmp_path: Path) -> None:
    import openstack

    suite = Path(openstack.__file__).parent / "tests" / "functional" / "network" / "v2"
    config = tmp_path / "clouds.yaml"
    config.write_text(clouds_yaml(ctl.url))
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    env["OS_CLIENT_CONFIG_FILE"] = str(config)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
         "--rootdir", str(tmp_path), *(str(suite / f"{m}.py") for m in MODULES)],
        capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert " passed" in summary and "failed" not in summary, summary
