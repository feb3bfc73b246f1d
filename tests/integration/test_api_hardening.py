"""Hostile and careless input against the real controller over plain HTTP: oversized,
malformed and undecodable requests get Neutron errors (never a 500 or a traceback) and the
API keeps answering; lists page correctly through limit/marker/sort in SQL."""

from __future__ import annotations

import json
import select
import socket
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.controller import ControllerProcess, wait_until

pytestmark = pytest.mark.integration

LIMIT = 114688          # api_max_request_body_size default
ADMIN, MEMBER = "admin-token", "member-token"


@pytest.fixture(scope="module")
def ctl(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControllerProcess]:
    workdir: Path = tmp_path_factory.mktemp("hardening")
    tokens = {ADMIN: {"project_id": "p-admin", "role": "admin"},
              MEMBER: {"project_id": "p-member", "role": "member"}}
    with ControllerProcess(workdir, tokens=tokens) as proc:
        yield proc


def http(ctl: ControllerProcess, method: str, path: str, data: bytes | None = None,
         content_type: str | None = "application/json",
         token: str | None = ADMIN) -> tuple[int, bytes]:
    headers = {"Accept": "application/json"}
    if content_type is not None:
        headers["Content-Type"] = content_type
    if token is not None:
        headers["X-Auth-Token"] = token
    request = urllib.request.Request(ctl.url + path, data=data, method=method,
                                     headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def call(ctl: ControllerProcess, method: str, path: str, body: Any = None,
         token: str | None = ADMIN) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    status, payload = http(ctl, method, path, data, token=token)
    return status, json.loads(payload) if payload else None


def error_of(status: int, payload: bytes) -> tuple[int, str]:
    text = payload.decode("utf-8", errors="replace")
    assert "Traceback" not in text and 'File "' not in text, text
    return status, json.loads(payload)["NeutronError"]["type"]


def answers(ctl: ControllerProcess) -> bool:
    return ctl.alive() and http(ctl, "GET", "/", token=None)[0] == 200


def raw_exchange(ctl: ControllerProcess, head: bytes, body_pieces: Iterator[bytes]) -> bytes:
    """Send ``head`` then body pieces while nothing comes back; return the first answer."""
    sock = socket.create_connection((ctl.host, ctl.api_port), timeout=20)
    try:
        sock.sendall(head)
        answer = b""
        for piece in body_pieces:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                break
            try:
                sock.sendall(piece)
            except (BrokenPipeError, ConnectionResetError):
                break
        while b"\r\n\r\n" not in answer:
            data = sock.recv(65536)
            if not data:
                break
            answer += data
        head_part, _, rest = answer.partition(b"\r\n\r\n")
        length = next((int(line.split(b":")[1]) for line in head_part.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), 0)
        while len(rest) < length:
            data = sock.recv(65536)
            if not data:
                break
            rest += data
        return head_part + b"\r\n\r\n" + rest
    finally:
        sock.close()


def status_and_type(answer: bytes) -> tuple[int, str]:
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return error_of(status, body)


# --- bodies ----------------------------------------------------------------------------------

def test_declared_length_over_the_limit_is_413_before_reading(ctl):
    head = (b"POST /v2.0/networks HTTP/1.1\r\nHost: t\r\nX-Auth-Token: " + ADMIN.encode()
            + b"\r\nContent-Type: application/json\r\nContent-Length: 200000000\r\n\r\n")
    answer = raw_exchange(ctl, head, iter([b"{" + b" " * 65535] * 3000))
    assert status_and_type(answer) == (413, "HTTPRequestEntityTooLarge")
    assert b"connection: close" in answer.lower()
    assert answers(ctl)


def test_chunked_body_growing_over_the_limit_is_413(ctl):
    head = (b"POST /v2.0/networks HTTP/1.1\r\nHost: t\r\nX-Auth-Token: " + ADMIN.encode()
            + b"\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = b"10000\r\n" + b" " * 0x10000 + b"\r\n"
    answer = raw_exchange(ctl, head, iter([chunk] * 3000))
    assert status_and_type(answer) == (413, "HTTPRequestEntityTooLarge")
    assert answers(ctl)


def test_body_just_over_the_limit_reaches_a_simple_client_and_at_the_limit_is_read(ctl):
    body = json.dumps({"network": {"name": "at-limit"}}).encode()
    padded = body + b" " * (LIMIT - len(body))
    status, payload = http(ctl, "POST", "/v2.0/networks", padded)
    assert status == 201, payload
    net_id = json.loads(payload)["network"]["id"]
    assert error_of(*http(ctl, "POST", "/v2.0/networks", padded + b" ")) == (
        413, "HTTPRequestEntityTooLarge")
    assert call(ctl, "DELETE", f"/v2.0/networks/{net_id}")[0] == 204
    assert answers(ctl)


@pytest.mark.parametrize("raw", [
    b"[" * 1000 + b"]" * 1000,
    b"[" * 100000,
    b'{"network": ' * 450 + b"{}" + b"}" * 450,
], ids=["1000-deep", "100000-open", "450-deep-objects"])
def test_deeply_nested_json_is_400(ctl, raw):
    assert error_of(*http(ctl, "POST", "/v2.0/networks", raw)) == (400, "HTTPBadRequest")
    assert answers(ctl)


@pytest.mark.parametrize("raw", [
    b'{"network": {"name": "\\ud800"}}',             # JSON escape of a lone surrogate
    b'{"network": {"name": "x\\udfff"}}',
    b'{"network": {"\\ud800": 1}}',                  # ... as a key
    b'{"network": {"name": "\xed\xa0\x80"}}',        # a surrogate encoded in the bytes
    b'{"network": {"name": "\xff\xfe"}}',            # not UTF-8 at all
    b'{"network": {"mtu": NaN}}',
    b"\xef\xbb\xbf{}",                               # UTF-8 byte order mark
], ids=["escaped", "escaped-low", "key", "cesu", "invalid", "nan", "bom"])
def test_undecodable_bodies_are_400(ctl, raw):
    assert error_of(*http(ctl, "POST", "/v2.0/networks", raw)) == (400, "HTTPBadRequest")


@pytest.mark.parametrize("content_type,status", [
    ("text/plain", 415), (None, 415), ("application/x-www-form-urlencoded", 415),
    ("application/json; charset=latin-1", 415), ("application/jsonx", 415),
    ("application/json; charset=utf-8", 201), ("Application/JSON;charset=UTF8", 201),
])
def test_bodies_must_be_json(ctl, content_type, status):
    data = json.dumps({"network": {"name": "ctype"}}).encode()
    got, payload = http(ctl, "POST", "/v2.0/networks", data, content_type=content_type)
    if status == 201:
        assert got == 201, payload
        assert call(ctl, "DELETE", f"/v2.0/networks/{json.loads(payload)['network']['id']}"
                    )[0] == 204
    else:
        assert error_of(got, payload) == (415, "HTTPUnsupportedMediaType")


# --- paths and queries -------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/v2.0/%ff", "/%ff%fe/x", "/v2.0/networks/%ed%a0%80",
                                  "/v2.0/networks/%00", "/v2.0/nothing/at/all"])
