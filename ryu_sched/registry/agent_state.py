"""Validation of what an agent reports in ``report_state``, on receipt.

Whatever is accepted here is stored in the ``agents`` table (a JSON column) and served by the
API, so ``configurations`` must be plain JSON: str, int, float (finite), bool, None, lists and
maps with string keys, at most :data:`MAX_DEPTH` deep and :data:`MAX_ENCODED_BYTES` once
encoded. A value MessagePack can carry but JSON cannot (binary, a 1,000-deep nesting) would
otherwise be accepted in memory and then fail every batched write of heartbeats.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from ryu_sched.rpc.protocol import BadParams
from ryu_sched.shared.vocabulary import AgentType

MAX_DEPTH = 8
MAX_ENCODED_BYTES = 64 * 1024
MAX_STRING = 255

_DPID = re.compile(r"^[0-9a-fA-F]{16}$")
_INT64 = (-(2**63), 2**64 - 1)


class _TooBig(Exception):
    pass


def _check_json(value: Any, path: str, depth: int, budget: list[int]) -> None:
    """Raise BadParams unless ``value`` is plain JSON within depth; ``budget`` counts down a
    lower bound of the encoded size so that a huge value is refused before it is encoded."""
    kind = type(value)
    if kind is str:
        budget[0] -= len(value) + 2
    elif kind is bool or value is None:
        budget[0] -= 5
    elif kind is int:
        if not _INT64[0] <= value <= _INT64[1]:
            raise BadParams(f"{path} is an integer out of range")
        budget[0] -= 2
    elif kind is float:
        if not math.isfinite(value):
            raise BadParams(f"{path} must be a finite number")
        budget[0] -= 3
    elif kind is list or kind is dict:
        if depth >= MAX_DEPTH:
            raise BadParams(f"configurations nest deeper than {MAX_DEPTH} levels (at {path})")
        budget[0] -= 2
        if kind is dict:
            for key, item in value.items():
                if type(key) is not str:
                    raise BadParams(f"{path} has a key that is not a string")
                budget[0] -= len(key) + 3
                if budget[0] < 0:
                    raise _TooBig
                _check_json(item, f"{path}.{key[:40]}", depth + 1, budget)
        else:
            for index, item in enumerate(value):
                budget[0] -= 1
                if budget[0] < 0:
                    raise _TooBig
                _check_json(item, f"{path}[{index}]", depth + 1, budget)
    else:
        raise BadParams(f"{path} is a {kind.__name__}; only JSON values (string, number, "
                        "boolean, null, array, map) are accepted")
    if budget[0] < 0:
        raise _TooBig


def validate_configurations(conf: Any) -> dict[str, Any]:
    """``conf`` if it is an acceptable ``configurations`` map; BadParams otherwise."""
    if conf is None:
        return {}
    if type(conf) is not dict:
        raise BadParams("agent_state.configurations must be a map")
    too_big = BadParams(f"configurations exceed {MAX_ENCODED_BYTES} bytes once encoded")
    try:
        _check_json(conf, "configurations", 0, [MAX_ENCODED_BYTES])
    except _TooBig:
        raise too_big from None
    encoded = json.dumps(conf, separators=(",", ":"), ensure_ascii=False).encode()
    if len(encoded) > MAX_ENCODED_BYTES:
        raise too_big
    dpid = conf.get("datapath_id")
    if dpid is not None and (type(dpid) is not str or not _DPID.match(dpid)):
        raise BadParams("configurations.datapath_id must be 16 hex digits")
    ext = conf.get("external_port")
    if ext is not None and type(ext) is not str:
        raise BadParams("configurations.external_port must be a string")
    link = conf.get("external_link_up")
    if link is not None and type(link) is not bool:
        raise BadParams("configurations.external_link_up must be a boolean")
    return conf


def _opt_str(state: dict[str, Any], key: str) -> str | None:
    value = state.get(key)
    if value is None:
        return None
    if type(value) is not str or len(value) > MAX_STRING:
        raise BadParams(f"agent_state.{key} must be a string of at most {MAX_STRING} "
                        "characters")
    return value


def validate_state(state: Any) -> dict[str, Any]:
    """Full validation of an ``agent_state`` (first heartbeat, or fields that changed)."""
    if type(state) is not dict:
        raise BadParams("params must be [agent_state] with agent_state a map")
    agent_type = state.get("agent_type")
    if agent_type not in (AgentType.DHCP.value, AgentType.L3.value):
        raise BadParams(f"agent_type must be one of {[t.value for t in AgentType]}")
    host = state.get("host")
    if type(host) is not str or not host or len(host) > MAX_STRING:
        raise BadParams("agent_state.host must be a non-empty string")
    for key in ("binary", "topic", "availability_zone"):
        _opt_str(state, key)
    start_flag = state.get("start_flag", False)
    if start_flag is not None and type(start_flag) is not bool:
        raise BadParams("agent_state.start_flag must be a boolean")
    validate_configurations(state.get("configurations"))
    return state
