"""Malformed MessagePack-RPC frames never take the endpoint or the registry down."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.controller import ControllerProcess
from tests.support.simagent import DHCP, SimAgent, http

pytestmark = pytest.mark.integration

# The victim's own msgids: fuzzed requests avoid them, so responses cannot be confused.
VICTIM_IDS = range(4_000_000_000, 4_000_100_000)


@pytest.fixture(scope="module")
def ctl(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControllerProcess]:
    with ControllerProcess(Path(tmp_path_factory.mktemp("fuzz")) / "ctl",
                           {"agent_down_time": 3}) as proc:
        yield proc


@pytest.fixture(scope="module")
def victim(ctl: ControllerProcess) -> Iterator[SimAgent]:
    """One long-lived connection that receives the structurally wrong frames."""
    agent = SimAgent((ctl.host, ctl.rpc_port), "fuzz-victim", DHCP,
                     first_msgid=VICTIM_IDS.start).connect()
    agent.report_state()
    yield agent
    agent.close()


def still_serving(ctl: ControllerProcess) -> None:
    probe = SimAgent((ctl.host, ctl.rpc_port), "probe", DHCP).connect()
    try:
        assert probe.report_state()["status"] in ("registered", "alive", "revived")
    finally:
        probe.close()
    status, body = http(f"{ctl.url}/v2.0/agents?host=probe")
    assert status == 200 and body["agents"][0]["alive"] is True


scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1),
                    st.floats(allow_nan=True), st.text(max_size=20), st.binary(max_size=20))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=8), inner, max_size=5)),
    max_leaves=20)
methods = st.one_of(st.sampled_from(["report_state", "get_network_info", "get_hosted_networks",
                                     "get_router_info", "create_dhcp_port", "update_dhcp_port",
                                     "ping", "", "nope"]), st.text(max_size=30), values)
frames = st.one_of(
    values,
    st.tuples(st.integers(-5, 5), st.integers(-(2**63), 2**64 - 1), methods,
              values).map(list),
    st.tuples(st.just(0), st.integers(0, 2**32 - 1), methods, st.lists(values, max_size=4)
              ).map(list),
    st.tuples(st.just(2), methods, st.lists(values, max_size=4)).map(list),
    st.tuples(st.just(0), st.integers(0, 100), st.just("report_state"),
              st.lists(st.dictionaries(st.sampled_from(
                  ["agent_type", "host", "configurations", "start_flag", "topic",
                   "availability_zone"]), values, max_size=6), max_size=2)).map(list),
).filter(lambda f: not (isinstance(f, list) and len(f) > 1 and isinstance(f[1], int)
                        and f[1] in VICTIM_IDS))


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(frame=frames)
def test_valid_msgpack_with_wrong_shapes_is_dropped_and_the_connection_survives(
        ctl, victim, frame):
    victim.send_raw(msgpack.packb(frame, use_bin_type=True))
    assert victim.call("ping", timeout=5) == "pong"


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.binary(min_size=1, max_size=512))
def test_random_bytes_may_close_that_connection_but_never_the_server(ctl, data):
    with socket.create_connection((ctl.host, ctl.rpc_port), timeout=5) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        sock.settimeout(5)
        try:
            while sock.recv(65536):
                pass
        except OSError:
            pass
    assert ctl.alive()


def test_huge_and_truncated_frames(ctl):
    with socket.create_connection((ctl.host, ctl.rpc_port), timeout=5) as sock:
        # a 100 MB string header: beyond the frame limit, the connection is closed
        sock.sendall(b"\xdb" + (100 * 1024 * 1024).to_bytes(4, "big") + b"x" * 1000)
        sock.settimeout(5)
        try:
            while sock.recv(65536):
                pass
        except OSError:
            pass
    with socket.create_connection((ctl.host, ctl.rpc_port), timeout=5) as sock:
        sock.sendall(msgpack.packb([0, 1, "ping", []])[:-2])   # truncated: just waits
    still_serving(ctl)


def test_after_the_fuzzing_the_registry_still_serves_and_counted_the_garbage(ctl):
    still_serving(ctl)
    stats = http(f"{ctl.url}/v2.0/agent-scheduler/stats")[1]["stats"]["rpc"]
    assert stats["malformed_frames"] > 0 and stats["bad_params"] > 0
    assert stats["connections_closed_undecodable"] > 0
    assert stats["handler_errors"] == 0, ctl.log_text()[-3000:]
    assert "crashed" not in ctl.log_text()
