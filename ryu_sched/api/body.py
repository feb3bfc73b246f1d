"""Request bodies within bounds: size, media type, UTF-8, JSON depth and strings.

The WSGI layer reads every body through :func:`read_body` before a handler runs, so no
handler ever sees more than ``api_max_request_body_size`` bytes and no read monopolises the
event loop: bodies are read in pieces with a yield to other green threads between them.
A declared length over the limit is refused before anything is read; a chunked body is
refused as soon as it grows past the limit.

:func:`decode_json` turns the bytes into Python values or raises a 4xx error: invalid UTF-8,
JSON that is malformed, nested deeper than :data:`MAX_JSON_DEPTH`, holds ``NaN``/``Infinity``
or strings with lone UTF-16 surrogates (``"\\ud800"``, which no database can store).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, BinaryIO

import eventlet

from ryu_sched import errors

# What oslo.middleware's sizelimit (and so Neutron) accepts by default: 112 KiB.
DEFAULT_MAX_BODY = 114688
MAX_JSON_DEPTH = 400
READ_PIECE = 64 * 1024
# After refusing a body the client may still be sending it: read and drop at most this much
# (or for at most this long) so that it can read the 413 before the connection closes.
LINGER_BYTES = 4 * 1024 * 1024
LINGER_SECONDS = 2.0

JSON_MEDIA_TYPE = "application/json"
_UTF8_NAMES = ("utf-8", "utf8")


class RequestEntityTooLarge(errors.NeutronError):
    status = 413
    type_name = "HTTPRequestEntityTooLarge"
    message_format = "Request body is larger than the limit of %(limit)d bytes."


class UnsupportedMediaType(errors.NeutronError):
    status = 415
    type_name = "HTTPUnsupportedMediaType"
    message_format = ("Unsupported Content-Type %(content_type)s: request bodies must be "
                      "application/json (UTF-8).")


class IncompleteBody(errors.HTTPBadRequest):
    """The client stopped sending before the declared length (or broke the chunking)."""

    def __init__(self) -> None:
        super().__init__(msg="Request body is incomplete")


def _yield() -> None:
    eventlet.sleep(0)


def _declared_length(environ: Mapping[str, Any]) -> int | None:
    value = environ.get("CONTENT_LENGTH")
    if value in (None, ""):
        return None
    text = str(value).strip()
    if not text.isascii() or not text.isdigit():
        raise errors.HTTPBadRequest(msg="Invalid Content-Length")
    return int(text)


def is_chunked(environ: Mapping[str, Any]) -> bool:
    return str(environ.get("HTTP_TRANSFER_ENCODING", "")).lower() == "chunked"


def read_body(environ: Mapping[str, Any], limit: int,
              pause: Callable[[], None] = _yield) -> bytes:
    """The whole request body, at most ``limit`` bytes (413 beyond)."""
    stream: BinaryIO = environ["wsgi.input"]
    length = _declared_length(environ)
    chunked = is_chunked(environ)
    if length is not None and not chunked:
        if length > limit:
            raise RequestEntityTooLarge(limit=limit)
        pieces: list[bytes] = []
        remaining = length
        while remaining > 0:
            piece = _read(stream, min(READ_PIECE, remaining))
            if not piece:
                raise IncompleteBody()
            pieces.append(piece)
            remaining -= len(piece)
            if remaining:
                pause()
        return b"".join(pieces)
    if not chunked:
        return b""
    pieces = []
    total = 0
    while True:
        piece = _read(stream, READ_PIECE)
        if not piece:
            return b"".join(pieces)
        total += len(piece)
        if total > limit:
            raise RequestEntityTooLarge(limit=limit)
        pieces.append(piece)
        pause()


def _read(stream: BinaryIO, size: int) -> bytes:
    try:
        return stream.read(size)
    except (OSError, ValueError):
        # Connection reset or timed out, or malformed chunk sizes (eventlet's
        # ChunkReadError is a ValueError).
        raise IncompleteBody() from None


def drain(environ: Mapping[str, Any], pause: Callable[[], None] = _yield) -> None:
    """Read and drop what the client still sends of a refused body, within bounds."""
    if str(environ.get("HTTP_EXPECT", "")).lower() == "100-continue":
        return  # it waits for our answer and will not send the body
    stream: BinaryIO = environ["wsgi.input"]
    dropped = 0
    with eventlet.Timeout(LINGER_SECONDS, False):
        while dropped < LINGER_BYTES:
            try:
                piece = stream.read(READ_PIECE)
            except (OSError, ValueError):
                return
            if not piece:
                return
            dropped += len(piece)
            pause()


# --- JSON ------------------------------------------------------------------------------------

def check_media_type(content_type: str | None) -> None:
    """``application/json``, optionally with ``charset=utf-8``; anything else is 415."""
    media, _, params = (content_type or "").partition(";")
    if media.strip().lower() != JSON_MEDIA_TYPE:
        raise UnsupportedMediaType(content_type=repr(content_type or ""))
    for param in params.split(";"):
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset" and \
                value.strip().strip('"').lower() not in _UTF8_NAMES:
            raise UnsupportedMediaType(content_type=repr(content_type))


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def decode_json(raw: bytes) -> Any:
    """Parse a UTF-8 JSON document; 400 ``HTTPBadRequest`` for anything unacceptable."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise errors.HTTPBadRequest(msg="Malformed request body: not valid UTF-8") from None
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise _too_deep() from None
    except ValueError:
        raise errors.HTTPBadRequest(msg="Malformed request body") from None
    check_values(value)
    return value


def _too_deep() -> errors.HTTPBadRequest:
    return errors.HTTPBadRequest(
        msg=f"Malformed request body: nested deeper than {MAX_JSON_DEPTH} levels")


def _check_string(text: str) -> None:
    if text.isascii():
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise errors.HTTPBadRequest(
            msg="Malformed request body: string with a lone UTF-16 surrogate") from None


def check_values(value: Any) -> None:
    """Depth at most :data:`MAX_JSON_DEPTH`; every string (keys too) encodable as UTF-8."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            _check_string(item)
        elif isinstance(item, dict | list):
            if depth > MAX_JSON_DEPTH:
                raise _too_deep()
            if isinstance(item, dict):
                for key, inner in item.items():
                    _check_string(key)
                    stack.append((inner, depth + 1))
            else:
                stack.extend((inner, depth + 1) for inner in item)
