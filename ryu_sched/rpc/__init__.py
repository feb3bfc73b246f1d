"""The agent endpoint: MessagePack-RPC over TCP or mutual TLS on the eventlet hub (see
docs/protocol.md). The frames themselves are ``ryu_sched.shared.wire``'s."""

from ryu_sched.rpc.protocol import Dispatcher, RpcError, RpcStats
from ryu_sched.rpc.server import Connection, RpcLimits, RpcServer

__all__ = ["Connection", "Dispatcher", "RpcError", "RpcLimits", "RpcServer", "RpcStats"]
