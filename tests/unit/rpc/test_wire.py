"""The shared wire module: frame encoding and parsing, errors, and what it may import."""

from __future__ import annotations

import json
import subprocess
import sys

import msgpack
import pytest

from ryu_sched.shared.wire import (
    NOTIFICATION,
    REQUEST,
    RESPONSE,
    CallTimeout,
    Disconnected,
    FrameKind,
    Notification,
    Response,
    RpcCallError,
    encode_notification,
    encode_request,
    encode_response,
    new_unpacker,
    parse_from_server,
)


def test_frames_are_plain_msgpack_arrays():
    assert msgpack.unpackb(encode_request(7, "ping", [1])) == [0, 7, "ping", [1]]
    assert msgpack.unpackb(encode_response(7, None, "pong")) == [1, 7, None, "pong"]
    assert msgpack.unpackb(encode_notification("resync", [{}])) == [2, "resync", [{}]]
    assert (REQUEST, RESPONSE, NOTIFICATION) == (0, 1, 2)
    assert FrameKind(1) is RESPONSE


def test_binary_stays_binary_and_text_stays_text():
    frame = msgpack.unpackb(encode_request(1, "m", [b"\x00\xff", "é"]), raw=False)
    assert frame[3] == [b"\x00\xff", "é"]


@pytest.mark.parametrize(("frame", "parsed"), [
    ([1, 3, None, {"a": 1}], Response(3, None, {"a": 1})),
    ([1, 3, {"type": "NotFound", "message": "x"}, None],
     Response(3, {"type": "NotFound", "message": "x"}, None)),
    ([2, "network_bound", [{"network_id": "n"}]],
     Notification("network_bound", [{"network_id": "n"}])),
])
def test_what_a_client_accepts(frame, parsed):
    assert parse_from_server(frame) == parsed


@pytest.mark.parametrize("frame", [
    None, 1, "x", [], [0, 1, "m", []], [1, 1, None], [1, "1", None, None], [2, 5, []],
    [2, "m", {}], [True, 1, None, None], [9, 1, None, None],
])
def test_what_a_client_drops(frame):
    assert parse_from_server(frame) is None


def test_unpacker_limits_one_frame_not_the_stream():
    unpacker = new_unpacker(max_frame=1024, recv_size=512)
    small = encode_request(1, "m", ["x" * 500])
    for _ in range(20):   # 10 KiB in total, each frame under the limit
        unpacker.feed(small)
        assert [f[1] for f in unpacker] == [1]
    unpacker = new_unpacker(max_frame=1024, recv_size=512)
    big = encode_request(1, "m", ["x" * 2000])
    unpacker.feed(big[:1500])
    assert list(unpacker) == []
    with pytest.raises(msgpack.BufferFull):
        unpacker.feed(big[1500:])


def test_one_error_shape():
    err = RpcCallError({"type": "NotFound", "message": "network n not found"})
    assert str(err) == "network n not found"
    assert err.error_type == err.type == "NotFound"
    odd = RpcCallError("boom")
    assert str(odd) == "boom" and odd.error_type is None


def test_disconnections_are_connection_errors_and_timeouts_are_both():
    assert issubclass(Disconnected, ConnectionError)
    assert issubclass(CallTimeout, Disconnected) and issubclass(CallTimeout, TimeoutError)


PROBE = """
import json, sys
before = set(sys.modules)
import {modules}
loaded = sorted(set(sys.modules) - before)
print(json.dumps(loaded))
"""


def _loaded_by(*modules: str) -> list[str]:
    out = subprocess.run([sys.executable, "-c", PROBE.format(modules=", ".join(modules))],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)  # type: ignore[no-any-return]


def _third_party(names: list[str]) -> set[str]:
    tops = {name.split(".")[0] for name in names}
    # cython_runtime: registered by msgpack's compiled extension
    return {top for top in tops if top not in sys.stdlib_module_names and
            not top.startswith("_") and top != "cython_runtime"}


def test_shared_imports_only_the_standard_library_and_msgpack():
    loaded = _loaded_by("ryu_sched.shared.wire", "ryu_sched.shared.client",
                        "ryu_sched.shared.tls", "ryu_sched.shared.vocabulary")
    assert _third_party(loaded) <= {"ryu_sched", "msgpack"}
    assert [m for m in loaded if m.startswith("ryu_sched.")
            and not m.startswith("ryu_sched.shared")] == []


def test_agents_import_nothing_of_the_controller_but_shared():
    loaded = _loaded_by("ryu_sched.agents.dhcp_agent", "ryu_sched.agents.l3_agent")
    assert [m for m in loaded if m.startswith("ryu_sched.")
            and not m.startswith(("ryu_sched.shared", "ryu_sched.agents"))] == []
    assert "eventlet" not in _third_party(loaded)
