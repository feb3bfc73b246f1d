"""The agent wire protocol (MessagePack-RPC, see docs/protocol.md): frames, encoding, errors.

Frames: request ``[0, msgid, method, params]``, response ``[1, msgid, error, result]``,
notification ``[2, method, params]``; ``msgid`` is a uint32, ``method`` a string, ``params``
an array, ``error`` ``None`` or ``{"type": ..., "message": ...}``. The stream is a plain
sequence of MessagePack objects (strings as ``str``, binary as ``bin``), no extra framing.

Both ends use this module: the controller's endpoint (``ryu_sched.rpc``) for the constants,
the encoders and the streaming decoder, and :mod:`ryu_sched.shared.client` for the rest.
Standard library and msgpack only.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Any

import msgpack


class FrameKind(enum.IntEnum):
    """The first element of every frame."""

    REQUEST = 0
    RESPONSE = 1
    NOTIFICATION = 2


REQUEST = FrameKind.REQUEST
RESPONSE = FrameKind.RESPONSE
NOTIFICATION = FrameKind.NOTIFICATION

MAX_MSGID = 2**32 - 1

# What a client accepts from the server: a get_network_info answer for a large network is
# megabytes. The server's limit for what agents send is much smaller (rpc_max_frame_size).
CLIENT_MAX_FRAME = 64 * 1024 * 1024
RECV_SIZE = 256 * 1024


def pack(frame: Any) -> bytes:
    return msgpack.packb(frame, use_bin_type=True)


def encode_request(msgid: int, method: str, params: list[Any]) -> bytes:
    return pack([int(REQUEST), msgid, method, params])


def encode_response(msgid: int, error: Any, result: Any) -> bytes:
    return pack([int(RESPONSE), msgid, error, result])


def encode_notification(method: str, params: list[Any]) -> bytes:
    return pack([int(NOTIFICATION), method, params])


def new_unpacker(max_frame: int = CLIENT_MAX_FRAME, recv_size: int = RECV_SIZE
                 ) -> msgpack.Unpacker:
    """A streaming decoder for frames up to ``max_frame`` bytes fed ``recv_size`` at a time.

    Decoding errors (bytes that are not MessagePack, a string or container longer than the
    limit) leave the stream unusable: the caller closes the connection. ``unpacker.tell()``
    read right after a frame came out is the stream offset where that frame ended; bytes fed
    beyond it belong to a frame still incomplete.
    """
    return msgpack.Unpacker(raw=False, max_buffer_size=max_frame + recv_size,
                            max_str_len=max_frame, max_bin_len=max_frame,
                            max_array_len=max_frame, max_map_len=max_frame // 2,
                            max_ext_len=max_frame, strict_map_key=False,
                            unicode_errors="replace")


@dataclasses.dataclass(frozen=True)
class Response:
    msgid: int
    error: Any
    result: Any


@dataclasses.dataclass(frozen=True)
class Notification:
    method: str
    params: list[Any]


def parse_from_server(frame: Any) -> Response | Notification | None:
    """What a client receives: a response or a notification; None for anything else."""
    if type(frame) is not list or not frame or type(frame[0]) is not int:
        return None
    if frame[0] == RESPONSE and len(frame) == 4 and type(frame[1]) is int:
        return Response(frame[1], frame[2], frame[3])
    if frame[0] == NOTIFICATION and len(frame) == 3 and type(frame[1]) is str \
            and type(frame[2]) is list:
        return Notification(frame[1], frame[2])
    return None


# --- errors a client sees ------------------------------------------------------------------

class RpcCallError(Exception):
    """The server answered a call with an error (``{"type": ..., "message": ...}``)."""

    def __init__(self, error: Any) -> None:
        self.error = error
        message = error.get("message") if isinstance(error, dict) else None
        super().__init__(message if isinstance(message, str) else str(error))

    @property
    def error_type(self) -> str | None:
        """``NotFound``, ``BadParams``, ``UnknownMethod``, a Neutron name, ..."""
        value = self.error.get("type") if isinstance(self.error, dict) else None
        return value if isinstance(value, str) else None

    @property
    def type(self) -> str | None:
        return self.error_type


class Disconnected(ConnectionError):
    """No usable connection to the server: not connected, refused, or lost while waiting."""


class CallTimeout(Disconnected, TimeoutError):
    """No answer within the call's timeout (the connection may still be up)."""
