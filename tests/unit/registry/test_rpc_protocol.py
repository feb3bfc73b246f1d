"""Frame handling of the MessagePack-RPC dispatcher, without sockets."""

from __future__ import annotations

import msgpack
import pytest

from ryu_sched.rpc.protocol import BadParams, Dispatcher, RpcError, new_unpacker


def dispatcher() -> Dispatcher:
    def echo(conn, params):
        return params

    def picky(conn, params):
        raise BadParams("no")

    def broken(conn, params):
        raise RuntimeError("boom")

    def unencodable(conn, params):
        return object()

    return Dispatcher({"echo": echo, "picky": picky, "broken": broken,
                       "unencodable": unencodable})


def decode(data: bytes | None):
    assert data is not None
    return msgpack.unpackb(data, raw=False)


def test_request_gets_response_with_same_msgid():
    assert decode(dispatcher().handle(None, [0, 7, "echo", [1, "a"]])) == [1, 7, None, [1, "a"]]


def test_notification_gets_no_response():
    d = dispatcher()
    assert d.handle(None, [2, "echo", []]) is None
    assert d.stats.notifications == 1


@pytest.mark.parametrize("frame", [
    None, 5, "x", [], [9, 1, "echo", []], [0, 1, "echo"], [0, -1, "echo", []],
    [0, 2**32, "echo", []], [0, "1", "echo", []], [2, "echo"], [2, 5, []],
    [1, 1, None, None], [True, 1, "echo", []],
])
def test_malformed_frames_are_dropped_and_counted(frame):
    d = dispatcher()
    assert d.handle(None, frame) is None
    assert d.stats.malformed_frames == 1


def test_request_with_bad_method_type_gets_an_error_response():
    response = decode(dispatcher().handle(None, [0, 3, 42, []]))
    assert response[1] == 3 and response[2]["type"] == "BadParams"


def test_unknown_method_is_an_error_for_requests_and_dropped_for_notifications():
    d = dispatcher()
    assert decode(d.handle(None, [0, 1, "nope", []]))[2]["type"] == "UnknownMethod"
    assert d.handle(None, [2, "nope", []]) is None
    assert d.stats.unknown_methods == 2


def test_handler_errors_become_error_responses():
    d = dispatcher()
    assert decode(d.handle(None, [0, 1, "picky", []]))[2]["type"] == "BadParams"
    assert decode(d.handle(None, [0, 2, "broken", []]))[2]["type"] == "InternalError"
    assert decode(d.handle(None, [0, 3, "unencodable", []]))[2]["type"] == "InternalError"
    assert (d.stats.bad_params, d.stats.handler_errors) == (1, 2)
    assert decode(d.handle(None, [0, 4, "echo", [1]])) == [1, 4, None, [1]]


def test_rpc_error_wire_form():
    assert RpcError("m", "T").as_wire() == {"type": "T", "message": "m"}


def test_unpacker_streams_frames_split_anywhere():
    data = b"".join(msgpack.packb([0, i, "echo", [i]]) for i in range(50))
    unpacker = new_unpacker()
    frames = []
    for i in range(0, len(data), 7):
        unpacker.feed(data[i:i + 7])
        frames.extend(unpacker)
    assert [f[1] for f in frames] == list(range(50))