def test_bad_paths_are_404_without_traceback(ctl, path):
    status, kind = error_of(*http(ctl, "GET", path))
    assert status == 404 and kind.endswith("NotFound")
    assert answers(ctl)


@pytest.mark.parametrize("query", ["name=%ff", "%ff=x", "fields=%ed%a0%80", "limit=%ff",
                                   "limit=-1", "limit=1.5", "limit=%D9%A1", "sort_dir=up",
                                   "sort_key=name&sort_dir=asc&sort_dir=desc",
                                   "sort_key=fixed_ips", "sort_key=nope", "page_reverse=maybe",
                                   "marker=3f1e9a52-0000-4000-8000-000000000000"])
def test_bad_queries_are_400(ctl, query):
    assert error_of(*http(ctl, "GET", "/v2.0/ports?" + query)) == (400, "HTTPBadRequest")


def test_discovery_is_public_and_the_rest_is_not(ctl):
    for path in ("/", "/v2.0", "/v2.0/extensions", "/v2.0/extensions/router"):
        assert http(ctl, "GET", path, token=None)[0] == 200, path
    assert error_of(*http(ctl, "GET", "/v2.0/extensions/nope", token=None))[0] == 404
    assert error_of(*http(ctl, "GET", "/v2.0/networks", token=None)) == (
        401, "NotAuthenticated")


# --- attribute values --------------------------------------------------------------------------

@pytest.mark.parametrize("cidr", ["0.0.0.0/0", "224.0.0.0/24", "127.0.0.0/24", "0.0.0.0/8",
                                  "240.0.0.0/4", "255.255.255.255/32", "192.0.0.0/2",
                                  "127.0.0.1/32"])
def test_reserved_and_meaningless_subnets_are_refused(ctl, cidr):
    status, net = call(ctl, "POST", "/v2.0/networks", {"network": {"name": "cidrs"}})
    assert status == 201
    try:
        for dhcp in (True, False):
            status, body = call(ctl, "POST", "/v2.0/subnets", {"subnet": {
                "network_id": net["network"]["id"], "cidr": cidr, "ip_version": 4,
                "enable_dhcp": dhcp}})
            assert (status, body["NeutronError"]["type"]) == (400, "InvalidInput"), body
    finally:
        call(ctl, "DELETE", f"/v2.0/networks/{net['network']['id']}")


