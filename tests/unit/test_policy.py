"""Request contexts from roles, attributes hidden by policy, the token file's roles, and
the Keystone authenticator's answers that need no Keystone (docs/api.md, "Auth")."""

from __future__ import annotations

import json

import pytest
import webob

from ryu_sched import errors
from ryu_sched.api import auth
from ryu_sched.config import Settings
from ryu_sched.resources import policy
from ryu_sched.resources.context import Context, Role, admin_context


def test_roles_decide_reading_writing_and_admin():
    admin = Context.from_roles("p", ["Admin", "member", "reader"])
    member = Context.from_roles("p", ["member", "reader"])
    reader = Context.from_roles("p", ["reader"])
    other = Context.from_roles("p", ["observer"])
    assert (admin.is_admin, admin.may_write, admin.may_read) == (True, True, True)
    assert (member.is_admin, member.may_write, member.may_read) == (False, True, True)
    assert (reader.is_admin, reader.may_write, reader.may_read) == (False, False, True)
    assert (other.may_write, other.may_read) == (False, False)
    # Without Keystone's implied roles, member alone still reads and admin alone does all.
    assert Context.from_roles("p", ["member"]).may_read
    assert Context.from_roles("p", ["admin"]).may_write
    # The plain constructor is a member, as the tests and the token file have always meant.
    assert Context("p", False).may_write and not Context("p", False).is_admin
    assert admin_context().may_write and admin_context().is_admin


def test_admin_only_attributes_are_hidden_from_everyone_else():
    net = {"id": "n", "name": "x", "provider:network_type": "vlan",
           "provider:physical_network": "physnet1", "provider:segmentation_id": 101}
    assert policy.shown("network", net, Context("p", False)) == {"id": "n", "name": "x"}
    assert policy.shown("network", net, admin_context()) == net
    port = {"id": "p", "binding:host_id": "h", "binding:vnic_type": "normal"}
    assert policy.shown("port", port, Context.from_roles("p", ["reader"])) == {
        "id": "p", "binding:vnic_type": "normal"}
    assert policy.shown("router", {"id": "r", "ha": False, "distributed": False},
                        Context("p", False)) == {"id": "r"}
    assert policy.shown("floatingip", {"id": "f"}, Context("p", False)) == {"id": "f"}


def test_writes_need_a_member():
    policy.require_write(Context("p", False), "create_network")
    with pytest.raises(errors.PolicyNotAuthorized, match="create_network"):
        policy.require_write(Context.from_roles("p", ["reader"]), "create_network")


def test_the_token_file_gives_roles_with_what_they_imply(tmp_path):
    path = tmp_path / "tokens.json"
    path.write_text(json.dumps({
        "a": {"project_id": "ops", "role": "admin"},
        "m": {"project_id": "p1"},
        "r": {"project_id": "p1", "role": "Reader"},
        "x": {"project_id": "p1", "roles": ["observer", "reader"]}}))
    tokens = auth.load_tokens(str(path))
    assert tokens["a"].is_admin and tokens["a"].roles == (Role.ADMIN, Role.MEMBER, Role.READER)
    assert tokens["m"].roles == (Role.MEMBER, Role.READER) and not tokens["m"].is_admin
    assert tokens["r"].roles == (Role.READER,)
    assert tokens["x"].may_read and not tokens["x"].may_write
    authenticator = auth.TokenFile(str(path))
    request = webob.Request.blank("/v2.0/networks", headers={"X-Auth-Token": "r"})
    assert authenticator.context_for(request).project_id == "p1"
    with pytest.raises(errors.NotAuthenticated):
        authenticator.context_for(webob.Request.blank("/v2.0/networks"))


def test_noauth_is_admin_in_the_named_project():
    request = webob.Request.blank("/", headers={"X-Project-Id": "lab"})
    context = auth.NoAuth().context_for(request)
    assert (context.project_id, context.is_admin) == ("lab", True)


def keystone_settings(tmp_path, **authtoken: str) -> Settings:
    config = tmp_path / "ryu_sched.conf"
    lines = ["[ryu_sched]", "auth_strategy = keystone", "", "[keystone_authtoken]"]
    lines += [f"{key} = {value}" for key, value in authtoken.items()]
    config.write_text("\n".join(lines) + "\n")
    return Settings(auth_strategy="keystone", config_files=(str(config),))


def test_keystone_reads_keystone_authtoken_from_the_controllers_config(tmp_path):
    settings = keystone_settings(
        tmp_path, www_authenticate_uri="http://127.0.0.1:1/v3",
        auth_url="http://127.0.0.1:1/v3", auth_type="password", username="neutron",
        password="x", project_name="service", user_domain_name="Default",
        project_domain_name="Default")
    authenticator = auth.authenticator_for(settings)
    assert isinstance(authenticator, auth.KeystoneAuth)
    # No token: auth_token answers 401 itself, without asking Keystone, and says where to
    # get one. Identity headers a client sends are not believed.
    request = webob.Request.blank("/v2.0/networks", headers={
        "X-Identity-Status": "Confirmed", "X-Roles": "admin", "X-Project-Id": "p"})
    with pytest.raises(auth.AuthRefused) as refused:
        authenticator.context_for(request)
    assert refused.value.status == 401
    assert refused.value.headers == [("WWW-Authenticate",
                                      'Keystone uri="http://127.0.0.1:1/v3"')]
    assert refused.value.body()["error"]["code"] == 401


def test_keystone_with_delayed_decisions_still_refuses_a_missing_token(tmp_path):
    settings = keystone_settings(tmp_path, delay_auth_decision="true",
                                 www_authenticate_uri="http://127.0.0.1:1/v3")
    authenticator = auth.authenticator_for(settings)
    request = webob.Request.blank("/v2.0/networks", headers={
        "X-Identity-Status": "Confirmed", "X-Roles": "admin", "X-Project-Id": "p"})
    with pytest.raises(errors.NotAuthenticated):
        authenticator.context_for(request)
