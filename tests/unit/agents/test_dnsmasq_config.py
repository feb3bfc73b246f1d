"""dnsmasq configuration generated from a network's info (pure)."""

from __future__ import annotations

from pathlib import Path

from ryu_sched.agents.dnsmasq import (
    Dnsmasq,
    dhcp_ranges,
    render_hosts,
    render_opts,
    traversable_by_others,
)

INFO = {
    "id": "net-1", "mtu": 1450,
    "subnets": [
        {"id": "s4", "cidr": "10.0.0.0/24", "gateway_ip": "10.0.0.1", "enable_dhcp": True,
         "ip_version": 4, "dns_nameservers": ["198.51.100.53", "198.51.100.54"],
         "host_routes": [{"destination": "192.0.2.0/24", "nexthop": "10.0.0.254"}]},
        {"id": "s-nodhcp", "cidr": "10.9.0.0/24", "gateway_ip": "10.9.0.1",
         "enable_dhcp": False, "ip_version": 4},
    ],
    "ports": [
        {"id": "b", "mac_address": "fa:16:3e:00:00:02", "device_owner": "compute:nova",
         "fixed_ips": [{"subnet_id": "s4", "ip_address": "10.0.0.12"}]},
        {"id": "a", "mac_address": "fa:16:3e:00:00:01", "device_owner": "compute:nova",
         "fixed_ips": [{"subnet_id": "s4", "ip_address": "10.0.0.11"},
                       {"subnet_id": "s-nodhcp", "ip_address": "10.9.0.11"}]},
        {"id": "d", "mac_address": "fa:16:3e:00:00:0d", "device_owner": "network:dhcp",
         "fixed_ips": [{"subnet_id": "s4", "ip_address": "10.0.0.2"}]},
    ],
}


def test_static_leases_cover_every_port_ip_of_dhcp_subnets_only() -> None:
    assert render_hosts(INFO) == (
        "fa:16:3e:00:00:01,host-10-0-0-11,10.0.0.11\n"
        "fa:16:3e:00:00:02,host-10-0-0-12,10.0.0.12\n")


def test_options_carry_gateway_dns_routes_and_mtu_per_subnet() -> None:
    lines = render_opts(INFO).splitlines()
    assert "tag:subnet0,option:router,10.0.0.1" in lines
    assert "tag:subnet0,option:dns-server,198.51.100.53,198.51.100.54" in lines
    assert ("tag:subnet0,option:classless-static-route,192.0.2.0/24,10.0.0.254,"
            "0.0.0.0/0,10.0.0.1") in lines
    assert "tag:subnet0,option:mtu,1450" in lines
    assert not any("10.9.0" in line for line in lines)


def test_a_gateway_outside_the_subnet_is_reached_on_link() -> None:
    info = {"subnets": [{"id": "s", "cidr": "10.0.0.0/24", "gateway_ip": "10.0.9.1",
                         "host_routes": [{"destination": "192.0.2.0/24",
                                          "nexthop": "10.0.0.254"}]}], "ports": []}
    assert ("tag:subnet0,option:classless-static-route,10.0.9.1/32,0.0.0.0,"
            "192.0.2.0/24,10.0.0.254,0.0.0.0/0,10.0.9.1") in render_opts(info).splitlines()
    info["subnets"][0]["host_routes"] = []
    assert ("tag:subnet0,option:classless-static-route,10.0.9.1/32,0.0.0.0,"
            "0.0.0.0/0,10.0.9.1") in render_opts(info).splitlines()


def test_subnet_without_gateway_sends_no_router() -> None:
    info = {"subnets": [{"id": "s", "cidr": "10.0.0.0/24", "gateway_ip": None}], "ports": []}
    assert render_opts(info).splitlines() == ["tag:subnet0,option:router"]


def test_only_static_ranges_are_served() -> None:
    assert dhcp_ranges(INFO, 600) == [
        "--dhcp-range=set:subnet0,10.0.0.0,static,255.255.255.0,600s"]


def test_private_state_directory_is_not_traversable_by_dnsmasqs_user(tmp_path: Path) -> None:
    private = tmp_path / "private"
    (private / "dhcp").mkdir(parents=True)
    private.chmod(0o700)
    tmp_path.chmod(0o755)
    assert not traversable_by_others(private / "dhcp" / "net-1")
    private.chmod(0o755)
    if traversable_by_others(tmp_path):   # pytest's own base directory may be private
        assert traversable_by_others(private / "dhcp" / "net-1")


def test_command_line_names_interface_files_log_and_user(tmp_path: Path) -> None:
    argv = Dnsmasq("dnsmasq", tmp_path / "net-1", "ns1-qdhcp-net-1", "ns-abc", 600,
                   user="root").argv(INFO)
    assert argv[:5] == ["ip", "netns", "exec", "ns1-qdhcp-net-1", "dnsmasq"]
    assert "--interface=ns-abc" in argv and "--bind-interfaces" in argv
    assert f"--dhcp-hostsfile={tmp_path / 'net-1' / 'host'}" in argv
    assert f"--log-facility={tmp_path / 'net-1' / 'dnsmasq.log'}" in argv
    assert "--user=root" in argv
    assert "--user=root" not in Dnsmasq("dnsmasq", tmp_path, "ns", "ns-abc", 600).argv(INFO)