def test_link_local_and_private_subnets_are_accepted(ctl):
    status, net = call(ctl, "POST", "/v2.0/networks", {"network": {"name": "ok-cidrs"}})
    net_id = net["network"]["id"]
    for cidr in ("169.254.0.0/16", "10.77.0.0/24", "100.64.0.0/10"):
        status, body = call(ctl, "POST", "/v2.0/subnets", {"subnet": {
            "network_id": net_id, "cidr": cidr, "ip_version": 4}})
        assert status == 201, body
    assert call(ctl, "DELETE", f"/v2.0/networks/{net_id}")[0] == 204


@pytest.mark.parametrize("attrs", [
    {"name": "nul\x00"}, {"name": "\x1b[31mred"}, {"name": "csi\x9b2J"}, {"name": "del\x7f"},
    {"name": "line\nbreak"}, {"description": "bell\x07"}, {"description": "cr\r"},
    {"mtu": "\u0661\u0665\u0660\u0660"}, {"mtu": 1500.0}, {"mtu": True}, {"mtu": " 1500"},
    {"mtu": "1_500"},
])
def test_control_characters_and_non_integers_are_400(ctl, attrs):
    status, body = call(ctl, "POST", "/v2.0/networks", {"network": attrs})
    assert (status, body["NeutronError"]["type"]) == (400, "HTTPBadRequest"), body


def test_plain_names_multiline_descriptions_and_digit_strings_are_accepted(ctl):
    status, body = call(ctl, "POST", "/v2.0/networks", {"network": {
        "name": "réseau ネット", "description": "line one\n\tline two", "mtu": "1400"}})
    assert status == 201, body
    net = body["network"]
    assert net["mtu"] == 1400 and net["description"] == "line one\n\tline two"
    status, body = call(ctl, "PUT", f"/v2.0/networks/{net['id']}",
                        {"network": {"name": "esc\x1b"}})
    assert status == 400
    assert call(ctl, "DELETE", f"/v2.0/networks/{net['id']}")[0] == 204


# --- lists -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def many_ports(ctl) -> tuple[str, list[dict[str, Any]]]:
    """2,000 ports on one network (bulk creates of 500, each within the body limit)."""
    status, net = call(ctl, "POST", "/v2.0/networks", {"network": {"name": "many"}})
    net_id = net["network"]["id"]
    status, _ = call(ctl, "POST", "/v2.0/subnets", {"subnet": {
        "network_id": net_id, "cidr": "10.200.0.0/20", "ip_version": 4}})
    assert status == 201
    for batch in range(4):
        entries = [{"network_id": net_id, "name": f"port-{(batch * 500 + i) % 97:02d}",
                    "device_owner": ("compute:a", "compute:b")[i % 2]}
                   for i in range(500)]
        status, body = call(ctl, "POST", "/v2.0/ports", {"ports": entries})
        assert status == 201, body
    status, body = call(ctl, "GET", f"/v2.0/ports?network_id={net_id}")
    assert status == 200 and len(body["ports"]) == 2000
    return net_id, body["ports"]


def page_through(ctl: ControllerProcess, path: str) -> tuple[list[dict[str, Any]], int]:
    items: list[dict[str, Any]] = []
    pages = 0
    next_path: str | None = path
    while next_path:
        status, body = call(ctl, "GET", next_path)
        assert status == 200, body
        items += body["ports"]
        pages += 1
        links = {link["rel"]: link["href"] for link in body.get("ports_links", [])}
        if pages > 1:
            assert "previous" in links
        next_path = None
        if "next" in links:
            parts = urllib.parse.urlsplit(links["next"])
            next_path = parts.path + "?" + parts.query
    return items, pages


def test_paging_returns_every_port_once_in_order(ctl, many_ports):
    net_id, everything = many_ports
    items, pages = page_through(ctl, f"/v2.0/ports?network_id={net_id}&limit=137")
    assert [p["id"] for p in items] == [p["id"] for p in everything]
    assert pages == 15                  # 14 full pages and one of 82: no empty last page


def test_sorted_paging_matches_a_sort_of_the_whole_list(ctl, many_ports):
    net_id, everything = many_ports
    items, _ = page_through(
        ctl, f"/v2.0/ports?network_id={net_id}&limit=150&sort_key=device_owner"
             "&sort_dir=desc&sort_key=name&sort_dir=asc&fields=id&fields=name"
             "&fields=device_owner")
    by_name = sorted(everything, key=lambda p: (p["name"], p["id"]))
    expected = sorted(by_name, key=lambda p: p["device_owner"], reverse=True)
    assert [p["id"] for p in items] == [p["id"] for p in expected]
    assert set(items[0]) == {"id", "name", "device_owner"}


