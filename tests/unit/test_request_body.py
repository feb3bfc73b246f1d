"""Request bodies: size limit while reading, media type, UTF-8, depth, surrogates."""

from __future__ import annotations

import io

import pytest

from ryu_sched import errors
from ryu_sched.api import body


def environ(data: bytes, length: str | None = None, chunked: bool = False) -> dict:
    env: dict = {"wsgi.input": io.BytesIO(data)}
    if length is not None:
        env["CONTENT_LENGTH"] = length
    if chunked:
        env["HTTP_TRANSFER_ENCODING"] = "chunked"
    return env


def test_declared_length_over_the_limit_is_refused_before_reading():
    stream = environ(b"x" * 10, length="2000")
    with pytest.raises(body.RequestEntityTooLarge) as info:
        body.read_body(stream, 1000, pause=lambda: None)
    assert info.value.status == 413 and stream["wsgi.input"].tell() == 0


def test_body_up_to_the_limit_is_read_in_pieces():
    data = b"y" * (body.READ_PIECE * 2 + 5)
    pauses = []
    got = body.read_body(environ(data, length=str(len(data))), len(data),
                         pause=lambda: pauses.append(1))
    assert got == data and len(pauses) == 2


def test_chunked_stream_is_refused_once_past_the_limit():
    # What eventlet's Input hands over for a chunked body: the de-chunked bytes.
    stream = environ(b"z" * (body.READ_PIECE * 4), chunked=True)
    with pytest.raises(body.RequestEntityTooLarge):
        body.read_body(stream, body.READ_PIECE + 1, pause=lambda: None)
    assert stream["wsgi.input"].tell() == body.READ_PIECE * 2


def test_short_body_and_bad_length_are_400():
    with pytest.raises(body.IncompleteBody):
        body.read_body(environ(b"abc", length="10"), 100, pause=lambda: None)
    with pytest.raises(errors.HTTPBadRequest):
        body.read_body(environ(b"", length="1e3"), 100, pause=lambda: None)
    assert body.read_body(environ(b"ignored"), 100, pause=lambda: None) == b""


@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=utf-8",
                                          "APPLICATION/JSON;charset=\"UTF8\""])
def test_json_media_types(content_type):
    body.check_media_type(content_type)


@pytest.mark.parametrize("content_type", [None, "", "text/plain", "application/json-seq",
                                          "application/json; charset=utf-16"])
def test_other_media_types_are_415(content_type):
    with pytest.raises(body.UnsupportedMediaType) as info:
        body.check_media_type(content_type)
    assert info.value.status == 415


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def test_depth_limit_is_exact():
    assert body.decode_json(nested(body.MAX_JSON_DEPTH)) is not None
    with pytest.raises(errors.HTTPBadRequest, match="nested deeper"):
        body.decode_json(nested(body.MAX_JSON_DEPTH + 1))
    with pytest.raises(errors.HTTPBadRequest, match="nested deeper"):
        body.decode_json(nested(200000))


@pytest.mark.parametrize("raw", [b'"\\ud800"', b'{"\\udc00": 1}', b'["ok", ["\\udbff"]]',
                                 b'"\xed\xa0\x80"', b'"\xc3"', b"Infinity", b"[NaN]", b""])
def test_undecodable_json_is_400(raw):
    with pytest.raises(errors.HTTPBadRequest):
        body.decode_json(raw)


def test_valid_unicode_and_surrogate_pairs_pass():
    assert body.decode_json('{"name": "caf\\u00e9 \\ud83d\\ude00 ネット"}'.encode()) == {
        "name": "café \U0001f600 ネット"}
