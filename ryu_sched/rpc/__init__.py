"""The agent endpoint: MessagePack-RPC over TCP on the eventlet hub (see docs/protocol.md)."""

from ryu_sched.rpc.protocol import Dispatcher, RpcError, RpcStats
from ryu_sched.rpc.server import Connection, RpcServer

__all__ = ["Connection", "Dispatcher", "RpcError", "RpcServer", "RpcStats"]