def test_reverse_page_from_a_marker_and_previous_link(ctl, many_ports):
    net_id, everything = many_ports
    marker = everything[1000]["id"]
    status, body = call(ctl, "GET", f"/v2.0/ports?network_id={net_id}&limit=10"
                                    f"&marker={marker}&page_reverse=True")
    assert status == 200
    assert [p["id"] for p in body["ports"]] == [p["id"] for p in everything[990:1000]]
    links = {link["rel"]: link["href"] for link in body["ports_links"]}
    assert set(links) == {"next", "previous"}
    status, forward = call(ctl, "GET", f"/v2.0/ports?network_id={net_id}&limit=10"
                                       f"&marker={marker}")
    assert [p["id"] for p in forward["ports"]] == [p["id"] for p in everything[1001:1011]]
    previous = urllib.parse.urlsplit(
        {link["rel"]: link["href"] for link in forward["ports_links"]}["previous"])
    status, back = call(ctl, "GET", previous.path + "?" + previous.query)
    assert [p["id"] for p in back["ports"]] == [p["id"] for p in everything[991:1001]]


def test_filters_with_limit(ctl, many_ports):
    net_id, everything = many_ports
    wanted = [p for p in everything if p["name"] in ("port-03", "port-05")
              and p["device_owner"] == "compute:b"]
    items, _ = page_through(ctl, f"/v2.0/ports?network_id={net_id}&name=port-03&name=port-05"
                                 "&device_owner=compute:b&limit=7")
    assert [p["id"] for p in items] == [p["id"] for p in wanted]
    address = everything[5]["fixed_ips"][0]["ip_address"]
    status, body = call(ctl, "GET", f"/v2.0/ports?fixed_ips=ip_address={address}&limit=3")
    assert [p["id"] for p in body["ports"]] == [everything[5]["id"]]
    assert "ports_links" not in body
    status, body = call(ctl, "GET", f"/v2.0/ports?network_id={net_id}&admin_state_up=False")
    assert body["ports"] == []
    status, body = call(ctl, "GET", f"/v2.0/ports?tenant_id=p-admin&network_id={net_id}"
                                    "&limit=5&binding:vif_type=unbound")
    assert status == 200 and len(body["ports"]) == 5 and body["ports_links"][0]["rel"] == "next"
    _, body = call(ctl, "GET", f"/v2.0/ports?network_id={net_id}&limit=5&fields=name")
    assert [set(p) for p in body["ports"]] == [{"name"}] * 5
    assert "marker=" + everything[4]["id"] in body["ports_links"][0]["href"]


def test_a_member_cannot_page_from_a_marker_it_cannot_see(ctl, many_ports):
    _, everything = many_ports
    status, body = call(ctl, "GET", f"/v2.0/ports?limit=5&marker={everything[0]['id']}",
                        token=MEMBER)
    assert (status, body["NeutronError"]["type"]) == (400, "HTTPBadRequest")
    status, body = call(ctl, "GET", "/v2.0/ports?limit=5", token=MEMBER)
    assert status == 200 and body["ports"] == []


def test_networks_sort_by_a_nullable_column_across_pages(ctl):
    created = []
    for name, body in [("n-flat", {"provider:network_type": "flat",
                                   "provider:physical_network": "flatnet-sort"}),
                       ("n-vlan-a", {}), ("n-vlan-b", {}), ("n-vlan-c", {})]:
        status, net = call(ctl, "POST", "/v2.0/networks", {"network": {"name": name, **body}})
        assert status == 201, net
        created.append(net["network"]["id"])
    try:
        status, whole = call(ctl, "GET", "/v2.0/networks")
        by_id = sorted(whole["networks"], key=lambda n: n["id"])   # the tie-breaker, asc
        for direction in ("asc", "desc"):
            # nulls sort first (last when descending)
            expected = sorted(by_id, key=lambda n: (n["provider:segmentation_id"] is not None,
                                                    n["provider:segmentation_id"] or 0),
                              reverse=direction == "desc")
            items: list[dict[str, Any]] = []
            path: str | None = (f"/v2.0/networks?limit=2&sort_key=provider:segmentation_id"
                                f"&sort_dir={direction}")
            while path:
                status, body = call(ctl, "GET", path)
                items += body["networks"]
                links = {link["rel"]: link["href"] for link in body.get("networks_links", [])}
                path = None
                if "next" in links:
                    parts = urllib.parse.urlsplit(links["next"])
                    path = parts.path + "?" + parts.query
            assert [n["id"] for n in items] == [n["id"] for n in expected]
    finally:
        for net_id in created:
            call(ctl, "DELETE", f"/v2.0/networks/{net_id}")


def test_api_still_answers_after_everything(ctl):
    wait_until(lambda: answers(ctl), 5, message="API answers")
    assert "Traceback" not in http(ctl, "GET", "/v2.0/%ff")[1].decode()
