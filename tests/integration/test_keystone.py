"""The controller behind a real Keystone (``auth_strategy = keystone``), driven by the
unmodified ``openstack`` CLI and openstacksdk with password authentication: they get their
tokens from Keystone and find the controller as the ``network`` service in its catalog.

Users: Keystone's bootstrap admin; ``alpha-member`` and ``alpha-reader`` in project alpha;
``beta-member`` in project beta. The rules checked are Neutron's defaults (docs/api.md,
"Auth").
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import openstack.exceptions as sdk_exc
import pytest

from tests.support.keystone import (
    Credentials,
    KeystoneController,
    KeystoneServer,
    KeystoneUnavailable,
    ensure_venv,
)
from tests.support.simagent import DHCP, SimAgent

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def keystone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KeystoneServer]:
    try:
        server = KeystoneServer(tmp_path_factory.mktemp("keystone"), ensure_venv())
        server.__enter__()                      # stops what it started if it fails
    except KeystoneUnavailable as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"Keystone is needed under CI: {exc}")
        pytest.skip(f"no Keystone here: {exc}")
    try:
        yield server
    finally:
        server.stop()


class Cloud:
    def __init__(self, keystone: KeystoneServer, controller: KeystoneController) -> None:
        self.keystone = keystone
        self.controller = controller
        self.admin = keystone.admin
        self.alpha_member = keystone.add_user("alpha-member", "alpha", "member")
        self.alpha_reader = keystone.add_user("alpha-reader", "alpha", "reader")
        self.beta_member = keystone.add_user("beta-member", "beta", "member")
        self.alpha = keystone.project_id("alpha")


@pytest.fixture(scope="module")
def cloud(keystone: KeystoneServer, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[Cloud]:
    controller = KeystoneController(tmp_path_factory.mktemp("ctl"), keystone)
    keystone.register_service("network", "neutron", controller.url)
    with controller:
        agent = SimAgent((controller.host, controller.rpc_port), "dhcp-host-1", DHCP).connect()
        try:
            agent.report_state()
            yield Cloud(keystone, controller)
        finally:
            agent.close()


def openstack_cli(creds: Credentials, *args: str) -> tuple[int, Any, str]:
    """``openstack <args> -f json`` as ``creds``: (exit code, parsed output, stderr)."""
    result = subprocess.run([sys.executable, "-m", "openstackclient.shell", *args,
                             "-f", "json"], capture_output=True, text=True,
                            env=creds.cli_env(), timeout=120, check=False)
    parsed = json.loads(result.stdout) if result.returncode == 0 and result.stdout else None
    return result.returncode, parsed, result.stderr


def ok(creds: Credentials, *args: str) -> Any:
    code, parsed, stderr = openstack_cli(creds, *args)
    assert code == 0, f"openstack {' '.join(args)} failed: {stderr}"
    return parsed


def test_admin_creates_a_shared_network_and_sees_the_agents(cloud):
    net = ok(cloud.admin, "network", "create", "--share", "shared-net")
    assert net["shared"] is True and net["provider:network_type"] == "vlan"
    agents = ok(cloud.admin, "network", "agent", "list")
    assert [a["Host"] for a in agents] == ["dhcp-host-1"]


def test_a_member_works_in_its_own_project_only(cloud):
    beta_net = cloud.beta_member.sdk().network.create_network(name="beta-net")
    net = ok(cloud.alpha_member, "network", "create", "alpha-net")
    assert net["project_id"] == cloud.alpha
    assert "provider:network_type" not in net or net["provider:network_type"] is None
    subnet = ok(cloud.alpha_member, "subnet", "create", "--network", "alpha-net",
                "--subnet-range", "10.1.0.0/24", "alpha-sub")
    port = ok(cloud.alpha_member, "port", "create", "--network", "alpha-net", "alpha-port")
    assert port["fixed_ips"][0]["subnet_id"] == subnet["id"]
    assert port["project_id"] == cloud.alpha
    names = {n["Name"] for n in ok(cloud.alpha_member, "network", "list")}
    assert {"alpha-net"} <= names and "beta-net" not in names
    code, _, stderr = openstack_cli(cloud.alpha_member, "network", "show", beta_net.id)
    assert code != 0 and ("404" in stderr or "No Network found" in stderr), stderr
    # Neutron: get_agent is admin-only and lists are filtered by it, so a member lists none.
    assert ok(cloud.alpha_member, "network", "agent", "list") == []


def test_a_reader_lists_but_cannot_create(cloud):
    alpha_net = cloud.alpha_member.sdk().network.create_network(name="alpha-readable")
    names = {n["Name"] for n in ok(cloud.alpha_reader, "network", "list")}
    assert "alpha-readable" in names
    code, _, stderr = openstack_cli(cloud.alpha_reader, "network", "create", "nope")
    assert code != 0 and ("403" in stderr or "disallowed by policy" in stderr), stderr
    reader = cloud.alpha_reader.sdk()
    with pytest.raises(sdk_exc.ForbiddenException):
        reader.network.update_network(alpha_net.id, name="renamed")
    assert reader.network.get_network(alpha_net.id).name == "alpha-readable"
    assert list(reader.network.agents()) == []


def test_security_groups_belong_to_their_project(cloud):
    group = ok(cloud.alpha_member, "security", "group", "create", "alpha-web")
    assert group["project_id"] == cloud.alpha
    rule = ok(cloud.alpha_member, "security", "group", "rule", "create", "alpha-web",
              "--protocol", "tcp", "--dst-port", "8080")
    assert rule["security_group_id"] == group["id"]
    beta = cloud.beta_member.sdk()
    assert {g.name for g in beta.network.security_groups()} == {"default"}
    with pytest.raises(sdk_exc.NotFoundException):
        beta.network.get_security_group(group["id"])
    with pytest.raises(sdk_exc.NotFoundException):
        beta.network.delete_security_group_rule(rule["id"], ignore_missing=False)
    reader = cloud.alpha_reader.sdk()
    assert "alpha-web" in {g.name for g in reader.network.security_groups()}
    with pytest.raises(sdk_exc.ForbiddenException):
        reader.network.create_security_group_rule(security_group_id=group["id"],
                                                  direction="ingress", protocol="udp")
    admin_view = {g.id for g in cloud.admin.sdk().network.security_groups()}
    assert group["id"] in admin_view


def test_floating_ips_of_other_projects_stay_hidden(cloud):
    admin = cloud.admin.sdk()
    ext = admin.network.create_network(name="public", is_router_external=True)
    admin.network.create_subnet(network_id=ext.id, cidr="172.24.4.0/24", ip_version=4)
    alpha = cloud.alpha_member.sdk()
    fip = alpha.network.create_ip(floating_network_id=ext.id)
    beta = cloud.beta_member.sdk()
    assert [f.id for f in beta.network.ips()] == []
    with pytest.raises(sdk_exc.NotFoundException):
        beta.network.get_ip(fip.id)
    with pytest.raises(sdk_exc.NotFoundException):
        beta.network.delete_ip(fip.id, ignore_missing=False)
    assert {f.id for f in admin.network.ips()} >= {fip.id}
    assert [f.id for f in cloud.alpha_reader.sdk().network.ips()] == [fip.id]


def test_without_a_valid_token_the_api_answers_401_with_where_to_get_one(cloud):
    ctl = cloud.controller
    for token in (None, "not-a-token"):
        headers = {"X-Auth-Token": token} if token else {}
        request = urllib.request.Request(ctl.url + "/v2.0/networks", headers=headers)
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(request, timeout=30)
        assert err.value.code == 401
        assert err.value.headers["WWW-Authenticate"] == \
            f'Keystone uri="{cloud.keystone.auth_url}"'
    assert ctl.request("GET", "/")[0] == 200          # discovery stays public
    token = cloud.alpha_member.token()
    assert ctl.request("GET", "/v2.0/networks", token=token)[0] == 200


def test_forged_identity_headers_do_not_make_an_admin(cloud):
    """auth_token drops the identity headers a client sends and sets its own."""
    token = cloud.alpha_member.token()
    request = urllib.request.Request(
        cloud.controller.url + "/v2.0/agents",
        headers={"X-Auth-Token": token, "X-Roles": "admin", "X-Identity-Status": "Confirmed",
                 "X-Project-Id": "someone-else"})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert json.loads(response.read()) == {"agents": []}


def test_token_validation_waits_on_keystone_without_blocking_other_requests(tmp_path):
    """A stalled Keystone holds up only the requests that wait for it: keystonemiddleware's
    HTTP calls run on green sockets in the controller (the manager monkey-patches)."""
    stalled = socket.create_server(("127.0.0.1", 0), backlog=16)
    url = f"http://127.0.0.1:{stalled.getsockname()[1]}/v3"
    authtoken = {"www_authenticate_uri": url, "auth_url": url, "auth_type": "password",
                 "username": "neutron", "password": "x", "project_name": "service",
                 "user_domain_name": "Default", "project_domain_name": "Default",
                 "http_connect_timeout": 60}
    answers: dict[str, int] = {}

    def list_networks(url: str) -> None:
        request = urllib.request.Request(url + "/v2.0/networks",
                                         headers={"X-Auth-Token": "some-token"})
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                answers["status"] = response.status
        except urllib.error.HTTPError as exc:
            answers["status"] = exc.code

    with KeystoneController(tmp_path, None, authtoken=authtoken) as ctl:
        waiting = threading.Thread(target=list_networks, args=(ctl.url,))
        waiting.start()
        try:
            stalled.settimeout(30)
            connection, _ = stalled.accept()     # the middleware now waits on "Keystone"
            with connection:
                assert ctl.request("GET", "/")[0] == 200
                assert ctl.request("GET", "/v2.0/extensions")[0] == 200
                assert "status" not in answers
        finally:
            stalled.close()
        waiting.join(120)
        # Keystone gone: the middleware answers 503, as for Neutron.
        assert answers["status"] == 503
